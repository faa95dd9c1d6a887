"""`GET /healthz`, `GET /readyz` and `GET /metrics`: no key (bind to a private address)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from perkrank.serving.api.deps import Context
from perkrank.serving.api.observability import STORE_ERRORS, metrics_response
from perkrank.serving.api.schemas import Health, Readiness
from perkrank.serving.state.ports import StateStoreError

log = logging.getLogger("perkrank.serving")


def health_routes() -> APIRouter:
    """The health and metrics endpoints."""
    router = APIRouter(tags=["health"])

    @router.get("/healthz", response_model=Health, summary="The process is up")
    async def healthz() -> Health:
        return Health()

    @router.get(
        "/readyz",
        response_model=Readiness,
        responses={503: {"model": Readiness}},
        summary="Model loaded and state store reachable",
    )
    def readyz(context: Context) -> Response:
        try:
            context.store.ping()
        except StateStoreError as error:
            STORE_ERRORS.inc()
            log.warning("not ready: %s", error)
            body = Readiness(
                status="unavailable",
                model_version=context.model_version,
                detail="state store unreachable",
            )
            return JSONResponse(body.model_dump(), status_code=503)
        return JSONResponse(
            Readiness(status="ready", model_version=context.model_version).model_dump()
        )

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    def metrics(context: Context) -> Response:
        """Prometheus text format: every worker's metrics in multiprocess mode."""
        return metrics_response(context)

    return router
