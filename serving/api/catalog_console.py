"""Catalog changes made safely (admin key): a dry run of publishing, and rollback.

`POST /v1/admin/offers/dry-run` checks an offers file as publishing would and says what it
would change (offers added, removed, changed; how many are valid today per region and tier);
nothing is stored. `POST /v1/admin/offers/rollback` publishes a kept earlier catalog again.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from perkrank.config import ServeConfig
from perkrank.serving.api.admin import OFFERS_REQUEST, CatalogBody, OffersFileProblemsBody
from perkrank.serving.api.caps_console import RollbackRequest
from perkrank.serving.api.deps import AdminKey, Context, Live, Partners
from perkrank.serving.api.offers_upload import error_response, read_upload
from perkrank.serving.api.schemas import ErrorBody
from perkrank.serving.domain.catalog_diff import catalog_diff, day_date, none_valid_message


class ChangedOfferBody(BaseModel):
    offer_id: str
    fields: dict[str, tuple[str, str]] = Field(description="field → [old, new].")


class DryRunBody(BaseModel):
    """What publishing the file would change; `refused` says why it would be refused."""

    offers: int
    added: list[str]
    removed: list[str]
    changed: list[ChangedOfferBody]
    unchanged: int
    today: str
    valid_today: int
    valid_by_region_tier: dict[str, dict[str, int]]
    refused: str | None = Field(
        description="Why publishing would be refused without `allow_none_valid`; null: it "
        "would be published."
    )


def catalog_console_routes(settings: ServeConfig) -> APIRouter:
    """The catalog dry-run and rollback endpoints."""
    router = APIRouter(prefix="/v1/admin/offers", tags=["admin"])

    @router.post(
        "/dry-run",
        response_model=DryRunBody,
        summary="What publishing an offers file would change (stores nothing)",
        responses={
            409: {"model": ErrorBody, "description": "Started without a partners table."},
            413: {"model": ErrorBody, "description": "File or table too large."},
            415: {"model": ErrorBody, "description": "Not text/csv, application/gzip or Parquet."},
            422: {
                "model": OffersFileProblemsBody,
                "description": "The file breaks the data contract: `detail` names rows.",
            },
        },
        openapi_extra=OFFERS_REQUEST,
    )
    async def dry_run(request: Request, _: AdminKey, context: Context, partners: Partners) -> Any:
        """The file checked as `PUT /v1/admin/offers` checks it, then compared with the
        catalog in force: offers added, removed and changed (field by field), and how many
        of its offers a member of each region and tier could be shown today."""
        upload = await read_upload(request, partners, settings.max_upload_table_bytes)
        if isinstance(upload, JSONResponse):
            return upload
        catalog = context.ranker.catalog
        today = day_date(context.ranker.day(time.time()))
        diff = catalog_diff(catalog.offers, upload.offers, catalog.region_masks, today)
        return DryRunBody.model_validate(
            asdict(diff)
            | {
                "offers": len(upload.offers),
                "today": today.isoformat(),
                "refused": None if diff.valid_today else none_valid_message(today),
            }
        )

    @router.post(
        "/rollback",
        response_model=CatalogBody,
        summary="Publish a kept earlier catalog again on every process",
        responses={404: {"model": ErrorBody, "description": "That version is not kept."}},
    )
    async def rollback(body: RollbackRequest, actor: AdminKey, live: Live) -> Any:
        """Publish the offers of catalog version `version` (one of the last 10) as the next
        version, audited with the key's name."""
        try:
            published = await run_in_threadpool(live.rollback_catalog, body.version, actor)
        except LookupError as error:
            return error_response(404, str(error))
        return CatalogBody.of(published)

    return router
