"""Reading an uploaded offers file from a request: its content type, size and rows checked.

Shared by publishing (`PUT /v1/admin/offers`) and its dry run: both answer a bad file alike
(415, 413, 422 naming row and field, 409 without a partners table).
"""

from __future__ import annotations

import hashlib
from typing import Any, NamedTuple

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from perkrank.serving.domain.catalog import Offer
from perkrank.serving.domain.catalog_file import OffersFileTooLargeError, read_offers_file

OFFERS_FILE_SUFFIXES = {
    "text/csv": ".csv",
    "application/gzip": ".csv.gz",
    "application/vnd.apache.parquet": ".parquet",
    "application/x-parquet": ".parquet",
}
"""Content types of an offers upload and the file each one is read as."""


class Upload(NamedTuple):
    """A checked offers file: its offers and SHA-256."""

    offers: list[Offer]
    sha256: str


async def read_upload(
    request: Request, partners: Any, max_table_bytes: int
) -> Upload | JSONResponse:
    """The request body's offers, checked against `partners`; else the error response."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    suffix = OFFERS_FILE_SUFFIXES.get(media_type)
    if suffix is None:
        return error_response(
            415, f"send the offers file as one of {', '.join(OFFERS_FILE_SUFFIXES)}"
        )
    content = await request.body()  # at most max_upload_bytes: serving.api.limits
    if partners is None:
        return error_response(409, "this service was started without a partners table (--data)")
    from perkrank.features.loader import DataValidationError

    try:
        offers = await run_in_threadpool(
            read_offers_file, content, suffix, partners, max_table_bytes
        )
    except OffersFileTooLargeError as error:
        return error_response(413, f"{error} (max_upload_table_bytes)")
    except DataValidationError as error:
        return JSONResponse(
            {"detail": [_problem_body(problem) for problem in error.problems]}, status_code=422
        )
    return Upload(offers, hashlib.sha256(content).hexdigest())


def _problem_body(problem: Any) -> dict[str, Any]:
    return {
        "file": problem.file,
        "row": problem.row,
        "field": problem.field,
        "msg": problem.message,
        "message": str(problem),
    }


def error_response(status_code: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status_code)
