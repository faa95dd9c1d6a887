"""Attribution: which logged decision an event (impression, click, redemption) belongs to.

The rule, in order:
1. by id: the event names a `decision_id` that is in the log;
2. else the member's latest decision that showed the event's offer, made at or before the event
   and at most `window_seconds` before it.
An event matched by neither is unattributed (None). Pure: the same events and decisions always
attribute alike.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence

from perkrank.serving.domain.decisions import Decision
from perkrank.serving.domain.events import OfferEvent

ATTRIBUTION_WINDOW_SECONDS = 7 * 86_400
"""How long after a decision an event without a decision id may still be attributed to it."""


class DecisionIndex:
    """Decisions by id, and by member and offer shown in time order, for attributing events."""

    def __init__(self, decisions: Iterable[Decision]) -> None:
        self._by_id: dict[str, Decision] = {}
        shown: dict[tuple[str, str], list[Decision]] = {}
        for decision in decisions:
            self._by_id[decision.decision_id] = decision
            for offer in decision.offers:
                shown.setdefault((decision.member_id, offer.offer_id), []).append(decision)
        self._shown = {key: sorted(found, key=_time) for key, found in shown.items()}
        self._times = {
            key: [_time(decision) for decision in found] for key, found in self._shown.items()
        }

    def attribute(
        self, event: OfferEvent, window_seconds: float = ATTRIBUTION_WINDOW_SECONDS
    ) -> Decision | None:
        """The decision `event` belongs to (see the module's rule); None: unattributed."""
        if event.decision_id is not None:
            named = self._by_id.get(event.decision_id)
            if named is not None:
                return named
        key = (event.member_id, event.offer_id)
        times = self._times.get(key)
        if not times:
            return None
        position = bisect.bisect_right(times, event.ts) - 1
        if position < 0 or event.ts - times[position] > window_seconds:
            return None
        return self._shown[key][position]


def attribute(
    events: Sequence[OfferEvent],
    decisions: Iterable[Decision],
    window_seconds: float = ATTRIBUTION_WINDOW_SECONDS,
) -> list[Decision | None]:
    """Each event's decision (None: unattributed), in the order of `events`."""
    index = DecisionIndex(decisions)
    return [index.attribute(event, window_seconds) for event in events]


def _time(decision: Decision) -> float:
    return decision.ts
