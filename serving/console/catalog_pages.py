"""The catalog page: upload an offers file, see every problem by row and field, a dry run
(added, removed, changed; valid today per region and tier), publish (a catalog with no offer
valid today only when confirmed), and roll back to a kept earlier catalog."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from starlette.datastructures import UploadFile

from perkrank.config import ServeConfig
from perkrank.serving.api.deps import context_of
from perkrank.serving.console.pages import posted_form, redirect, render, signed_in
from perkrank.serving.console.session import Session
from perkrank.serving.domain.catalog_diff import catalog_diff, day_date, none_valid_message
from perkrank.serving.domain.catalog_file import OffersFileTooLargeError, read_offers_file

HISTORY = 10
SUFFIXES = (".csv.gz", ".csv", ".parquet")
"""The file names an upload may end with (gzipped CSV first: it also ends with `.gz`)."""


def catalog_pages(settings: ServeConfig) -> APIRouter:
    """GET /console/catalog and its posts: check (dry run or publish), rollback."""
    router = APIRouter()

    @router.get("/catalog")
    async def catalog_page(request: Request, published: str = "") -> HTMLResponse:
        session = signed_in(request)
        notice = f"Published: catalog version {published} is in force." if published else ""
        return _page(request, session, notice=notice)

    @router.post("/catalog/check")
    async def check(request: Request) -> HTMLResponse:
        session = signed_in(request)
        form = await posted_form(request, session)
        upload = form.get("offers_file")
        if not isinstance(upload, UploadFile) or not upload.filename:
            return _page(request, session, 422, problems=[_problem("choose an offers file")])
        content = await upload.read()
        offers, problems = await _read(request, upload.filename, content, settings)
        if offers is None:
            return _page(request, session, 422, problems=problems, filename=upload.filename)
        context = context_of(request)
        catalog = context.ranker.catalog
        today = day_date(context.ranker.day(time.time()))
        diff = catalog_diff(catalog.offers, offers, catalog.region_masks, today)
        refused = "" if diff.valid_today else none_valid_message(today)
        confirmed = form.get("allow_none_valid") == "yes"
        if form.get("action") != "publish" or (refused and not confirmed):
            return _page(
                request,
                session,
                409 if refused and form.get("action") == "publish" else 200,
                diff=diff,
                today=today.isoformat(),
                refused=refused,
                filename=upload.filename,
                offers=len(offers),
            )
        sha256 = hashlib.sha256(content).hexdigest()
        live = request.app.state.live
        stored = await run_in_threadpool(live.publish_catalog, offers, sha256, session.actor)
        return redirect("/catalog", published=stored.version)

    @router.post("/catalog/rollback")
    async def rollback(request: Request) -> HTMLResponse:
        session = signed_in(request)
        form = await posted_form(request, session)
        live = request.app.state.live
        try:
            version = int(str(form.get("version", "")))
            stored = await run_in_threadpool(live.rollback_catalog, version, session.actor)
        except (ValueError, LookupError) as error:
            return _page(request, session, 404, problems=[_problem(str(error))])
        return redirect("/catalog", published=stored.version)

    return router


async def _read(
    request: Request, filename: str, content: bytes, settings: ServeConfig
) -> tuple[list | None, list[Any]]:
    """The file's offers, or its problems (DataValidationError's, each naming row and field)."""
    from perkrank.features.loader import DataValidationError

    partners = request.app.state.partners
    suffix = next((suffix for suffix in SUFFIXES if filename.lower().endswith(suffix)), None)
    if suffix is None:
        return None, [_problem(f"{filename}: name a .csv, .csv.gz or .parquet file")]
    if partners is None:
        return None, [_problem("this service was started without a partners table (--data)")]
    try:
        offers = await run_in_threadpool(
            read_offers_file, content, suffix, partners, settings.max_upload_table_bytes
        )
    except OffersFileTooLargeError as error:
        return None, [_problem(f"{error} (max_upload_table_bytes)")]
    except DataValidationError as error:
        return None, [
            {"row": problem.row, "field": problem.field, "message": problem.message}
            for problem in error.problems
        ]
    return offers, []


def _problem(message: str) -> dict[str, Any]:
    return {"row": None, "field": None, "message": message}


def _page(
    request: Request, session: Session, status_code: int = 200, **values: Any
) -> HTMLResponse:
    context = context_of(request)
    defaults = {"problems": [], "notice": "", "diff": None, "refused": "", "filename": ""}
    return render(
        request,
        "catalog.html",
        session,
        "catalog",
        status_code=status_code,
        history=context.store.catalog_history(HISTORY),
        version=context.catalog_version,
        offers_in_force=len(context.ranker.catalog.offers),
        **defaults | values,
    )
