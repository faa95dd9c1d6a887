"""What members did with served offers: `POST /v1/events` (app key) records impressions,
clicks and redemptions, and `GET /v1/admin/events` (admin key) pages through the kept events
for `perkrank events export`.

A batch is checked whole, in one pass, before anything is stored: every problem of every
event (its fields, an unknown offer, a `ts` out of range) is reported in one 422 (`loc` =
body, events, index, field) and nothing is counted. Accepted events count against
the cap rules that count their type, in the cap bucket of the event's own time; a redemption
also spends the offer's budget. An `event_id` seen within the last 7 days makes the event a
duplicate that changes nothing, so a client may resend a batch it got no answer for.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from fastapi.exceptions import RequestValidationError
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SkipValidation,
    StringConstraints,
    ValidationError,
    field_validator,
)

from perkrank.config import ServeConfig
from perkrank.serving.api.deps import AdminKey, AppKey, Context
from perkrank.serving.api.observability import EVENTS_RECEIVED
from perkrank.serving.api.schemas import MEMBER_ID_PATTERN, Channel, ErrorBody, Name
from perkrank.serving.domain.catalog import Catalog
from perkrank.serving.domain.events import EVENT_ID_TTL_SECONDS, OfferEvent

MAX_SECONDS_AHEAD = 300
"""How far in the future an event's `ts` may lie (client clocks drift)."""
MAX_DAYS_AGO = EVENT_ID_TTL_SECONDS // 86_400
"""How old an event may be: as long as its `event_id` is remembered."""
STREAM_ID_PATTERN = r"^\d{1,20}-\d{1,20}$"
MAX_STREAM_ID_PART = 2**64 - 1
"""Both parts of a stream id `<ms>-<seq>` are unsigned 64-bit numbers."""
MAX_PAGE = 10_000
KEPT_EVENT_FIELDS = (
    "event_id",
    "type",
    "member_id",
    "offer_id",
    "partner_id",
    "category",
    "channel",
    "decision_id",
)
"""The `OfferEvent` fields a kept event shows as they are (with stream_id, and ts as text)."""
Identifier = Annotated[str, StringConstraints(pattern=MEMBER_ID_PATTERN)]


def _within_64_bits(stream_id: str) -> str:
    if any(int(part) > MAX_STREAM_ID_PART for part in stream_id.split("-")):
        raise ValueError(f"both parts of a stream id are at most {MAX_STREAM_ID_PART}")
    return stream_id


StreamId = Annotated[
    str,
    Query(
        pattern=STREAM_ID_PATTERN,
        description="A stream id `<ms>-<seq>` (unsigned 64-bit numbers); `0-0`: the first page.",
    ),
    AfterValidator(_within_64_bits),
]


class EventBody(BaseModel):
    """One thing a member did with an offer they were served."""

    model_config = ConfigDict(extra="forbid", strict=True)

    event_id: Identifier | None = Field(
        None, description="Your id for the event: sent again within 7 days, it counts once."
    )
    type: Literal["impression", "click", "redemption"]
    member_id: Identifier
    offer_id: Name = Field(description="An offer of the catalog in force.")
    channel: Channel
    ts: AwareDatetime = Field(
        strict=False,  # ISO 8601 text (checked below) becomes a datetime
        description="When it happened: ISO 8601 with an offset, at most 7 days ago and 5 "
        "minutes ahead; picks the cap windows it counts in.",
        examples=["2026-06-15T10:04:05Z"],
    )
    decision_id: Identifier | None = Field(
        None,
        description="The `decision_id` of the offers response that showed the offer: the "
        "event is attributed to that decision.",
    )

    @field_validator("ts", mode="before")
    @classmethod
    def _iso_text(cls, value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError("give ts as ISO 8601 text with an offset, e.g. 2026-06-15T10:04:05Z")
        return value


class EventsBody(BaseModel):
    """A batch of events (at most `ServeConfig.max_events_per_request`)."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {
                    "events": [
                        {
                            "event_id": "app-7f3a-000123",
                            "type": "redemption",
                            "member_id": "M000042",
                            "offer_id": "O2026-11-0117",
                            "channel": "app",
                            "ts": "2026-06-15T10:04:05Z",
                        }
                    ]
                }
            ]
        },
    )

    events: list[SkipValidation[EventBody]] = Field(min_length=1)
    """Documented as EventBody; each event is checked by `offer_events`, which reports the
    problems of all of them at once."""


class EventsRecordedBody(BaseModel):
    """How many events of the batch counted, and how many were duplicates of earlier ones."""

    accepted: int
    duplicates: int


class KeptEvent(BaseModel):
    """A stored event with the offer's partner and category (columns of the export)."""

    stream_id: str
    event_id: str | None
    type: str
    member_id: str
    offer_id: str
    partner_id: str
    category: str
    channel: str
    ts: str = Field(description="ISO 8601, UTC.")
    decision_id: str | None


class EventsPage(BaseModel):
    """Kept events, oldest first."""

    events: list[KeptEvent]
    next_after: str = Field(
        description="`after` for the next page; a page shorter than `count` was the last."
    )


def events_routes(settings: ServeConfig) -> APIRouter:
    """The events endpoints, under /v1."""
    router = APIRouter(prefix="/v1", tags=["events"])

    @router.post(
        "/events",
        response_model=EventsRecordedBody,
        summary="Record impressions, clicks and redemptions",
        responses={
            413: {
                "model": ErrorBody,
                "description": "Too many events in one batch, or a body over "
                "`max_json_body_bytes`.",
            }
        },
    )
    def post_events(body: EventsBody, _: AppKey, context: Context) -> EventsRecordedBody:
        """Count each event against the caps counting its type (a redemption also spends the
        offer's budget) and keep it for training; all or nothing, one store round trip."""
        if len(body.events) > settings.max_events_per_request:
            raise HTTPException(
                413,
                f"a batch holds at most {settings.max_events_per_request} events; "
                f"this one has {len(body.events)}: split it",
            )
        now = time.time()
        events = offer_events(body.events, context.ranker.catalog, now)
        recorded = context.store.record_events(events, context.rules(), now)
        EVENTS_RECEIVED.labels("accepted").inc(recorded.accepted)
        EVENTS_RECEIVED.labels("duplicate").inc(recorded.duplicates)
        return EventsRecordedBody(accepted=recorded.accepted, duplicates=recorded.duplicates)

    @router.get(
        "/admin/events",
        response_model=EventsPage,
        summary="Kept events, oldest first, page by page (admin key)",
    )
    def get_events(
        _: AdminKey,
        context: Context,
        after: StreamId = "0-0",
        count: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1000,
    ) -> EventsPage:
        """Up to `count` events kept after stream id `after` (the first page: `0-0`)."""
        kept = context.store.read_events(after, count)
        events = [
            KeptEvent(
                stream_id=stored.stream_id,
                ts=datetime.fromtimestamp(stored.event.ts, UTC).isoformat(),
                **{name: getattr(stored.event, name) for name in KEPT_EVENT_FIELDS},
            )
            for stored in kept
        ]
        return EventsPage(events=events, next_after=kept[-1].stream_id if kept else after)

    return router


def offer_events(bodies: Sequence[Any], catalog: Catalog, now: float) -> list[OfferEvent]:
    """The events (JSON values checked here as EventBody) with their offers' partner and
    category; RequestValidationError (422) naming every problem of every event at once."""
    problems: list[dict[str, Any]] = []
    events = []
    for index, value in enumerate(bodies):
        try:
            body = EventBody.model_validate(value)
        except ValidationError as error:
            problems += [
                item | {"loc": ("body", "events", index, *item["loc"])}
                for item in error.errors(include_url=False)
            ]
            continue
        ts = body.ts.timestamp()
        if ts > now + MAX_SECONDS_AHEAD:
            problems.append(
                _problem(index, "ts", f"more than {MAX_SECONDS_AHEAD} s ahead", body.ts)
            )
        elif ts < now - EVENT_ID_TTL_SECONDS:
            problems.append(_problem(index, "ts", f"more than {MAX_DAYS_AGO} days ago", body.ts))
        row = catalog.offer_rows.get(body.offer_id)
        if row is None:
            problems.append(
                _problem(
                    index, "offer_id", "unknown offer: not in the catalog in force", body.offer_id
                )
            )
            continue
        offer = catalog.candidates[row]
        events.append(
            OfferEvent(
                type=body.type,
                member_id=body.member_id,
                offer_id=offer.offer_id,
                partner_id=offer.partner_id,
                category=offer.category,
                channel=body.channel,
                ts=ts,
                event_id=body.event_id,
                decision_id=body.decision_id,
            )
        )
    if problems:
        raise RequestValidationError(problems)
    return events


def _problem(index: int, field: str, message: str, value: Any) -> dict[str, Any]:
    return {
        "type": "value_error",
        "loc": ("body", "events", index, field),
        "msg": message,
        "input": str(value),
    }
