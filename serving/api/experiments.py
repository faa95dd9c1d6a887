"""Experiments over HTTP (admin key): `GET|PUT /v1/experiments` and their audit history.

Like the cap rules, the experiments in force live in the state store, versioned and audited
with the API key's name; a change is in force on the process that took it before it answers
and on every other one within the refresher's poll (`perkrank.serving.live`).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from perkrank.experiment_config import Experiment, ExperimentsConfig
from perkrank.serving.api.admin import ChangeBody
from perkrank.serving.api.deps import AdminKey, Context, Live
from perkrank.serving.api.limits import shortened
from perkrank.serving.api.schemas import ErrorBody, json_object, json_request_body
from perkrank.serving.arm_models import ModelRejectedError
from perkrank.serving.state.live_records import ExperimentsVersion

HISTORY_LIMIT = Query(ge=1, le=100, description="How many changes, newest first.")
EXPERIMENTS_EXAMPLE = {
    "experiments": [
        {
            "name": "lift_2026q3",
            "salt": "lift-2026q3",
            "unit": "member",
            "arms": [
                {"name": "holdout", "share": 0.05, "policy": "popular"},
                {"name": "champion", "share": 0.85, "policy": "personalized"},
                {
                    "name": "challenger",
                    "share": 0.1,
                    "policy": "personalized",
                    "model": "challenger",
                    "exploration": {"kind": "softmax", "temperature": 0.5},
                },
            ],
        }
    ]
}
EXPERIMENTS_REQUEST = json_request_body(ExperimentsConfig, EXPERIMENTS_EXAMPLE)
"""`PUT /v1/experiments` reads its body itself (to name the field in a 422): its OpenAPI body."""


class ExperimentsBody(BaseModel):
    """The experiments in force: which version, who stored it (API key name) and when; version
    0 (no actor, no time): none were ever stored."""

    version: int
    actor: str | None
    at: float | None = Field(description="Unix seconds.")
    experiments: tuple[Experiment, ...]

    @classmethod
    def of(cls, stored: ExperimentsVersion | None) -> ExperimentsBody:
        if stored is None:
            return cls(version=0, actor=None, at=None, experiments=())
        experiments = stored.experiments.experiments
        return cls(
            version=stored.version, actor=stored.actor, at=stored.at, experiments=experiments
        )


class ExperimentProblem(BaseModel):
    """One problem of an experiments body: where (`loc`), what (`msg`), both in `message`."""

    loc: list[str | int]
    msg: str
    message: str


class ExperimentProblemsBody(BaseModel):
    """Why an experiments body was refused (nothing changed)."""

    detail: list[ExperimentProblem]


def experiments_routes() -> APIRouter:
    """The experiments endpoints, under /v1."""
    router = APIRouter(prefix="/v1", tags=["experiments"])

    @router.get("/experiments", response_model=ExperimentsBody, summary="The experiments in force")
    def get_experiments(_: AdminKey, context: Context) -> ExperimentsBody:
        """The stored experiments as every process serves them (admin key)."""
        return ExperimentsBody.of(context.store.get_experiments())

    @router.put(
        "/experiments",
        response_model=ExperimentsBody,
        summary="Replace the experiments on every process",
        responses={
            413: {"model": ErrorBody, "description": "Body larger than `max_json_body_bytes`."},
            422: {
                "model": ExperimentProblemsBody,
                "description": "An experiment is invalid (`detail` names the field), or a "
                "model an arm names cannot be loaded or fails its checks.",
            },
        },
        openapi_extra=EXPERIMENTS_REQUEST,
    )
    async def put_experiments(request: Request, actor: AdminKey, live: Live) -> Any:
        """Store the experiments (`{experiments: [...]}`, at most one; `[]` ends them) as the
        next version: in force here at once, on every process within a second, audited with
        the key's name. Arm shares must sum to 1 and arm names be unique."""
        body = await json_object(request)
        if body is None:
            problem = "the body must be a JSON object with `experiments`"
            return _problems([{"loc": ["body"], "msg": problem, "message": problem}])
        try:
            experiments = ExperimentsConfig.model_validate_json(json.dumps(body), strict=True)
        except ValidationError as error:
            return _problems(experiment_problems(error))
        try:
            stored = await run_in_threadpool(live.put_experiments, experiments, actor)
        except ModelRejectedError as error:
            problem = f"an arm's model cannot serve: {error}"
            return _problems([{"loc": ["body", "experiments"], "msg": problem, "message": problem}])
        return ExperimentsBody.of(stored)

    @router.get(
        "/experiments/history",
        response_model=list[ChangeBody],
        summary="Who changed the experiments, when, old → new",
    )
    def experiments_history(
        _: AdminKey, context: Context, limit: Annotated[int, HISTORY_LIMIT] = 20
    ) -> list[ChangeBody]:
        """The last experiment changes, newest first (admin key)."""
        return [ChangeBody.of(change) for change in context.store.experiments_history(limit)]

    return router


def experiment_problems(error: ValidationError) -> list[dict[str, Any]]:
    """Each problem with its location and a one-line message naming it."""
    problems = []
    for item in error.errors(include_url=False):
        location, message = list(item["loc"]), shortened(item["msg"])
        where = ".".join(str(part) for part in location)
        problems.append({"loc": location, "msg": message, "message": f"{where}: {message}"})
    return problems


def _problems(problems: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse({"detail": problems}, status_code=422)
