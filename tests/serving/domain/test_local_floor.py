"""The local floor by tables: `select_offers` with `local_slots` takes local candidates first,
by the same rules, and fills the rest of the list in order."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from perkrank.config import CapRule
from perkrank.serving.domain.rules import CapCounter, MemberState, select_offers
from perkrank.serving.domain.selection import Candidate, Preferences, SelectionRequest

NOW = datetime(2024, 5, 17, 12, tzinfo=UTC).timestamp()
F1 = Candidate("f1", "fed1", "food")
F2 = Candidate("f2", "fed2", "travel")
F3 = Candidate("f3", "fed3", "fuel")
L1 = Candidate("l1", "loc1", "food", local=True)
L2 = Candidate("l2", "loc2", "travel", local=True)
L3 = Candidate("l3", "loc1", "fuel", local=True)


def rule(name: str, scope: str, limit: int) -> CapRule:
    return CapRule(name=name, scope=scope, limit=limit, window="day")


@dataclass
class Case:
    """Walk `candidates` with `local_slots` and `limit`; `chosen` in order, `left_out` by id."""

    candidates: Sequence[Candidate]
    local_slots: int
    limit: int
    chosen: list[str]
    left_out: dict[str, str] = field(default_factory=dict)
    rules: Sequence[CapRule] = ()
    counts: dict[CapCounter, int] = field(default_factory=dict)
    preferences: Preferences = field(default_factory=Preferences)
    max_per_partner: int = 10


CASES = {
    "no floor: the order's best": Case([F1, F2, F3, L1], 0, 3, ["f1", "f2", "f3"], {"l1": "limit"}),
    "floor of one moves a local up": Case(
        [F1, F2, F3, L1, L2], 1, 3, ["f1", "f2", "l1"], {"f3": "limit", "l2": "limit"}
    ),
    "floor already met by the order": Case(
        [L1, F1, F2, L2], 1, 2, ["l1", "f1"], {"f2": "limit", "l2": "limit"}
    ),
    "floor of two": Case(
        [F1, F2, L1, L2, F3], 2, 3, ["f1", "l1", "l2"], {"f2": "limit", "f3": "limit"}
    ),
    "unsatisfiable: fewer locals than slots": Case(
        [F1, F2, F3, L1], 2, 3, ["f1", "f2", "l1"], {"f3": "limit"}
    ),
    "no local eligible: the order's best": Case([F1, F2, F3], 2, 3, ["f1", "f2", "f3"]),
    "slots beyond the limit fill the list with locals": Case(
        [F1, L1, L2], 5, 2, ["l1", "l2"], {"f1": "limit"}
    ),
    "a capped local is passed over for the next local": Case(
        [L1, F1, F2, L2],
        1,
        2,
        ["f1", "l2"],
        {"l1": "cap", "f2": "limit"},
        rules=[rule("per_day", "member_offer", 1)],
        counts={CapCounter("per_day", "member_offer", "2024-05-17", "l1"): 1},
    ),
    "caps block every local: no floor left to meet": Case(
        [F1, L1, L2, F2],
        2,
        2,
        ["f1", "f2"],
        {"l1": "cap", "l2": "cap"},
        rules=[rule("per_day", "member_offer", 1)],
        counts={
            CapCounter("per_day", "member_offer", "2024-05-17", "l1"): 1,
            CapCounter("per_day", "member_offer", "2024-05-17", "l2"): 1,
        },
    ),
    "an opted-out local partner is not served": Case(
        [L1, F1, F2, L2],
        1,
        2,
        ["f1", "l2"],
        {"l1": "opt_out", "f2": "limit"},
        preferences=Preferences(opted_out_partners=frozenset({"loc1"})),
    ),
    "the per-partner limit binds locals too": Case(
        [F1, L1, L3, L2], 2, 4, ["f1", "l1", "l2"], {"l3": "partner_limit"}, max_per_partner=1
    ),
    "locals count against the channel cap first": Case(
        [F1, F2, L1],
        1,
        3,
        ["f1", "l1"],
        {"f2": "cap"},
        rules=[rule("per_channel", "member_channel", 2)],
    ),
    "opted out of everything: nothing, floor or not": Case(
        [F1, L1],
        1,
        2,
        [],
        {"f1": "opt_out", "l1": "opt_out"},
        preferences=Preferences(opt_out_all=True),
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_local_floor(case: Case) -> None:
    request = SelectionRequest(
        member_id="m1",
        channel="app",
        now=NOW,
        limit=case.limit,
        max_per_partner=case.max_per_partner,
        personalized=case.candidates,
        fallback=case.candidates,
        rules=case.rules,
        local_slots=case.local_slots,
    )
    choice = select_offers(MemberState(case.preferences, case.counts, {}), request)
    assert list(choice.offer_ids) == case.chosen
    assert list(choice.positions) == sorted(choice.positions)
    assert {item.offer_id: item.reason for item in choice.left_out} == case.left_out


def test_the_floor_counts_locals_once_against_served_caps() -> None:
    """A local taken by the floor's walk is counted once, not again by the second walk."""
    request = SelectionRequest(
        member_id="m1",
        channel="app",
        now=NOW,
        limit=3,
        max_per_partner=10,
        personalized=[F1, L1],
        fallback=[],
        rules=[rule("per_channel", "member_channel", 10)],
        local_slots=1,
    )
    choice = select_offers(MemberState(Preferences(), {}, {}), request)
    assert [(item.counter.value, item.amount) for item in choice.increments] == [("app", 2)]
