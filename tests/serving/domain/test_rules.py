"""The selection policy by tables: each case is a small state and request, and the chosen
offers, the reason every other candidate was left out and the counter increments expected."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from perkrank.config import CapRule
from perkrank.serving.domain.rules import (
    CapCounter,
    Choice,
    Increment,
    MemberState,
    select_offers,
)
from perkrank.serving.domain.selection import (
    Candidate,
    Preferences,
    Selection,
    SelectionRequest,
)

NOW = datetime(2024, 5, 17, 12, tzinfo=UTC).timestamp()
"""Friday noon, UTC: 12 hours left in the day, 2.5 days in the ISO week 2024-W20."""
DAY_LEFT = 12 * 3600
WEEK_LEFT = 2 * 86400 + DAY_LEFT
MONTH_LEFT = 14 * 86400 + DAY_LEFT
HOUR_BUCKET = f"3600s-{int(NOW) // 3600}"

A = Candidate("a", "p1", "food")
B = Candidate("b", "p2", "travel")
C = Candidate("c", "p3", "food")
D = Candidate("d", "p1", "fuel")
E = Candidate("e", "p1", "food")


def rule(name: str, scope: str, limit: int, window: str | int = "day", counts="served") -> CapRule:
    return CapRule(name=name, scope=scope, limit=limit, window=window, counts=counts)


def counter(name: str, scope: str, value: str, bucket: str = "2024-05-17") -> CapCounter:
    return CapCounter(name, scope, bucket, value)


@dataclass
class Case:
    """Ask for `candidates` (both orders unless `fallback`) with `rules`, in a state of
    `preferences`, `counts` and `redeemed`."""

    candidates: Sequence[Candidate]
    chosen: list[str]
    left_out: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    """offer id → (reason, detail) of every candidate not chosen."""
    increments: dict[CapCounter, tuple[int, int | None]] = field(default_factory=dict)
    """counter → (amount, ttl_seconds)."""
    preferences: Preferences = field(default_factory=Preferences)
    counts: dict[CapCounter, int] = field(default_factory=dict)
    redeemed: dict[str, int] = field(default_factory=dict)
    rules: Sequence[CapRule] = ()
    fallback: Sequence[Candidate] | None = None
    limit: int = 10
    max_per_partner: int = 10
    channel: str = "app"
    personalized: bool = True
    sensitive: frozenset[str] = frozenset()


def decide(case: Case) -> Choice:
    request = SelectionRequest(
        member_id="m1",
        channel=case.channel,
        now=NOW,
        limit=case.limit,
        max_per_partner=case.max_per_partner,
        personalized=case.candidates,
        fallback=case.candidates if case.fallback is None else case.fallback,
        rules=case.rules,
        sensitive=case.sensitive,
    )
    return select_offers(MemberState(case.preferences, case.counts, case.redeemed), request)


def check(case: Case) -> None:
    choice = decide(case)
    assert list(choice.offer_ids) == case.chosen
    assert choice.personalized == case.personalized
    left_out = {item.offer_id: (item.reason, item.detail) for item in choice.left_out}
    assert left_out == case.left_out
    increments = {item.counter: (item.amount, item.ttl_seconds) for item in choice.increments}
    assert increments == case.increments


PREFERENCES = {
    "nothing opted out": Case([A, B, C], ["a", "b", "c"]),
    "opt out of everything": Case(
        [A, B, C],
        [],
        {"a": ("opt_out", "all"), "b": ("opt_out", "all"), "c": ("opt_out", "all")},
        preferences=Preferences(opt_out_all=True),
    ),
    "opt out of the request's channel": Case(
        [A, B],
        [],
        {"a": ("opt_out", "channel"), "b": ("opt_out", "channel")},
        preferences=Preferences(opted_out_channels=frozenset({"app"})),
    ),
    "opt out of another channel": Case(
        [A, B], ["a", "b"], preferences=Preferences(opted_out_channels=frozenset({"web"}))
    ),
    "opt out of a category": Case(
        [A, B, C],
        ["b"],
        {"a": ("opt_out", "category"), "c": ("opt_out", "category")},
        preferences=Preferences(opted_out_categories=frozenset({"food"})),
    ),
    "opt out of a partner": Case(
        [A, B, D],
        ["b"],
        {"a": ("opt_out", "partner"), "d": ("opt_out", "partner")},
        preferences=Preferences(opted_out_partners=frozenset({"p1"})),
    ),
    "category is named before partner": Case(
        [A],
        [],
        {"a": ("opt_out", "category")},
        preferences=Preferences(
            opted_out_categories=frozenset({"food"}), opted_out_partners=frozenset({"p1"})
        ),
    ),
    "personalization off walks the fallback order": Case(
        [A, B, C],
        ["c", "a"],
        fallback=[C, A],
        preferences=Preferences(personalization=False),
        personalized=False,
    ),
    "opt out of everything, fallback order counted": Case(
        [A, B, C],
        [],
        {"c": ("opt_out", "all")},
        fallback=[C],
        preferences=Preferences(opt_out_all=True, personalization=False),
        personalized=False,
    ),
}

LIMITS_AND_BUDGETS = {
    "limit reached: the rest is not walked": Case(
        [A, B, C, D], ["a", "b"], {"c": ("limit", None), "d": ("limit", None)}, limit=2
    ),
    "limit of zero": Case([A, B], [], {"a": ("limit", None), "b": ("limit", None)}, limit=0),
    "per-partner limit": Case(
        [A, D, E, B], ["a", "d", "b"], {"e": ("partner_limit", "p1")}, max_per_partner=2
    ),
    "opted-out offers do not use up the partner's share": Case(
        [Candidate("x", "p1", "toys"), D, E],
        ["d", "e"],
        {"x": ("opt_out", "category")},
        preferences=Preferences(opted_out_categories=frozenset({"toys"})),
        max_per_partner=2,
    ),
    "budget spent": Case(
        [Candidate("a", "p1", "food", budget=2), Candidate("b", "p2", "travel", budget=3)],
        ["b"],
        {"a": ("budget", None)},
        redeemed={"a": 2, "b": 2},
    ),
    "budget of zero is spent": Case(
        [Candidate("a", "p1", "food", budget=0)], [], {"a": ("budget", None)}
    ),
    "no budget ignores redemptions": Case([A], ["a"], redeemed={"a": 99}),
    "partner limit is checked before budget": Case(
        [A, Candidate("d", "p1", "fuel", budget=0)],
        ["a"],
        {"d": ("partner_limit", "p1")},
        max_per_partner=1,
    ),
    "a repeated offer is walked twice": Case([A, B, A], ["a", "b", "a"]),
}

CAPS = {
    "member_offer cap by day": Case(
        [A, B],
        ["b"],
        {"a": ("cap", "per_day")},
        {counter("per_day", "member_offer", "b"): (1, DAY_LEFT)},
        rules=[rule("per_day", "member_offer", 2)],
        counts={counter("per_day", "member_offer", "a"): 2},
    ),
    "yesterday's count does not count today": Case(
        [A],
        ["a"],
        increments={counter("per_day", "member_offer", "a"): (1, DAY_LEFT)},
        rules=[rule("per_day", "member_offer", 1)],
        counts={counter("per_day", "member_offer", "a", "2024-05-16"): 5},
    ),
    "member_partner cap by week counts this walk's choices": Case(
        [A, D, E, B],
        ["a", "d", "b"],
        {"e": ("cap", "per_partner")},
        {
            counter("per_partner", "member_partner", "p1", "2024-W20"): (2, WEEK_LEFT),
            counter("per_partner", "member_partner", "p2", "2024-W20"): (1, WEEK_LEFT),
        },
        rules=[rule("per_partner", "member_partner", 2, "week")],
    ),
    "member_channel cap by month": Case(
        [A, B, C],
        ["a"],
        {"b": ("cap", "per_channel"), "c": ("cap", "per_channel")},
        {counter("per_channel", "member_channel", "app", "2024-05"): (1, MONTH_LEFT)},
        rules=[rule("per_channel", "member_channel", 3, "month")],
        counts={counter("per_channel", "member_channel", "app", "2024-05"): 2},
    ),
    "member_channel cap counts only the request's channel": Case(
        [A],
        ["a"],
        increments={counter("per_channel", "member_channel", "app", "2024-05"): (1, MONTH_LEFT)},
        rules=[rule("per_channel", "member_channel", 1, "month")],
        counts={counter("per_channel", "member_channel", "web", "2024-05"): 1},
    ),
    "offer_total cap never expires": Case(
        [A, B],
        ["b"],
        {"a": ("cap", "total")},
        {counter("total", "offer_total", "b", "total"): (1, None)},
        rules=[rule("total", "offer_total", 2, "total")],
        counts={counter("total", "offer_total", "a", "total"): 2},
    ),
    "window in seconds": Case(
        [A, A],
        ["a"],
        {"a": ("cap", "per_hour")},
        {counter("per_hour", "member_offer", "a", HOUR_BUCKET): (1, 3600)},
        rules=[rule("per_hour", "member_offer", 1, 3600)],
    ),
    "cap of zero serves nothing": Case(
        [A, B],
        [],
        {"a": ("cap", "paused"), "b": ("cap", "paused")},
        rules=[rule("paused", "offer_total", 0, "total")],
    ),
    "the first rule at its limit is named": Case(
        [A],
        [],
        {"a": ("cap", "second")},
        rules=[
            rule("first", "member_offer", 5),
            rule("second", "member_partner", 1),
            rule("third", "offer_total", 0, "total"),
        ],
        counts={counter("second", "member_partner", "p1"): 1},
    ),
    "rules counting events are read but not incremented": Case(
        [A, B],
        ["b"],
        {"a": ("cap", "clicks")},
        rules=[rule("clicks", "member_offer", 1, counts="click")],
        counts={counter("clicks", "member_offer", "a"): 1},
    ),
    "budget is checked before caps": Case(
        [Candidate("a", "p1", "food", budget=1)],
        [],
        {"a": ("budget", None)},
        rules=[rule("paused", "offer_total", 0, "total")],
        redeemed={"a": 1},
    ),
    "every served rule counts a chosen offer once": Case(
        [A],
        ["a"],
        increments={
            counter("per_offer", "member_offer", "a"): (1, DAY_LEFT),
            counter("per_partner", "member_partner", "p1", "2024-W20"): (1, WEEK_LEFT),
            counter("per_channel", "member_channel", "app", "2024-05"): (1, MONTH_LEFT),
            counter("per_total", "offer_total", "a", "total"): (1, None),
        },
        rules=[
            rule("per_offer", "member_offer", 9),
            rule("per_partner", "member_partner", 9, "week"),
            rule("per_channel", "member_channel", 9, "month"),
            rule("per_total", "offer_total", 9, "total"),
            rule("impressions", "offer_total", 9, "total", counts="impression"),
        ],
    ),
    "capped candidates are not counted": Case(
        [A, D],
        ["d"],
        {"a": ("cap", "per_offer")},
        {
            counter("per_offer", "member_offer", "d"): (1, DAY_LEFT),
            counter("per_partner", "member_partner", "p1"): (1, DAY_LEFT),
        },
        rules=[rule("per_offer", "member_offer", 1), rule("per_partner", "member_partner", 5)],
        counts={counter("per_offer", "member_offer", "a"): 1},
    ),
}


@pytest.mark.parametrize("case", PREFERENCES.values(), ids=PREFERENCES.keys())
def test_preferences(case):
    check(case)


@pytest.mark.parametrize("case", LIMITS_AND_BUDGETS.values(), ids=LIMITS_AND_BUDGETS.keys())
def test_limits_and_budgets(case):
    check(case)


@pytest.mark.parametrize("case", CAPS.values(), ids=CAPS.keys())
def test_caps(case):
    check(case)


def test_suppressed_counts_every_reason_but_the_limit():
    case = Case(
        [
            A,
            E,
            Candidate("x", "p4", "toys", budget=0),
            C,
            Candidate("y", "p5", "toys"),
            Candidate("z", "p6", "toys"),
            Candidate("w", "p7", "toys"),
        ],
        ["a", "z"],
        {
            "e": ("partner_limit", "p1"),
            "x": ("budget", None),
            "c": ("opt_out", "partner"),
            "y": ("cap", "per_offer"),
            "w": ("limit", None),
        },
        {
            counter("per_offer", "member_offer", "a"): (1, DAY_LEFT),
            counter("per_offer", "member_offer", "z"): (1, DAY_LEFT),
        },
        rules=[rule("per_offer", "member_offer", 1)],
        preferences=Preferences(opted_out_partners=frozenset({"p3"})),
        counts={counter("per_offer", "member_offer", "y"): 1},
        max_per_partner=1,
        limit=2,
    )
    check(case)
    assert decide(case).selection() == Selection(
        ["a", "z"], True, {"opt_out": 1, "partner_limit": 1, "budget": 1, "cap": 1}
    )


def test_increments_sum_per_counter_in_the_order_first_touched():
    choice = decide(Case([A, B, D], [], rules=[rule("per_partner", "member_partner", 9, "week")]))
    assert choice.increments == (
        Increment(counter("per_partner", "member_partner", "p1", "2024-W20"), 2, WEEK_LEFT),
        Increment(counter("per_partner", "member_partner", "p2", "2024-W20"), 1, WEEK_LEFT),
    )
    assert choice.positions == (0, 1, 2)


def test_state_is_only_read():
    class Recording:
        def __init__(self) -> None:
            self.asked: list[object] = []

        def get(self, key: object, default: int, /) -> int:
            self.asked.append(key)
            return default

    counts, redeemed = Recording(), Recording()
    budgeted = Candidate("b", "p2", "travel", budget=1)
    state = MemberState(Preferences(), counts, redeemed)
    request = SelectionRequest(
        "m1", "app", NOW, 1, 1, [A, budgeted], [], [rule("per_offer", "member_offer", 1)]
    )
    first, second = select_offers(state, request), select_offers(state, request)
    assert first == second
    assert first.offer_ids == ("a",)
    assert redeemed.asked == [] and counts.asked == [counter("per_offer", "member_offer", "a")] * 2


SENSITIVE = {
    "a sensitive category is left out of the personalized walk": Case(
        [A, B, C], ["b"], {"a": ("sensitive", "food"), "c": ("sensitive", "food")},
        sensitive=frozenset({"food"}),
    ),
    "consent to the category lets personalization choose it": Case(
        [A, B, C], ["a", "b", "c"], sensitive=frozenset({"food"}),
        preferences=Preferences(consents=frozenset({"food"})),
    ),
    "consent to another sensitive category does not": Case(
        [A, B], ["b"], {"a": ("sensitive", "food")}, sensitive=frozenset({"food", "travel"}),
        preferences=Preferences(consents=frozenset({"travel"})),
    ),
    "the fallback order may show a sensitive offer": Case(
        [A, B], ["a", "b"], sensitive=frozenset({"food"}), personalized=False,
        preferences=Preferences(personalization=False),
    ),
    "an opt-out is named before sensitivity": Case(
        [A, B], ["b"], {"a": ("opt_out", "category")}, sensitive=frozenset({"food"}),
        preferences=Preferences(opted_out_categories=frozenset({"food"})),
    ),
    "sensitive offers do not use up the partner's share": Case(
        [A, D], ["d"], {"a": ("sensitive", "food")}, sensitive=frozenset({"food"}),
        max_per_partner=1,
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", SENSITIVE.values(), ids=SENSITIVE.keys())
def test_sensitive_categories(case):
    check(case)


@pytest.mark.parametrize("purchase_reasons", [True, False])
def test_the_choice_carries_whether_reasons_may_mention_purchases(purchase_reasons):
    preferences = Preferences(purchase_reasons=purchase_reasons)

    assert decide(Case([A], ["a"], preferences=preferences)).selection().purchase_reasons is (
        purchase_reasons
    )
