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
        summary="Model loaded, state store reachable, catalog servable",
    )
    def readyz(context: Context) -> Response:
        """503 while the store is unreachable or no offer of the catalog can be served;
        `detail` names offers left out of the catalog."""
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
        excluded = context.ranker.catalog.excluded
        detail = None
        if excluded:
            detail = f"{len(excluded)} offers left out, they cannot be served: {excluded[0]}"
        if excluded and not context.ranker.catalog.offers:
            log.warning("not ready: %s", detail)
            body = Readiness(
                status="unavailable",
                model_version=context.model_version,
                detail=f"no offer of the catalog can be served; {detail}",
            )
            return JSONResponse(body.model_dump(), status_code=503)
        body = Readiness(status="ready", model_version=context.model_version, detail=detail)
        return JSONResponse(body.model_dump())

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    def metrics(context: Context) -> Response:
        """Prometheus text format: every worker's metrics in multiprocess mode."""
        return metrics_response(context)

    return router
