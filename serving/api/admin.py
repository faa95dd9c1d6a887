"""Live changes over HTTP (admin key): cap rules, catalog publishing, model reload.

A change is stored in the state store, applied by the process that took it before it answers,
and by every other process within a second (`perkrank.serving.live`). Each one is versioned
and audited with the API key's name (never the key). An uploaded offers file is parsed here
(`perkrank.serving.domain.catalog_file`); the refresher only stores and applies its offers.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from perkrank.config import CapRule, CapsConfig, LocalFloor, ServeConfig
from perkrank.serving.api.deps import AdminKey, Context, Live, Partners
from perkrank.serving.api.limits import echo, shortened
from perkrank.serving.api.live_setting import (
    HISTORY_LIMIT,
    ChangeBody,
    LiveSettingRoutes,
    live_setting_routes,
)
from perkrank.serving.api.offers_upload import (
    OFFERS_FILE_SUFFIXES,
    error_response,
    read_upload,
)
from perkrank.serving.api.schemas import (
    ErrorBody,
    json_request_body,
    problems_or_validation_error,
)
from perkrank.serving.domain.catalog_diff import any_valid, day_date, none_valid_message
from perkrank.serving.state.live_records import CapsVersion, CatalogVersion

NONE_VALID = Query(description="Publish even when no offer of the file is valid today.")
CAPS_EXAMPLE = {
    "rules": [
        {"name": "member_offer_week", "scope": "member_offer", "limit": 3, "window": "week"},
        {"name": "member_partner_day", "scope": "member_partner", "limit": 5, "window": "day"},
    ]
}
OFFERS_EXAMPLE = (
    "offer_id,partner_id,category,title,regions,min_tier,valid_from,valid_to,budget,reward\n"
    "O2026-12-0001,P0001,Grocery,Double points,,base,2026-12-01,2026-12-31,,2x points\n"
)
CAPS_REQUEST = json_request_body(CapsConfig, CAPS_EXAMPLE)
"""`PUT /v1/caps` reads its body itself (to name rule and field in a 422): its OpenAPI body."""
OFFERS_REQUEST = {
    "requestBody": {
        "required": True,
        "description": "An offers file as in the data contract (docs/data.md).",
        "content": {
            media_type: {"schema": {"type": "string", "format": "binary"}}
            | ({"example": OFFERS_EXAMPLE} if media_type == "text/csv" else {})
            for media_type in OFFERS_FILE_SUFFIXES
        },
    }
}
"""`PUT /v1/admin/offers` streams its body: its OpenAPI body, one entry per content type."""


class CapsBody(BaseModel):
    """The cap rules in force: which version, who stored it (API key name) and when."""

    version: int
    actor: str
    at: float = Field(description="Unix seconds.")
    rules: tuple[CapRule, ...]
    local_floor: LocalFloor | None = Field(
        None, description="Least share of local partners' offers per list, by region."
    )
    max_per_partner: int | None = Field(
        None, description="At most this many offers of one partner per list (null: serve.yaml)."
    )

    @classmethod
    def of(cls, stored: CapsVersion) -> CapsBody:
        caps = stored.caps
        return cls(
            version=stored.version,
            actor=stored.actor,
            at=stored.at,
            rules=caps.rules,
            local_floor=caps.local_floor,
            max_per_partner=caps.max_per_partner,
        )


class CapProblem(BaseModel):
    """One problem of a rule set: where (`loc`), what (`msg`), and for a rule its index, its
    name as sent and the field; `message` says it all in one line."""

    loc: list[str | int]
    msg: str
    message: str
    rule: int | None = None
    name: Any = None
    field: str | None = None


class CapProblemsBody(BaseModel):
    """Why a rule set was refused (nothing changed)."""

    detail: list[CapProblem]


class OffersFileProblem(BaseModel):
    """One problem of an offers file: row (header = 1) and field where known."""

    file: str
    row: int | None
    field: str | None
    msg: str
    message: str


class OffersFileProblemsBody(BaseModel):
    """Why an offers file was refused (nothing changed)."""

    detail: list[OffersFileProblem]


class CatalogBody(BaseModel):
    """A published catalog: its version, size, the file's SHA-256, who and when."""

    version: int
    offers: int
    sha256: str
    actor: str
    at: float

    @classmethod
    def of(cls, published: CatalogVersion) -> CatalogBody:
        return cls(
            version=published.version,
            offers=len(published.offers),
            sha256=published.sha256,
            actor=published.actor,
            at=published.at,
        )


class ReloadBody(BaseModel):
    """The reload generation every process follows, and the model this process serves now."""

    reload: int
    model_version: str


CAPS = LiveSettingRoutes(
    name="caps",
    field="rules",
    config=CapsConfig,
    body=CapsBody,
    read=lambda live: live.stored_caps(),
    store=lambda live, caps, actor: live.put_caps(caps, actor),
    history=lambda store, limit: store.caps_history(limit),
    problems=lambda error, body: cap_problems(error, body),
    problems_body=CapProblemsBody,
    summaries=(
        "The cap rules in force",
        "Replace the cap rules on every process",
        "Who changed the cap rules, when, old → new",
    ),
    descriptions=(
        "The current version of the frequency caps (admin key).",
        "Store the whole rule set (as in configs/caps.yaml) as the next version: in force\n"
        "here at once, on every process within a second, audited with the key's name. Values\n"
        "keep their JSON types: no text where a number is meant.",
        "The last cap changes, newest first (admin key).",
    ),
    invalid="A rule is invalid: `detail` names rule and field.",
    request=CAPS_REQUEST,
)


def admin_routes(settings: ServeConfig) -> APIRouter:
    """The caps and admin endpoints."""
    router = APIRouter(prefix="/v1")

    @router.put(
        "/admin/offers",
        response_model=CatalogBody,
        tags=["admin"],
        summary="Publish a new offer catalog on every process",
        responses={
            409: {
                "model": ErrorBody,
                "description": "Started without a partners table, or no offer is valid today "
                "(without `allow_none_valid`).",
            },
            413: {
                "model": ErrorBody,
                "description": "File larger than `max_upload_bytes`, or its table larger "
                "uncompressed than `max_upload_table_bytes`.",
            },
            415: {"model": ErrorBody, "description": "Not text/csv, application/gzip or Parquet."},
            422: problems_or_validation_error(
                OffersFileProblemsBody,
                "The file breaks the data contract (`detail` names rows), or "
                "`allow_none_valid` is not a boolean.",
            ),
        },
        openapi_extra=OFFERS_REQUEST,
    )
    async def put_offers(
        request: Request,
        actor: AdminKey,
        live: Live,
        partners: Partners,
        allow_none_valid: Annotated[bool, NONE_VALID] = False,
    ) -> Any:
        """The body is an offers file as in the data contract (CSV, gzipped CSV or Parquet,
        by Content-Type). It is checked like training inputs, against the partners the
        service started with; a bad file changes nothing, and so does a file with no offer
        valid today unless `allow_none_valid`. A good one replaces the catalog here at once
        and on every process within a second."""
        upload = await read_upload(request, partners, settings.max_upload_table_bytes)
        if isinstance(upload, JSONResponse):
            return upload
        today = day_date(live.context.ranker.day(time.time()))
        if not allow_none_valid and not any_valid(upload.offers, today):
            return error_response(409, none_valid_message(today))
        published = await run_in_threadpool(
            live.publish_catalog, upload.offers, upload.sha256, actor
        )
        return CatalogBody.of(published)

    @router.get(
        "/admin/offers/history",
        response_model=list[ChangeBody],
        tags=["admin"],
        summary="Who published which catalog, when",
    )
    def catalog_history(
        _: AdminKey, context: Context, limit: Annotated[int, HISTORY_LIMIT] = 20
    ) -> list[ChangeBody]:
        """The last catalog publications, newest first (admin key)."""
        return [ChangeBody.of(change) for change in context.store.catalog_history(limit)]

    @router.post(
        "/admin/reload",
        response_model=ReloadBody,
        tags=["admin"],
        summary="Check the registry for a new champion on every process",
    )
    def reload(_: AdminKey, live: Live) -> ReloadBody:
        """Every process re-checks the registry (and retries a version it rejected); this one
        before it answers, with the model it serves afterwards."""
        generation = live.context.store.request_reload()
        live.refresh_settings()
        live.check_model()
        return ReloadBody(reload=generation, model_version=live.context.model_version)

    routes = APIRouter()  # the caps first, as the document lists them
    routes.include_router(live_setting_routes(CAPS))
    routes.include_router(router)
    return routes


def cap_problems(error: ValidationError, body: dict[str, Any]) -> list[dict[str, Any]]:
    """Each problem of a rule set with the rule's index and name and the field (what it
    echoes of the body cut short)."""
    rules = body.get("rules")
    problems = []
    for item in error.errors(include_url=False):
        location, message = item["loc"], shortened(item["msg"])
        problem: dict[str, Any] = {"loc": list(location), "msg": message}
        if len(location) >= 2 and location[0] == "rules" and isinstance(location[1], int):
            index = location[1]
            rule = rules[index] if isinstance(rules, list) else None
            name = echo(rule.get("name")) if isinstance(rule, dict) else None
            field = ".".join(str(part) for part in location[2:]) or None
            problem |= {"rule": index, "name": name, "field": field}
            message = f"rule {index} ({name}), field {field}: {message}"
        else:
            message = f"{'.'.join(str(part) for part in location)}: {message}"
        problems.append(problem | {"message": message})
    return problems
