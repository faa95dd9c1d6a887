"""What members did with served offers: the events apps report, as the event log keeps them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Event = Literal["impression", "click", "redemption"]
"""What a member did with an offer after it was served; rules with `counts` equal to it count it."""
EVENT_ID_TTL_SECONDS = 7 * 86_400
"""How long an `event_id` is remembered: a repeat within it is a duplicate. Older events are
refused by `POST /v1/events`, so a retried batch can never count twice."""


@dataclass(frozen=True)
class OfferEvent:
    """What a member did with a served offer (offer fields from the catalog in force)."""

    type: Event
    member_id: str
    offer_id: str
    partner_id: str
    category: str
    channel: str
    ts: float
    """When it happened, Unix seconds; picks the cap buckets it counts in."""
    event_id: str | None = None
    """The sender's id: an event sent twice with one id counts once."""
    decision_id: str | None = None
    """The offers response (`decision_id`) that showed the offer, when the app says so."""


@dataclass(frozen=True)
class StoredEvent:
    """A kept event and its position in the event stream (a Redis stream id, `<ms>-<seq>`)."""

    stream_id: str
    event: OfferEvent


@dataclass(frozen=True)
class EventsRecorded:
    """What `record_events` did with a batch."""

    accepted: int
    duplicates: int
