"""Member features describe each member at the cutoff from what was known then."""

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd

from perkrank.features.dataset import Dataset
from perkrank.features.member_features import describe_members, history_at
from perkrank.features.vocabulary import (
    cold_member_feature_names,
    member_feature_names,
    tenure_feature,
)

CUTOFF = datetime(2025, 7, 1)


def member_feature_table(dataset, cutoff, half_life_days=120.0):
    """Feature names of every member who signed up before `cutoff`."""
    return describe_members(history_at(dataset, cutoff), half_life_days)


def make_dataset(members, purchases=()):
    """Members and purchases as a Dataset; partners and offers stay empty."""
    member_ids, regions, tiers, signups = zip(*members, strict=True)
    buyer_ids, times, categories, amounts = zip(*purchases, strict=True) if purchases else [()] * 4
    return Dataset(
        members=pd.DataFrame(
            {
                "member_id": member_ids,
                "region": regions,
                "tier": tiers,
                "birth_date": pd.to_datetime([None] * len(members)),
                "signup_date": pd.to_datetime(signups),
            }
        ),
        purchases=pd.DataFrame(
            {
                "member_id": pd.Series(buyer_ids, dtype=str),
                "ts": pd.to_datetime(pd.Series(times, dtype=str), format="ISO8601"),
                "partner_id": "P1",
                "category": pd.Series(categories, dtype=str),
                "amount": np.array(amounts, dtype=float),
                "channel": "app",
            }
        ),
        partners=pd.DataFrame(columns=["partner_id", "name", "scope", "regions", "categories"]),
        offers=pd.DataFrame(columns=["offer_id", "partner_id", "category", "regions"]),
    )


def extra_features(table, member_id):
    """The features after region, tier and segment."""
    return table[member_id][3:]


def test_member_without_purchases_gets_the_features_of_a_new_member_with_their_tenure():
    dataset = make_dataset(
        [
            ("new", "north", "gold", "2025-06-20"),
            ("old", "south", "base", "2021-01-01"),
        ]
    )

    table = member_feature_table(dataset, CUTOFF)

    assert table["new"] == cold_member_feature_names("north", "gold")
    old_tenure_days = (CUTOFF - datetime(2021, 1, 1)).days
    assert table["old"] == cold_member_feature_names("south", "base", old_tenure_days)
    assert table["old"] == member_feature_names("south", "base", ["tenure=3y+", "spend=none"])


def test_tenure_is_bucketed_by_months_since_signup():
    dataset = make_dataset(
        [
            ("two_months", "north", "base", "2025-05-01"),
            ("six_months", "north", "base", "2025-01-01"),
            ("two_years", "north", "base", "2023-07-01"),
            ("five_years", "north", "base", "2020-07-01"),
        ]
    )

    table = member_feature_table(dataset, CUTOFF)

    assert {member_id: features[3] for member_id, features in table.items()} == {
        "two_months": "tenure=0-3m",
        "six_months": "tenure=3-12m",
        "two_years": "tenure=1-3y",
        "five_years": "tenure=3y+",
    }


def test_tenure_feature_buckets_at_the_limits():
    assert tenure_feature(0.0) == "tenure=0-3m"
    assert tenure_feature(2.99) == "tenure=0-3m"
    assert tenure_feature(3.0) == "tenure=3-12m"
    assert tenure_feature(12.0) == "tenure=1-3y"
    assert tenure_feature(36.0) == "tenure=3y+"


def test_recent_spend_is_low_mid_or_high_by_tercile_and_none_outside_the_window():
    members = [(member_id, "north", "base", "2024-01-01") for member_id in ("a", "b", "c", "d")]
    purchases = [
        ("a", "2025-06-01", "Grocery", 10.0),
        ("b", "2025-06-01", "Grocery", 20.0),
        ("c", "2025-05-01", "Grocery", 15.0),
        ("c", "2025-06-01", "Grocery", 15.0),
        ("d", "2025-03-01", "Grocery", 500.0),  # 122 days before the cutoff
    ]

    table = member_feature_table(make_dataset(members, purchases), CUTOFF)

    assert [table[member_id][4] for member_id in "abcd"] == [
        "spend=low",
        "spend=mid",
        "spend=high",
        "spend=none",
    ]
    assert table["d"][5:] == ["top_category=Grocery"]


def test_top_two_categories_follow_recency_weighted_counts():
    members = [("m", "north", "base", "2024-01-01")]
    purchases = [
        ("m", "2024-11-03", "Apparel", 1.0),  # 240 days before the cutoff
        ("m", "2024-11-03", "Apparel", 1.0),
        ("m", "2025-06-30", "Beauty", 1.0),  # 1 day
        ("m", "2025-03-03", "Cinema", 1.0),  # 120 days
    ]
    dataset = make_dataset(members, purchases)

    decayed = member_feature_table(dataset, CUTOFF, half_life_days=120)
    plain = member_feature_table(dataset, CUTOFF, half_life_days=None)

    # 120-day half-life: Beauty ≈ 1, Apparel = 2 · 0.25 = 0.5 = Cinema (tie broken by name).
    assert decayed["m"][5:] == ["top_category=Beauty", "top_category=Apparel"]
    assert plain["m"][5:] == ["top_category=Apparel", "top_category=Beauty"]


def test_members_who_sign_up_at_or_after_the_cutoff_are_left_out():
    dataset = make_dataset(
        [
            ("before", "north", "base", "2025-06-30"),
            ("at", "north", "base", "2025-07-01"),
            ("after", "north", "base", "2025-08-01"),
        ]
    )

    assert list(member_feature_table(dataset, CUTOFF)) == ["before"]


def test_purchases_and_members_at_or_after_the_cutoff_change_nothing():
    members = [("a", "north", "base", "2024-01-01"), ("b", "south", "vip", "2025-01-01")]
    purchases = [("a", "2025-06-01", "Grocery", 10.0), ("b", "2025-05-01", "Beauty", 30.0)]
    later = [
        ("a", "2025-07-01", "Beauty", 900.0),
        ("b", "2025-08-01", "Fuel", 900.0),
        ("c", "2025-06-15", "Fuel", 900.0),  # before the signup of c
    ]
    changed = make_dataset([*members, ("c", "east", "gold", "2025-07-01")], purchases + later)

    assert member_feature_table(changed, CUTOFF) == member_feature_table(
        make_dataset(members, purchases), CUTOFF
    )


def test_timezone_aware_cutoff_is_converted_to_utc():
    dataset = make_dataset(
        [("m", "north", "base", "2024-01-01")], [("m", "2025-06-30 23:30", "Beauty", 5.0)]
    )
    one_in_the_morning_at_utc_plus_2 = datetime(2025, 7, 1, 1, tzinfo=timezone(timedelta(hours=2)))

    before_the_purchase = member_feature_table(dataset, one_in_the_morning_at_utc_plus_2)
    after_the_purchase = member_feature_table(dataset, datetime(2025, 7, 1, tzinfo=UTC))

    assert extra_features(before_the_purchase, "m") == ["tenure=1-3y", "spend=none"]
    assert extra_features(after_the_purchase, "m") == [
        "tenure=1-3y",
        "spend=low",
        "top_category=Beauty",
    ]
