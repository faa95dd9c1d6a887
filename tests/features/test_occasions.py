"""When each occasion applies (tables), and the member facts built from the tables."""

from datetime import date

import numpy as np
import pandas as pd
import pytest

from perkrank.features.eligibility import day_number, required_tier_rank
from perkrank.features.occasions import (
    NO_BIRTHDAY,
    birthday_in,
    is_birthday_time,
    is_near_next_tier,
    is_welcome_time,
    is_winback_time,
    member_facts,
)


@pytest.mark.parametrize(
    ("local_day", "month", "day", "before", "after", "expected"),
    [
        (date(2026, 3, 15), 3, 15, 0, 0, True),  # the day itself
        (date(2026, 3, 14), 3, 15, 0, 0, False),
        (date(2026, 3, 12), 3, 15, 3, 0, True),  # 3 days before
        (date(2026, 3, 11), 3, 15, 3, 0, False),  # 4 days before
        (date(2026, 3, 22), 3, 15, 0, 7, True),  # 7 days after
        (date(2026, 3, 23), 3, 15, 0, 7, False),
        (date(2026, 12, 30), 1, 2, 3, 0, True),  # before a birthday of next year
        (date(2027, 1, 3), 12, 30, 0, 7, True),  # after a birthday of last year
        (date(2027, 1, 7), 12, 30, 0, 7, False),
        (date(2027, 2, 28), 2, 29, 0, 0, True),  # 29 February on the 28th in other years
        (date(2027, 3, 1), 2, 29, 0, 0, False),
        (date(2028, 2, 28), 2, 29, 0, 0, False),  # ... but the 29th in leap years
        (date(2028, 2, 29), 2, 29, 0, 0, True),
    ],
)
def test_birthday_window(local_day, month, day, before, after, expected):
    assert is_birthday_time(local_day, month, day, before, after) is expected


def test_birthday_of_29_february_in_a_common_year_is_the_28th():
    assert birthday_in(2027, 2, 29) == date(2027, 2, 28)
    assert birthday_in(2028, 2, 29) == date(2028, 2, 29)


@pytest.mark.parametrize(
    ("tenure", "welcome_days", "expected"),
    [(0, 30, True), (29, 30, True), (30, 30, False), (400, 30, False), (None, 30, False),
     (-1, 30, False)],
)  # fmt: skip
def test_welcome_while_tenure_is_below_the_limit(tenure, welcome_days, expected):
    assert is_welcome_time(tenure, welcome_days) is expected


@pytest.mark.parametrize(
    ("day", "last", "gap", "factor", "expected"),
    [
        (100, 70, 10.0, 3.0, False),  # 30 days: exactly gap × factor
        (100, 69, 10.0, 3.0, True),  # 31 days
        (100, 99, 0.5, 1.0, True),
        (100, None, 10.0, 3.0, False),  # never bought
        (100, 10, np.nan, 3.0, False),  # one purchase day: no usual gap
    ],
)
def test_winback_after_the_usual_gap_times_the_factor(day, last, gap, factor, expected):
    assert is_winback_time(day, last, gap, factor) is expected


@pytest.mark.parametrize(
    ("spend", "next_tier", "share", "expected"),
    [(79.0, 100.0, 0.8, False), (80.0, 100.0, 0.8, True), (99.9, 100.0, 0.8, True),
     (100.0, 100.0, 0.8, False), (0.0, 0.0, 0.8, False)],
)  # fmt: skip
def test_near_next_tier_between_the_share_and_the_next_tiers_spend(
    spend, next_tier, share, expected
):
    assert is_near_next_tier(spend, next_tier, share) is expected


@pytest.mark.parametrize(
    ("min_tier", "exclusive_tier", "rank"),
    [("base", None, 0), ("base", "", 0), ("base", "gold", 2), ("vip", "silver", 3)],
)
def test_an_exclusive_tier_raises_the_tier_an_offer_is_open_to(min_tier, exclusive_tier, rank):
    assert required_tier_rank(min_tier, exclusive_tier) == rank


PURCHASE_TIMES = [
    "2026-01-01 10:00", "2026-01-01 18:00", "2026-01-05 00:00", "2026-01-15 00:00",
    "2026-01-10 00:00", "2026-01-02 00:00", "2026-01-12 00:00", "2026-01-20 00:00",
]  # fmt: skip


def test_member_facts_from_members_and_purchases():
    members = pd.DataFrame(
        {
            "member_id": ["a", "b", "c", "d"],
            "region": "north",
            "tier": ["base", "base", "silver", "vip"],
            "birth_date": pd.to_datetime(["1990-03-15", None, "1985-12-31", "2000-02-29"]),
            "signup_date": pd.to_datetime(["2020-01-01"] * 4),
        }
    )
    purchases = pd.DataFrame(
        {
            "member_id": ["a", "a", "a", "a", "b", "c", "c", "x"],
            "ts": pd.to_datetime(
                [
                    "2026-01-01 10:00",
                    "2026-01-01 18:00",
                    "2026-01-05 00:00",
                    "2026-01-15 00:00",
                    "2026-01-10 00:00",
                    "2026-01-02 00:00",
                    "2026-01-12 00:00",
                    "2026-01-20 00:00",
                ]
            ),
            "amount": [10.0, 10.0, 30.0, 40.0, 5.0, 50.0, 50.0, 1.0],
        }
    )

    facts = member_facts(members, purchases, upgrade_share=0.8, upgrade_days=365)

    assert facts.birth_month_days.tolist() == [315, NO_BIRTHDAY, 1231, 229]
    assert facts.last_purchase_days.tolist() == [
        day_number(date(2026, 1, 15)),
        day_number(date(2026, 1, 10)),
        day_number(date(2026, 1, 12)),
        -1,
    ]
    # a: distinct days 1, 5, 15 → gaps 4 and 10 → median 7; b: one day; c: one gap of 10
    assert facts.usual_gaps[0] == 7.0
    assert np.isnan(facts.usual_gaps[1]) and np.isnan(facts.usual_gaps[3])
    assert facts.usual_gaps[2] == 10.0
    # silver's median spend is 100: a (90) is near it, b (5) is not; vip has none above
    assert facts.near_next_tier.tolist() == [True, False, False, False]


def test_occasions_of_a_member_on_a_day():
    members = pd.DataFrame(
        {
            "member_id": ["new", "old"],
            "region": "north",
            "tier": ["base", "base"],
            "birth_date": pd.to_datetime(["1990-06-15", None]),
            "signup_date": pd.to_datetime(["2026-06-01", "2020-01-01"]),
        }
    )
    purchases = pd.DataFrame(
        {
            "member_id": ["old", "old", "old"],
            "ts": pd.to_datetime(["2026-01-01", "2026-01-11", "2026-01-21"]),
            "amount": [1.0, 1.0, 1.0],
        }
    )
    facts = member_facts(members, purchases, upgrade_share=0.8, upgrade_days=365)
    day = date(2026, 6, 15)
    settings = {"birthday_days": (0, 0), "welcome_days": 30, "winback_factor": 3.0}

    assert facts.occasions("new", day_number(day), day, **settings) == {"birthday", "welcome"}
    assert facts.occasions("old", day_number(day), day, **settings) == {"winback"}
    assert facts.occasions("nobody", day_number(day), day, **settings) == frozenset()
