"""Attribution of events to logged decisions: by decision id, else the member's latest decision
that showed the offer within the window."""

import pytest

from perkrank.serving.domain.attribution import ATTRIBUTION_WINDOW_SECONDS, attribute
from perkrank.serving.domain.decisions import DecidedOffer, Decision
from perkrank.serving.domain.events import OfferEvent

HOUR = 3600


def decision(decision_id: str, member_id: str, ts: float, *offer_ids: str) -> Decision:
    offers = tuple(DecidedOffer(offer, rank, 1.0, 1.0) for rank, offer in enumerate(offer_ids, 1))
    return Decision(
        decision_id, member_id, "app", ts, "v1", "lift", "arm", "personalized", True, offers
    )


DECISIONS = [
    decision("d1", "alice", 1000, "o1", "o2"),
    decision("d2", "alice", 1000 + 2 * HOUR, "o2"),
    decision("d3", "bob", 1000 + HOUR, "o1"),
    decision("d4", "alice", 1000 + 3 * HOUR),  # showed nothing (a holdout arm with no offers)
]


def event(member_id: str, offer_id: str, ts: float, decision_id: str | None = None) -> OfferEvent:
    return OfferEvent("click", member_id, offer_id, "P1", "Beauty", "app", ts, None, decision_id)


@pytest.mark.parametrize(
    ("case", "sent", "expected"),
    [
        ("named id", event("alice", "o1", 1000 + 5 * HOUR, "d1"), "d1"),
        ("named id wins over a later showing", event("alice", "o2", 1000 + 5 * HOUR, "d1"), "d1"),
        ("unknown id: latest showing", event("alice", "o2", 1000 + 5 * HOUR, "gone"), "d2"),
        ("no id: latest showing of that offer", event("alice", "o2", 1000 + 5 * HOUR), "d2"),
        ("no id: earlier showing of another offer", event("alice", "o1", 1000 + 5 * HOUR), "d1"),
        ("before the later showing", event("alice", "o2", 1000 + HOUR), "d1"),
        ("at the decision's own time", event("alice", "o2", 1000 + 2 * HOUR), "d2"),
        ("before any showing", event("alice", "o1", 999), None),
        ("another member's showing", event("bob", "o2", 1000 + 5 * HOUR), None),
        ("offer never shown", event("alice", "o9", 1000 + 5 * HOUR), None),
        ("at the window's end", event("alice", "o1", 1000 + ATTRIBUTION_WINDOW_SECONDS), "d1"),
        ("past the window", event("alice", "o1", 1001 + ATTRIBUTION_WINDOW_SECONDS), None),
    ],
)
def test_an_event_is_attributed_by_id_else_to_the_latest_showing_in_the_window(
    case, sent, expected
):
    (found,) = attribute([sent], DECISIONS)
    assert (found.decision_id if found else None) == expected, case


def test_the_window_is_configurable():
    late = event("alice", "o1", 1000 + 2 * HOUR)

    assert attribute([late], DECISIONS, window_seconds=HOUR) == [None]
    assert attribute([late], DECISIONS, window_seconds=2 * HOUR)[0].decision_id == "d1"


def test_events_keep_their_order_and_decisions_may_come_in_any_order():
    events = [event("bob", "o1", 1000 + 2 * HOUR), event("alice", "o2", 1000 + 4 * HOUR)]

    found = attribute(events, reversed(DECISIONS))

    assert [decision.decision_id for decision in found] == ["d3", "d2"]
