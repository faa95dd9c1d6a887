"""Marketer levers over HTTP (admin key): `GET|PUT /v1/levers` and their audit history, a
live setting like the cap rules (`perkrank.serving.api.live_setting`)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from perkrank.lever_config import Lever, LeversConfig
from perkrank.serving.api.experiments import ExperimentProblemsBody, experiment_problems
from perkrank.serving.api.live_setting import LiveSettingRoutes, live_setting_routes
from perkrank.serving.api.schemas import json_request_body
from perkrank.serving.state.live_records import LeversVersion

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


LEVERS = LiveSettingRoutes(
    name="levers",
    field="levers",
    config=LeversConfig,
    body=LeversBody,
    read=lambda live: live.context.store.get_levers(),
    store=lambda live, levers, actor: live.put_levers(levers, actor),
    history=lambda store, limit: store.levers_history(limit),
    problems=lambda error, _: experiment_problems(error),
    problems_body=ExperimentProblemsBody,
    summaries=(
        "The marketer levers in force",
        "Replace the marketer levers on every process",
        "Who changed the levers, when, old → new",
    ),
    descriptions=(
        "The stored levers as every process serves them (admin key).",
        "Store the whole lever set (`{levers: [...]}`; `[]` removes them) as the next version:\n"
        "in force here at once, on every process within a second, audited with the key's name.\n"
        "A lever multiplies the odds of the offers of a partner, category or offer id by\n"
        "`multiplier` (> 1 boosts, < 1 buries) from `start` (inclusive) until `end`\n"
        "(exclusive), UTC days.",
        "The last lever changes, newest first (admin key).",
    ),
    invalid="A lever is invalid: `detail` names lever and field.",
    request=LEVERS_REQUEST,
)


def levers_routes() -> APIRouter:
    """The lever endpoints, under /v1."""
    return live_setting_routes(LEVERS)
