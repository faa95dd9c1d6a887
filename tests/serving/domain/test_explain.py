"""Explaining a member's offers by tables: each case is a catalog, a member's state and the
verdict expected for every offer (status and the facts behind it)."""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import pytest

from perkrank.config import CapRule
from perkrank.serving.domain.catalog import Offer
from perkrank.serving.domain.explain import (
    ExplainRequest,
    counters_to_read,
    explain_offers,
    ineligibility,
)
from perkrank.serving.domain.rules import CapCounter, MemberState
from perkrank.serving.domain.selection import Candidate, Preferences

NOW = datetime(2024, 5, 17, 12, tzinfo=UTC).timestamp()
TODAY = date(2024, 5, 17)
DAY_END = datetime(2024, 5, 18, tzinfo=UTC).timestamp()


def offer(
    offer_id,
    partner="p1",
    category="food",
    *,
    regions=None,
    tier="base",
    start=date(2024, 5, 1),
    end=date(2024, 5, 31),
    budget=None,
):
    return Offer(
        offer_id,
        partner,
        partner.upper(),
        "national",
        category,
        "t",
        "r",
        tier,
        start,
        end,
        None if regions is None else frozenset(regions),
        budget,
    )


OFFERS = (
    offer("a"),
    offer("b", "p2", "travel"),
    offer("c", "p1", "fuel"),
    offer("d", "p3", "food", budget=5),
    offer("old", end=date(2024, 5, 10)),
    offer("south", regions={"south"}),
    offer("vip", tier="vip", regions={"south"}),
)


def candidate(o: Offer) -> Candidate:
    return Candidate(o.offer_id, o.partner_id, o.category, o.budget)


ELIGIBLE = [candidate(o) for o in OFFERS if not ineligibility(o, "north", "gold", TODAY)]


def day_rule(name, scope, limit, counts="served"):
    return CapRule(name=name, scope=scope, limit=limit, window="day", counts=counts)


@dataclass
class Case:
    expected: dict[str, tuple]
    """offer id → (status, rank, detail subset) of every catalog offer."""
    rules: tuple = ()
    preferences: Preferences = field(default_factory=Preferences)
    counts: dict = field(default_factory=dict)
    redeemed: dict = field(default_factory=dict)
    limit: int = 2
    pool: int = 3
    max_per_partner: int = 2


NOT_ELIGIBLE = {
    "old": ("not_eligible", None, {"checks": ["dates"], "valid_to": "2024-05-10"}),
    "south": ("not_eligible", None, {"checks": ["region"], "regions": ["south"]}),
    "vip": ("not_eligible", None, {"checks": ["region", "tier"], "min_tier": "vip"}),
}

CASES = {
    "the best two shown, the third below the limit, the fourth below the pool": Case(
        {
            "a": ("shown", 1, {}),
            "b": ("shown", 2, {}),
            "c": ("below_cut", 3, {"limit": 2}),
            "d": ("below_cut", 4, {"pool": 3}),
        }
        | NOT_ELIGIBLE,
    ),
    "a category opt-out names its kind": Case(
        {
            "a": ("opt_out", 1, {"kind": "category"}),
            "b": ("shown", 2, {}),
            "c": ("shown", 3, {}),
            "d": ("below_cut", 4, {"pool": 3}),
        }
        | NOT_ELIGIBLE,
        preferences=Preferences(opted_out_categories=frozenset({"food"})),
    ),
    "opting out of the channel hides every eligible offer": Case(
        {
            "a": ("opt_out", 1, {"kind": "channel"}),
            "b": ("opt_out", 2, {"kind": "channel"}),
            "c": ("opt_out", 3, {"kind": "channel"}),
            "d": ("opt_out", 4, {"kind": "channel"}),
        }
        | NOT_ELIGIBLE,
        preferences=Preferences(opted_out_channels=frozenset({"app"})),
    ),
    "a stored cap names rule, count, limit and when the day frees it": Case(
        {
            "a": ("cap", 1, {"rule": "offer_day", "count": 1, "limit": 1, "until": DAY_END}),
            "b": ("shown", 2, {}),
            "c": ("shown", 3, {}),
            "d": ("below_cut", 4, {"pool": 3}),
        }
        | NOT_ELIGIBLE,
        rules=(day_rule("offer_day", "member_offer", 1),),
        counts={CapCounter("offer_day", "member_offer", "2024-05-17", "a"): 1},
    ),
    "a partner cap filled by this request counts what it chose": Case(
        {
            "a": ("shown", 1, {}),
            "b": ("shown", 2, {}),
            "c": ("cap", 3, {"rule": "partner_day", "count": 1, "limit": 1}),
            "d": ("below_cut", 4, {"pool": 3}),
        }
        | NOT_ELIGIBLE,
        rules=(day_rule("partner_day", "member_partner", 1),),
        limit=3,
    ),
    "the per-partner limit names the partner": Case(
        {
            "a": ("shown", 1, {}),
            "b": ("shown", 2, {}),
            "c": ("partner_limit", 3, {"partner_id": "p1", "max_per_partner": 1}),
            "d": ("below_cut", 4, {"pool": 3}),
        }
        | NOT_ELIGIBLE,
        limit=3,
        max_per_partner=1,
    ),
    "a spent budget shows redemptions and budget": Case(
        {
            "a": ("shown", 1, {}),
            "b": ("shown", 2, {}),
            "c": ("shown", 3, {}),
            "d": ("budget", 4, {"redeemed": 5, "budget": 5}),
        }
        | NOT_ELIGIBLE,
        redeemed={"d": 5},
        limit=4,
        pool=4,
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_every_catalog_offer_gets_its_verdict(case: Case):
    explanation = explain_offers(
        ExplainRequest(
            member_id="m1",
            channel="app",
            now=NOW,
            day=TODAY,
            region="north",
            tier="gold",
            limit=case.limit,
            pool=case.pool,
            max_per_partner=case.max_per_partner,
            rules=case.rules,
            offers=OFFERS,
            personalized=ELIGIBLE,
            fallback=ELIGIBLE,
            state=MemberState(case.preferences, case.counts, case.redeemed),
        )
    )
    verdicts = {v.offer_id: v for v in (*explanation.shown, *explanation.hidden)}
    assert set(verdicts) == {o.offer_id for o in OFFERS}
    for offer_id, (status, rank, detail) in case.expected.items():
        verdict = verdicts[offer_id]
        assert (verdict.status, verdict.rank) == (status, rank), offer_id
        assert verdict.detail.items() >= detail.items(), offer_id
    assert [v.offer_id for v in explanation.shown] == [
        offer_id for offer_id, (status, *_) in case.expected.items() if status == "shown"
    ]
    assert all(v.reason for v in explanation.shown)


def test_ineligibility_names_each_failed_check():
    far = offer("x", regions={"south"}, tier="vip", start=date(2024, 6, 1), end=date(2024, 6, 2))
    assert ineligibility(far, "north", "gold", TODAY) == ["dates", "region", "tier"]
    assert ineligibility(far, "south", "vip", date(2024, 6, 2)) == []


def test_counters_to_read_cover_each_rule_and_scope_value_once():
    rules = (day_rule("o", "member_offer", 1), day_rule("p", "member_partner", 1))
    counters = counters_to_read(rules, ELIGIBLE, "app", NOW)
    assert CapCounter("o", "member_offer", "2024-05-17", "d") in counters
    assert [c.value for c in counters if c.rule == "p"] == ["p1", "p2", "p3"]
