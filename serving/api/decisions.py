"""The decision log over HTTP: `GET /v1/admin/decisions` (admin key) pages through the kept
decisions, oldest first, for `perkrank decisions export`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from perkrank.serving.api.deps import AdminKey, Context
from perkrank.serving.api.events import MAX_PAGE, StreamId

DECISION_FIELDS = (
    "decision_id",
    "member_id",
    "channel",
    "model_version",
    "experiment",
    "arm",
    "policy",
    "personalized",
)
"""The `Decision` fields a kept decision shows as they are (with stream_id, ts and offers)."""


class DecidedOfferBody(BaseModel):
    """An offer a decision showed: rank (1 = first), score, and the probability that the
    answering policy shows it there (1.0: deterministic)."""

    offer_id: str
    rank: int
    score: float
    propensity: float


class KeptDecision(BaseModel):
    """One offers response as the decision log kept it."""

    stream_id: str
    decision_id: str
    ts: str = Field(description="ISO 8601, UTC.")
    member_id: str
    channel: str
    model_version: str
    experiment: str | None
    arm: str | None
    policy: str = Field(description="personalized, popular or none.")
    personalized: bool
    offers: list[DecidedOfferBody]


class DecisionsPage(BaseModel):
    """Kept decisions, oldest first."""

    decisions: list[KeptDecision]
    next_after: str = Field(
        description="`after` for the next page; a page shorter than `count` was the last."
    )


def decisions_routes() -> APIRouter:
    """The decision log endpoint, under /v1."""
    router = APIRouter(prefix="/v1", tags=["decisions"])

    @router.get(
        "/admin/decisions",
        response_model=DecisionsPage,
        summary="Kept offer decisions, oldest first, page by page (admin key)",
    )
    async def get_decisions(
        request: Request,
        _: AdminKey,
        context: Context,
        after: StreamId = "0-0",
        count: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1000,
    ) -> DecisionsPage:
        """Up to `count` decisions kept after stream id `after` (the first page: `0-0`); this
        process's queued decisions are written first."""
        await run_in_threadpool(request.app.state.recorder.flush)
        kept = await run_in_threadpool(context.store.read_decisions, after, count)
        decisions = [
            KeptDecision(
                stream_id=stored.stream_id,
                ts=datetime.fromtimestamp(stored.decision.ts, UTC).isoformat(),
                offers=[DecidedOfferBody(**offer._asdict()) for offer in stored.decision.offers],
                **{name: getattr(stored.decision, name) for name in DECISION_FIELDS},
            )
            for stored in kept
        ]
        return DecisionsPage(decisions=decisions, next_after=kept[-1].stream_id if kept else after)

    return router
