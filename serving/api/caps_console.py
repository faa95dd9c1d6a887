"""Cap changes made safely (admin key): preview proposed rules before saving, roll back.

`POST /v1/admin/caps/preview` saves nothing: it diffs the proposed rules with those in force,
warns of renamed rules, removed caps and lowered limits, and replays the last days' decision
and event logs under both (`perkrank.serving.caps_preview`). `POST /v1/admin/caps/rollback`
stores an earlier version's rules as the next version, audited like `PUT /v1/caps`.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, NonNegativeFloat, ValidationError

from perkrank.config import CapRule, CapsConfig
from perkrank.serving.api.admin import CAPS_EXAMPLE, CapProblemsBody, CapsBody, cap_problems
from perkrank.serving.api.deps import AdminKey, Context, Live
from perkrank.serving.api.offers_upload import error_response
from perkrank.serving.api.schemas import (
    ErrorBody,
    json_object,
    json_request_body,
    problems_or_validation_error,
)
from perkrank.serving.caps_preview import preview_caps
from perkrank.serving.domain.cap_preview import Preview

MAX_PREVIEW_DAYS = 90


class PreviewRequest(BaseModel):
    """Proposed cap rules (as `PUT /v1/caps`), and optionally each offer's cost per
    redemption (for the reward cost)."""

    rules: tuple[CapRule, ...]
    reward_costs: dict[str, NonNegativeFloat] = Field(default_factory=dict)


class Figures(BaseModel):
    shown: int
    expected_redemptions: float
    reward_cost: float | None


class SideBySideBody(BaseModel):
    current: Figures
    proposed: Figures


class PreviewBody(BaseModel):
    """What saving the rules would do: the diff, warnings, and the replayed log's figures as
    `[rules in force, proposed]` pairs, in total, per offer and per partner."""

    days: int
    changes: list[str]
    warnings: list[str]
    decisions: int = Field(description="Logged decisions replayed.")
    members_reached: tuple[int, int]
    offers_shown: tuple[int, int] = Field(
        description="Logged showings each rule set keeps, every logged showing counting "
        "against the caps: lowering a limit never shows more, unchanged rules reproduce the log."
    )
    offers_shown_freeing_room: tuple[int, int] = Field(
        description="The same when a hidden showing frees its room for later logged ones: "
        "closer to the service, but a lowered cap can show more here (with interacting caps)."
    )
    expected_redemptions: tuple[float, float]
    reward_cost: tuple[float | None, float | None]
    by_offer: dict[str, SideBySideBody]
    by_partner: dict[str, SideBySideBody]

    @classmethod
    def of(cls, days: int, preview: Preview) -> PreviewBody:
        return cls.model_validate(asdict(preview) | {"days": days})


class RollbackRequest(BaseModel):
    """Which earlier version to bring back (as the next version)."""

    version: int = Field(ge=1)


def caps_console_routes() -> APIRouter:
    """The cap preview and rollback endpoints."""
    router = APIRouter(prefix="/v1/admin/caps", tags=["caps"])

    @router.post(
        "/preview",
        response_model=PreviewBody,
        summary="What proposed cap rules would do (saves nothing)",
        responses={
            422: problems_or_validation_error(
                CapProblemsBody, "A rule is invalid (`detail` names rule and field), or `days`."
            )
        },
        openapi_extra=json_request_body(PreviewRequest, CAPS_EXAMPLE),
    )
    async def preview(
        request: Request,
        _: AdminKey,
        context: Context,
        days: Annotated[int, Query(ge=1, le=MAX_PREVIEW_DAYS, description="Days replayed.")] = 7,
    ) -> Any:
        """The diff with the rules in force; warnings (a rule renamed resets its counters, all
        caps removed, a limit lowered below the current window's counts); and the last
        `days` of logged decisions and events replayed under both rule sets: members reached,
        offers shown, expected redemptions and reward cost, per offer and per partner."""
        body = await json_object(request)
        if body is None:
            problem = "the body must be a JSON object with `rules`"
            return JSONResponse(
                {"detail": [{"loc": ["body"], "msg": problem, "message": problem}]},
                status_code=422,
            )
        rules_only = {"rules": body.get("rules")}
        try:
            caps = CapsConfig.model_validate_json(json.dumps(rules_only), strict=True)
            costs = PreviewRequest.model_validate(
                {"rules": (), "reward_costs": body.get("reward_costs") or {}}
            ).reward_costs
        except ValidationError as error:
            return JSONResponse({"detail": cap_problems(error, body)}, status_code=422)
        result = await run_in_threadpool(preview_caps, context, caps.rules, days, costs)
        return PreviewBody.of(days, result)

    @router.post(
        "/rollback",
        response_model=CapsBody,
        summary="Bring an earlier cap rule set back on every process",
        responses={404: {"model": ErrorBody, "description": "That version is not kept."}},
    )
    async def rollback(body: RollbackRequest, actor: AdminKey, live: Live) -> Any:
        """Store the rules of caps version `version` as the next version, audited with the
        key's name (counters of rules of the same name carry on)."""
        try:
            stored = await run_in_threadpool(live.rollback_caps, body.version, actor)
        except LookupError as error:
            return error_response(404, str(error))
        return CapsBody.of(stored)

    return router
