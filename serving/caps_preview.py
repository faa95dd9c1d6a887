"""Preview proposed cap rules against the decision and event logs of the last days.

Reads what the store kept since then (`DecisionLog.read_decisions`, `EventLog.read_events`,
page by page from the stream id of the window's start) and hands it to the pure
`perkrank.serving.domain.cap_preview.preview`, next to the rules in force.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from perkrank.config import CapRule
from perkrank.serving.domain.cap_preview import Preview, preview
from perkrank.serving.domain.context import ServingContext
from perkrank.serving.domain.decisions import Decision, StoredDecision
from perkrank.serving.domain.events import StoredEvent
from perkrank.serving.domain.selection import Candidate

SECONDS_PER_DAY = 86_400
PAGE = 10_000
"""Entries read per store round trip."""

Kept = TypeVar("Kept", StoredEvent, StoredDecision)


def preview_caps(
    context: ServingContext,
    proposed: Sequence[CapRule],
    days: int,
    reward_costs: Mapping[str, float] | None = None,
    now: float | None = None,
) -> Preview:
    """What `proposed` would have done over the last `days` days, next to the rules in force."""
    now = time.time() if now is None else now
    since = now - days * SECONDS_PER_DAY
    store = context.store
    stored_decisions = read_since(store.read_decisions, since)
    decisions: list[Decision] = [
        stored.decision for stored in stored_decisions if stored.decision.ts >= since
    ]
    events = read_since(store.read_events, since)
    candidates: dict[str, Candidate] = {
        stored.event.offer_id: Candidate(
            stored.event.offer_id, stored.event.partner_id, stored.event.category
        )
        for stored in events
    }
    for candidate in context.ranker.catalog.candidates:
        candidates[candidate.offer_id] = candidate
    return preview(context.rules(), proposed, decisions, events, candidates, now, reward_costs)


def read_since(read: Callable[[str, int], list[Kept]], since: float) -> list[Kept]:
    """Every kept entry of a stream recorded at or after `since` (Unix seconds), oldest first."""
    after = f"{max(0, int(since * 1000) - 1)}-{2**64 - 1}"
    entries: list[Kept] = []
    while True:
        page = read(after, PAGE)
        entries += page
        if len(page) < PAGE:
            return entries
        after = page[-1].stream_id
