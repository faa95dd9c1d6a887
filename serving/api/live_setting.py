"""One live setting over HTTP (admin key): `GET|PUT /v1/<name>` and `GET /v1/<name>/history`.

Caps, experiments and levers are the same shape: the setting in force lives in the state
store, versioned and audited with the API key's name; a change is in force on the process
that took it before it answers and on every other one within the refresher's poll
(`perkrank.serving.live`). Each resource declares a `LiveSettingRoutes`; `live_setting_routes`
makes its router.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from perkrank.serving.api.deps import AdminKey, Context, Live
from perkrank.serving.api.schemas import ErrorBody, json_object
from perkrank.serving.live import LiveRefresher
from perkrank.serving.state.live_records import Change
from perkrank.serving.state.ports import StateStore

HISTORY_LIMIT = Query(ge=1, le=100, description="How many changes, newest first.")


class ChangeBody(BaseModel):
    """One audit entry: caps `old`/`new` are `{rules}`, a catalog's `{offers, sha256}`."""

    version: int
    actor: str
    at: float
    old: Any = Field(description="null for version 1.")
    new: Any

    @classmethod
    def of(cls, change: Change) -> ChangeBody:
        return cls(
            version=change.version, actor=change.actor, at=change.at, old=change.old, new=change.new
        )


@dataclass(frozen=True)
class LiveSettingRoutes:
    """What the three endpoints of one live setting read, store, answer and document."""

    name: str
    """The path under /v1 and the OpenAPI tag: `caps`, `experiments`, `levers`."""
    field: str
    """The body's list: `rules`, `experiments`, `levers`."""
    config: type[BaseModel]
    """The body's model, validated strictly (values keep their JSON types)."""
    body: Any
    """The response model: `body.of(stored)` of what `read` and `store` return."""
    read: Callable[[LiveRefresher], Any]
    store: Callable[[LiveRefresher, Any, str], Any]
    """Stores a validated body as the next version, with the actor: the stored version."""
    history: Callable[[StateStore, int], list[Change]]
    problems: Callable[[ValidationError, dict[str, Any]], list[dict[str, Any]]]
    """Each problem of a refused body (`loc`, `msg`, `message`, …) for the 422's `detail`."""
    problems_body: type[BaseModel]
    summaries: tuple[str, str, str]
    """get, put, history."""
    descriptions: tuple[str, str, str]
    invalid: str
    """The 422's description in OpenAPI."""
    request: dict[str, Any]
    """PUT reads its body itself (to name the field in a 422): its OpenAPI body."""
    refused: tuple[type[Exception], ...] = ()
    """Errors `store` raises for a valid body it cannot apply (a 422)."""
    refused_prefix: str = ""
    """The 422's message before such an error's text."""


def live_setting_routes(setting: LiveSettingRoutes) -> APIRouter:
    """The setting's GET, PUT and history endpoints, under /v1."""
    name, field = setting.name, setting.field
    router = APIRouter(prefix="/v1", tags=[name])
    get_summary, put_summary, history_summary = setting.summaries
    get_description, put_description, history_description = setting.descriptions

    def get_setting(_: AdminKey, live: Live) -> Any:
        return setting.body.of(setting.read(live))

    async def put_setting(request: Request, actor: AdminKey, live: Live) -> Any:
        body = await json_object(request)
        if body is None:
            problem = f"the body must be a JSON object with `{field}`"
            return _problems([{"loc": ["body"], "msg": problem, "message": problem}])
        try:
            validated = setting.config.model_validate_json(json.dumps(body), strict=True)
        except ValidationError as error:
            return _problems(setting.problems(error, body))
        try:
            stored = await run_in_threadpool(setting.store, live, validated, actor)
        except setting.refused as error:  # () catches nothing
            problem = f"{setting.refused_prefix}: {error}"
            return _problems([{"loc": ["body", field], "msg": problem, "message": problem}])
        return setting.body.of(stored)

    def setting_history(
        _: AdminKey, context: Context, limit: Annotated[int, HISTORY_LIMIT] = 20
    ) -> list[ChangeBody]:
        return [ChangeBody.of(change) for change in setting.history(context.store, limit)]

    router.add_api_route(
        f"/{name}",
        get_setting,
        methods=["GET"],
        response_model=setting.body,
        name=f"get_{name}",
        summary=get_summary,
        description=get_description,
    )
    router.add_api_route(
        f"/{name}",
        put_setting,
        methods=["PUT"],
        response_model=setting.body,
        name=f"put_{name}",
        summary=put_summary,
        description=put_description,
        responses={
            413: {"model": ErrorBody, "description": "Body larger than `max_json_body_bytes`."},
            422: {"model": setting.problems_body, "description": setting.invalid},
        },
        openapi_extra=setting.request,
    )
    router.add_api_route(
        f"/{name}/history",
        setting_history,
        methods=["GET"],
        response_model=list[ChangeBody],
        name=f"{name}_history",
        summary=history_summary,
        description=history_description,
    )
    return router


def _problems(problems: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse({"detail": problems}, status_code=422)
