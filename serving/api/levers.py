"""Marketer levers over HTTP (admin key): `GET|PUT /v1/levers` and their audit history.

Like the cap rules, the levers in force live in the state store, versioned and audited with
the API key's name; a change is in force on the process that took it before it answers and on
every other one within the refresher's poll (`perkrank.serving.live`).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from perkrank.lever_config import Lever, LeversConfig
from perkrank.serving.api.admin import ChangeBody
from perkrank.serving.api.deps import AdminKey, Context, Live
from perkrank.serving.api.experiments import ExperimentProblemsBody, experiment_problems
from perkrank.serving.api.schemas import ErrorBody, json_object, json_request_body
from perkrank.serving.state.live_records import LeversVersion

HISTORY_LIMIT = Query(ge=1, le=100, description="How many changes, newest first.")
LEVERS_EXAMPLE = {
    "levers": [
        {
            "name": "push_cafe_chain",
            "target": "partner",
            "value": "P0007",
            "multiplier": 1.5,
            "start": "2026-12-01",
            "end": "2027-01-01",
        },
        {"name": "bury_alcohol", "target": "category", "value": "Alcohol", "multiplier": 0.5},
    ]
}
LEVERS_REQUEST = json_request_body(LeversConfig, LEVERS_EXAMPLE)
"""`PUT /v1/levers` reads its body itself (to name the field in a 422): its OpenAPI body."""


class LeversBody(BaseModel):
    """The levers in force: which version, who stored it (API key name) and when; version 0
    (no actor, no time): none were ever stored."""

    version: int
    actor: str | None
    at: float | None = Field(description="Unix seconds.")
    levers: tuple[Lever, ...]

    @classmethod
    def of(cls, stored: LeversVersion | None) -> LeversBody:
        if stored is None:
            return cls(version=0, actor=None, at=None, levers=())
        return cls(
            version=stored.version, actor=stored.actor, at=stored.at, levers=stored.levers.levers
        )


def levers_routes() -> APIRouter:
    """The lever endpoints, under /v1."""
    router = APIRouter(prefix="/v1", tags=["levers"])

    @router.get("/levers", response_model=LeversBody, summary="The marketer levers in force")
    def get_levers(_: AdminKey, context: Context) -> LeversBody:
        """The stored levers as every process serves them (admin key)."""
        return LeversBody.of(context.store.get_levers())

    @router.put(
        "/levers",
        response_model=LeversBody,
        summary="Replace the marketer levers on every process",
        responses={
            413: {"model": ErrorBody, "description": "Body larger than `max_json_body_bytes`."},
            422: {
                "model": ExperimentProblemsBody,
                "description": "A lever is invalid: `detail` names lever and field.",
            },
        },
        openapi_extra=LEVERS_REQUEST,
    )
    async def put_levers(request: Request, actor: AdminKey, live: Live) -> Any:
        """Store the whole lever set (`{levers: [...]}`; `[]` removes them) as the next version:
        in force here at once, on every process within a second, audited with the key's name.
        A lever multiplies the odds of the offers of a partner, category or offer id by
        `multiplier` (> 1 boosts, < 1 buries) from `start` (inclusive) until `end`
        (exclusive), UTC days."""
        body = await json_object(request)
        if body is None:
            problem = "the body must be a JSON object with `levers`"
            problems = [{"loc": ["body"], "msg": problem, "message": problem}]
            return JSONResponse({"detail": problems}, status_code=422)
        try:
            levers = LeversConfig.model_validate_json(json.dumps(body), strict=True)
        except ValidationError as error:
            return JSONResponse({"detail": experiment_problems(error)}, status_code=422)
        return LeversBody.of(await run_in_threadpool(live.put_levers, levers, actor))

    @router.get(
        "/levers/history",
        response_model=list[ChangeBody],
        summary="Who changed the levers, when, old → new",
    )
    def levers_history(
        _: AdminKey, context: Context, limit: Annotated[int, HISTORY_LIMIT] = 20
    ) -> list[ChangeBody]:
        """The last lever changes, newest first (admin key)."""
        return [ChangeBody.of(change) for change in context.store.levers_history(limit)]

    return router
