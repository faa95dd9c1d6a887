"""Which counters a reported event adds to: shared by both adapters of the event log."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from perkrank.config import CapRule
from perkrank.serving.domain.events import OfferEvent
from perkrank.serving.domain.windows import current_bucket
from perkrank.serving.state.keys import cap_counter

EVENTS_KEPT = 1_000_000
"""Events the store keeps by default (`ServeConfig.events_kept`); the oldest are dropped."""
DECISIONS_KEPT = 1_000_000
"""Decisions the store keeps by default (`ServeConfig.decisions_kept`); the oldest are dropped."""


@dataclass(frozen=True)
class EventCounter:
    """One counter an event adds 1 to: a key (and hash field) of docs/redis_keys.md."""

    key: str
    field: str | None
    ttl_seconds: int | None
    """Seconds from now until its bucket ends; None: never."""


def event_counters(
    prefix: str, event: OfferEvent, rules: Sequence[CapRule], now: float
) -> list[EventCounter]:
    """The counters of the rules counting `event.type`, in the buckets `event.ts` falls in;
    a bucket that ended before `now` is left out (nothing reads it again)."""
    counters = []
    for rule in rules:
        if rule.counts != event.type:
            continue
        bucket = current_bucket(rule.window, event.ts)
        ttl_seconds = None
        if bucket.ttl_seconds is not None:
            left = event.ts + bucket.ttl_seconds - now
            if left <= 0:
                continue
            ttl_seconds = math.ceil(left)
        key, field = cap_counter(
            prefix,
            rule.scope,
            rule.name,
            bucket.label,
            member_id=event.member_id,
            channel=event.channel,
            offer_id=event.offer_id,
            partner_id=event.partner_id,
        )
        counters.append(EventCounter(key, field, ttl_seconds))
    return counters
