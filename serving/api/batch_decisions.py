"""`POST /v1/decisions:batch` (admin key): a campaign's decisions for up to
`ServeConfig.max_batch_decisions` members in one request, as `perkrank decide` makes them
(`serving.campaign`): the same eligibility, opt-outs, experiments, occasions, quiet hours and
caps as `/v1/members/{member_id}/offers`, one `decision_id` per member derived from the
campaign, so a batch sent again is counted once."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from perkrank.config import ServeConfig
from perkrank.serving.api.deps import AdminKey, Context
from perkrank.serving.api.schemas import MEMBER_ID_PATTERN, VALIDATION_ERROR, Channel, ErrorBody
from perkrank.serving.campaign import decide_chunk, decision_records

MemberId = Annotated[str, StringConstraints(pattern=MEMBER_ID_PATTERN)]
CampaignId = Annotated[str, StringConstraints(pattern=r"^[!-~]{1,200}$")]


class BatchDecisionsBody(BaseModel):
    """The members of one campaign chunk, the channel it is sent on and the list length."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"campaign": "june-newsletter", "channel": "email", "members": ["M000042"]}
            ]
        },
    )

    campaign: CampaignId = Field(description="Names the send; decision ids derive from it.")
    channel: Channel
    members: list[MemberId] = Field(min_length=1)
    limit: int | None = Field(None, ge=1, description="Offers per member (default: serving's).")


class BatchDecisionsResponse(BaseModel):
    """One decision per distinct member, in the order given."""

    decisions: list[dict[str, Any]]


def batch_decisions_routes(settings: ServeConfig) -> APIRouter:
    """The batch decisions endpoint, under /v1, with the configured batch size."""
    router = APIRouter(prefix="/v1", tags=["decisions"])

    @router.post(
        "/decisions:batch",
        response_model=BatchDecisionsResponse,
        summary="A campaign's decisions for a batch of members (admin key)",
        responses={
            413: {"model": ErrorBody, "description": "More members than `max_batch_decisions`."},
            422: VALIDATION_ERROR,
        },
    )
    async def post_batch_decisions(
        body: BatchDecisionsBody, request: Request, _: AdminKey, context: Context
    ) -> BatchDecisionsResponse:
        """Decide each member as an offers request on `channel` would (counted against the
        caps once per campaign and member), keep the decisions in the decision log."""
        members = list(dict.fromkeys(body.members))
        if len(members) > settings.max_batch_decisions:
            raise HTTPException(
                413,
                f"members: a batch holds at most {settings.max_batch_decisions} members "
                f"(max_batch_decisions); this one has {len(members)}: split it",
            )
        limit = min(body.limit or settings.default_limit, settings.max_limit)
        decided = await decide_chunk(
            context, body.campaign, members, body.channel, limit, time.time()
        )
        recorder = request.app.state.recorder
        for decision, _ in decided:
            recorder.record(decision)
        return BatchDecisionsResponse(decisions=decision_records([line for _, line in decided]))

    return router
