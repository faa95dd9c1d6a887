"""Prometheus metrics (`GET /metrics`), request ids and access log lines.

`ObservabilityMiddleware` (plain ASGI: a few microseconds per request) gives every HTTP
request an id (a sane incoming `X-Request-ID`, else a new one), returns it in `X-Request-ID`,
times the request into `perkrank_request_duration_seconds` by route template (never the raw
path, which holds member ids) and status, and logs one access line. Handlers count what only
they know: offers served and suppressed, events, store errors.

Several processes: `perkrank serve --workers N` points every worker at one fresh
PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess mode), so whichever worker answers
`/metrics` reports counters and histograms summed over all workers, and the version gauges
once per live worker (label `pid`). Without that variable each process reports only itself.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import time
from typing import TYPE_CHECKING

from fastapi import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from perkrank.serving.api.logs import REQUEST_ID

if TYPE_CHECKING:
    from perkrank.serving.domain.context import ServingContext
    from perkrank.serving.domain.ranking import Ranking

MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED_ROUTE = "unmatched"
"""The route label of requests no route matched (404s), so raw paths never become labels."""
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Methods labelled as themselves; any other is labelled `other`."""
_SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9_.:-]{1,64}")

access_log = logging.getLogger("perkrank.access")

REQUEST_SECONDS = Histogram(
    "perkrank_request_duration_seconds",
    "HTTP request latency by method, route template and status.",
    ("method", "route", "status"),
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5),
)
OFFERS_SERVED = Counter(
    "perkrank_offers_served", "Offers returned in offers responses, by channel.", ("channel",)
)
OFFERS_SUPPRESSED = Counter(
    "perkrank_offers_suppressed",
    "Offers left out of offers responses, by reason: opt_out, sensitive, partner_limit, budget, "
    "cap (shortlisted offers the store skipped) and eligibility (catalog offers not valid for the "
    "member's region, tier and day).",
    ("reason",),
)
EVENTS_RECEIVED = Counter(
    "perkrank_events", "Events POSTed to /v1/events, by result: accepted, duplicate.", ("result",)
)
STORE_ERRORS = Counter(
    "perkrank_store_errors", "Requests the state store failed (answered 503), readyz included."
)
MODEL_INFO = Gauge(
    "perkrank_model_info",
    "1 for the model version this process serves, 0 for versions it served before.",
    ("version",),
    multiprocess_mode="liveall",
)
CAPS_VERSION = Gauge(
    "perkrank_caps_version", "The stored caps version in force.", multiprocess_mode="liveall"
)
CATALOG_VERSION = Gauge(
    "perkrank_catalog_version",
    "The published catalog version in force (0: the data directory's offers).",
    multiprocess_mode="liveall",
)
_reported_versions: tuple[str, int, int] | None = None


class ObservabilityMiddleware:
    """Request id, latency histogram and access line for every HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        token = REQUEST_ID.set(request_id)
        status = 500

        async def send_with_request_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                header = (b"x-request-id", request_id.encode())
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        finally:
            seconds = time.perf_counter() - started
            method = scope["method"] if scope["method"] in METHODS else "other"
            route = getattr(scope.get("route"), "path", UNMATCHED_ROUTE)
            _request_seconds(method, route, status).observe(seconds)
            if access_log.isEnabledFor(logging.INFO):
                _log_access(request_id, method, route, status, seconds)
            REQUEST_ID.reset(token)


def metrics_response(context: ServingContext) -> Response:
    """`GET /metrics` in the Prometheus text format, the version gauges set from `context`."""
    report_versions(context)
    return Response(generate_latest(_registry()), media_type=CONTENT_TYPE_LATEST)


def count_offers(context: ServingContext, channel: str, ranking: Ranking) -> None:
    """Count one offers response: offers served and suppressed, versions in force."""
    report_versions(context)
    if ranking.offers:
        _offers_served(channel).inc(len(ranking.offers))
    for reason, count in ranking.suppressed.items():
        if count:
            _offers_suppressed(reason).inc(count)


def report_versions(context: ServingContext) -> None:
    """Point the version gauges at what `context` holds, when that changed."""
    global _reported_versions
    versions = (context.model_version, context.caps_version, context.catalog_version)
    if versions == _reported_versions:
        return
    if _reported_versions is not None and _reported_versions[0] != context.model_version:
        MODEL_INFO.labels(_reported_versions[0]).set(0)
    MODEL_INFO.labels(context.model_version).set(1)
    CAPS_VERSION.set(context.caps_version)
    CATALOG_VERSION.set(context.catalog_version)
    _reported_versions = versions


def _log_access(request_id: str, method: str, route: str, status: int, seconds: float) -> None:
    """One access line; built directly, as `Logger.info` would but without looking up the
    caller's source line (a third of the cost)."""
    fields = {
        "request_id": request_id,
        "method": method,
        "route": route,
        "status": status,
        "duration_ms": round(seconds * 1000, 3),
    }
    arguments = (method, route, status)
    record = access_log.makeRecord(
        access_log.name, logging.INFO, "", 0, "%s %s %d", arguments, None, extra=fields
    )
    access_log.handle(record)


def _request_id(scope: Scope) -> str:
    """The caller's X-Request-ID when it is 1–64 of `A-Z a-z 0-9 _ . : -`, else a new id."""
    for name, value in scope["headers"]:
        if name == b"x-request-id" and _SANE_REQUEST_ID.fullmatch(value):
            return value.decode()
    return os.urandom(16).hex()


def _registry() -> CollectorRegistry:
    """This process's metrics, or every worker's in multiprocess mode."""
    if MULTIPROCESS_VARIABLE not in os.environ:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


@functools.cache
def _request_seconds(method: str, route: str, status: int) -> Histogram:
    return REQUEST_SECONDS.labels(method, route, str(status))


@functools.cache
def _offers_served(channel: str) -> Counter:
    return OFFERS_SERVED.labels(channel)


@functools.cache
def _offers_suppressed(reason: str) -> Counter:
    return OFFERS_SUPPRESSED.labels(reason)
