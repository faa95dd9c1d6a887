"""The app factory: the versioned HTTP API (FastAPI) over one serving process's parts.

`create_app` wires a `Runtime`: one built already (tests; the caller owns its store), or the
one `perkrank.serving.bootstrap.bootstrap` builds when the app starts (`data_dir`; the store is
closed at shutdown). Either way the app's lifespan runs the live refresher, which swaps the
serving context requests read. Domain errors become HTTP here: StateStoreError → 503.
"""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.telemetry import TelemetryConfig

from perkrank.config import ServeConfig
from perkrank.serving.api.admin import admin_routes
from perkrank.serving.api.admission import AdmissionMiddleware
from perkrank.serving.api.auth import API_KEY_HEADER, ApiKeys
from perkrank.serving.api.batch_decisions import batch_decisions_routes
from perkrank.serving.api.caps_console import caps_console_routes
from perkrank.serving.api.catalog_console import catalog_console_routes
from perkrank.serving.api.decisions import decisions_routes
from perkrank.serving.api.docs import serve_docs
from perkrank.serving.api.events import events_routes
from perkrank.serving.api.experiments import experiments_routes
from perkrank.serving.api.health import health_routes
from perkrank.serving.api.levers import levers_routes
from perkrank.serving.api.limits import limit_requests
from perkrank.serving.api.member_explain import explain_routes
from perkrank.serving.api.observability import STORE_ERRORS, ObservabilityMiddleware
from perkrank.serving.api.offers import offers_routes
from perkrank.serving.api.preferences import preferences_routes
from perkrank.serving.api.privacy import privacy_routes
from perkrank.serving.api.reports import report_routes
from perkrank.serving.api.schemas import ERRORS, UNREADABLE_BODY
from perkrank.serving.bootstrap import Runtime, bootstrap, load_caps
from perkrank.serving.console.routes import serve_console
from perkrank.serving.domain.context import ContextHolder
from perkrank.serving.live import LiveRefresher
from perkrank.serving.model_registry import ModelRegistry
from perkrank.serving.recorder import DecisionRecorder
from perkrank.serving.state.ports import StateStoreError

log = logging.getLogger("perkrank.serving")

RETRY_AFTER_SECONDS = 1
GIL_SWITCH_SECONDS = 0.0005
"""CPython's default is 0.005: a request could wait that long behind a loading model."""
NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}
"""Off, FastAPI skips even its per-request check for configured OpenTelemetry providers."""


def create_app(
    settings: ServeConfig,
    runtime: Runtime | None = None,
    *,
    data_dir: Path | None = None,
    model_registry: ModelRegistry | None = None,
) -> FastAPI:
    """The app serving `runtime`, or what `bootstrap(settings, data_dir)` loads at startup;
    raises ConfigError without any API key or with a bad caps file. `model_registry`: what the
    console's models page lists and changes (None: it shows the model in force only)."""
    if (runtime is None) == (data_dir is None):
        raise ValueError("create_app needs either a runtime or a data directory")
    keys = ApiKeys.from_settings(settings)
    if data_dir is not None:
        load_caps(settings)  # a bad caps file stops `perkrank serve` before the server starts

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owns_store = data_dir is not None
        if data_dir is not None:
            _serve(app, settings, bootstrap(settings, data_dir))
        live: LiveRefresher = app.state.live
        live.start()
        recorder: DecisionRecorder = app.state.recorder
        recorder.start()
        if owns_store:
            gc.freeze()  # startup objects never become garbage: keep them out of collections
            # The live refresher's threads load models beside the event loop; a short GIL
            # switch interval bounds how long a request waits for the interpreter meanwhile.
            sys.setswitchinterval(GIL_SWITCH_SECONDS)
        try:
            yield
        finally:
            recorder.stop()
            live.stop()
            if owns_store:
                await live.context.store.close()

    app = FastAPI(
        title="perkrank",
        version="1",
        description="Ranked, capped, opt-out-safe offers for loyalty program members. "
        f"Send an API key in `{API_KEY_HEADER}`.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        telemetry=None if settings.opentelemetry else NO_TELEMETRY,
    )
    app.state.keys = keys
    serve_docs(app)
    serve_console(app, settings, model_registry)
    if runtime is not None:
        _serve(app, settings, runtime)
    app.include_router(offers_routes(settings), responses=ERRORS)
    app.include_router(preferences_routes(), responses=ERRORS)
    app.include_router(privacy_routes(), responses=ERRORS)
    app.include_router(admin_routes(settings), responses=ERRORS)
    app.include_router(explain_routes(settings), responses=ERRORS)
    # UNREADABLE_BODY: the rollbacks' JSON bodies, which FastAPI parses
    app.include_router(caps_console_routes(), responses=ERRORS | UNREADABLE_BODY)
    app.include_router(catalog_console_routes(settings), responses=ERRORS | UNREADABLE_BODY)
    app.include_router(experiments_routes(), responses=ERRORS)
    app.include_router(levers_routes(), responses=ERRORS)
    app.include_router(decisions_routes(), responses=ERRORS)
    app.include_router(batch_decisions_routes(settings), responses=ERRORS | UNREADABLE_BODY)
    app.include_router(report_routes(), responses=ERRORS)
    app.include_router(health_routes())
    # UNREADABLE_BODY: POST /v1/events's body (documented here: events.py checks the batch)
    app.include_router(events_routes(settings), responses=ERRORS | UNREADABLE_BODY)
    limit_requests(app, settings)
    app.add_middleware(
        AdmissionMiddleware,
        limit=settings.max_in_flight,
        queued=settings.max_queued,
        timeout_ms=settings.queue_timeout_ms,
    )
    app.add_middleware(ObservabilityMiddleware)
    app.add_exception_handler(StateStoreError, _store_unavailable)
    return app


def _serve(app: FastAPI, settings: ServeConfig, runtime: Runtime) -> LiveRefresher:
    """Put `runtime` in `app.state` (holder, live refresher, decision recorder, partners) for
    the handlers."""
    app.state.holder = ContextHolder(runtime.context)
    app.state.live = LiveRefresher(app.state.holder, settings)
    app.state.recorder = DecisionRecorder(app.state.holder)
    app.state.partners = runtime.partners
    return app.state.live


async def _store_unavailable(request: Request, error: Exception) -> Response:
    STORE_ERRORS.inc()
    log.warning("state store unavailable: %s", error)
    return JSONResponse(
        {"detail": "state store unavailable; retry shortly"},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )
