"""Experiments over HTTP (admin key): `GET|PUT /v1/experiments` and their audit history, a
live setting like the cap rules (`perkrank.serving.api.live_setting`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field, ValidationError

from perkrank.experiment_config import Experiment, ExperimentsConfig
from perkrank.serving.api.limits import shortened
from perkrank.serving.api.live_setting import LiveSettingRoutes, live_setting_routes
from perkrank.serving.api.schemas import json_request_body
from perkrank.serving.arm_models import ModelRejectedError
from perkrank.serving.state.live_records import ExperimentsVersion

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


EXPERIMENTS = LiveSettingRoutes(
    name="experiments",
    field="experiments",
    config=ExperimentsConfig,
    body=ExperimentsBody,
    read=lambda live: live.context.store.get_experiments(),
    store=lambda live, experiments, actor: live.put_experiments(experiments, actor),
    history=lambda store, limit: store.experiments_history(limit),
    problems=lambda error, _: experiment_problems(error),
    problems_body=ExperimentProblemsBody,
    summaries=(
        "The experiments in force",
        "Replace the experiments on every process",
        "Who changed the experiments, when, old → new",
    ),
    descriptions=(
        "The stored experiments as every process serves them (admin key).",
        "Store the experiments (`{experiments: [...]}`, at most one; `[]` ends them) as the\n"
        "next version: in force here at once, on every process within a second, audited with\n"
        "the key's name. Arm shares must sum to 1 and arm names be unique.",
        "The last experiment changes, newest first (admin key).",
    ),
    invalid="An experiment is invalid (`detail` names the field), or a "
    "model an arm names cannot be loaded or fails its checks.",
    request=EXPERIMENTS_REQUEST,
    refused=(ModelRejectedError,),
    refused_prefix="an arm's model cannot serve",
)


def experiments_routes() -> APIRouter:
    """The experiments endpoints, under /v1."""
    return live_setting_routes(EXPERIMENTS)


def experiment_problems(error: ValidationError) -> list[dict[str, Any]]:
    """Each problem with its location and a one-line message naming it."""
    problems = []
    for item in error.errors(include_url=False):
        location, message = list(item["loc"]), shortened(item["msg"])
        where = ".".join(str(part) for part in location)
        problems.append({"loc": location, "msg": message, "message": f"{where}: {message}"})
    return problems
