"""The HTTP API (FastAPI, versioned under /v1): ranked offers, preferences, health.

`create_app` only wires objects it is given (tests pass hand-made ones);
`build_app_from_config` loads the model, catalog, caps and store at startup (lifespan).
Apps call the offers endpoint on every screen view, so its path stays small: numpy over
arrays held in memory, one store round trip, JSON written by orjson.
"""

import gc
import logging
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
from fastapi import APIRouter, FastAPI, Request, Response, Security
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.constants import REF_PREFIX
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from fastapi.telemetry import TelemetryConfig
from pydantic import BaseModel, ValidationError

from perkrank.config import CapRule, CapsConfig, ServeConfig, load_config
from perkrank.models.bundle import Bundle
from perkrank.serving.admin import admin_routes
from perkrank.serving.auth import API_KEY_HEADER, ApiKeys, Role
from perkrank.serving.catalog import Catalog
from perkrank.serving.events_api import events_routes
from perkrank.serving.live import LiveRefresher, resolve_model
from perkrank.serving.logs import REQUEST_ID
from perkrank.serving.observability import (
    STORE_ERRORS,
    ObservabilityMiddleware,
    count_offers,
    metrics_routes,
)
from perkrank.serving.ranking import OfferRanker, OfferRequest, Ranking
from perkrank.serving.schemas import (
    MEMBER_ID_PATTERN,
    ErrorBody,
    Health,
    OffersResponse,
    PreferencesBody,
    Readiness,
    offers_parameters,
    openapi_parameters,
)
from perkrank.serving.store import StateStore, StateStoreError

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("perkrank.serving")

RETRY_AFTER_SECONDS = 1
GIL_SWITCH_SECONDS = 0.0005
"""CPython's default is 0.005: a request could wait that long behind a loading model."""
MemberId = Annotated[
    str,
    PathParam(
        pattern=MEMBER_ID_PATTERN,
        description="The member's id: 1–64 letters, digits, `_ . : -`.",
        examples=["M000042"],
    ),
]
ApiKey = Annotated[str | None, Security(APIKeyHeader(name=API_KEY_HEADER, auto_error=False))]
NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}
"""Off, FastAPI skips even its per-request check for configured OpenTelemetry providers."""
VALIDATION_ERROR = {
    "description": "A parameter is invalid; `detail` names each one.",
    "content": {"application/json": {"schema": {"$ref": REF_PREFIX + "HTTPValidationError"}}},
}
"""The 422 FastAPI documents for routes whose parameters it validates itself."""
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing or unknown API key."},
    403: {"model": ErrorBody, "description": "The API key's role may not do this."},
    503: {"model": ErrorBody, "description": "State store unavailable; retry after Retry-After."},
}


@dataclass(frozen=True)
class Serving:
    """Everything a request needs; a live change builds a new one (perkrank.serving.live)."""

    ranker: OfferRanker
    store: StateStore
    keys: ApiKeys
    caps: CapsConfig
    model_version: str
    caps_version: int = 0
    """The stored caps version in force; 0: the initial rules, not yet read from the store."""
    catalog_version: int = 0
    """The published catalog in force; 0: the offers of the data directory."""

    def rules(self) -> Sequence[CapRule]:
        """The frequency caps in force: the one place requests look them up."""
        return self.caps.rules


def create_app(
    settings: ServeConfig,
    *,
    bundle: Bundle,
    model_version: str,
    catalog: Catalog,
    store: StateStore,
    caps: CapsConfig,
    partners: "pd.DataFrame | None" = None,
) -> FastAPI:
    """The app over ready-made parts (raises ConfigError when no API key is configured);
    while its lifespan runs it follows the live settings. `partners`: the table published
    catalogs are checked against (None: publishing is refused)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.live.start()
        try:
            yield
        finally:
            app.state.live.stop()

    app = _new_app(settings, lifespan)
    app.state.live = LiveRefresher(app, settings, partners)
    app.state.serving = Serving(
        ranker=OfferRanker(bundle, catalog, settings),
        store=store,
        keys=ApiKeys.from_settings(settings),
        caps=caps,
        model_version=model_version,
    )
    return app


def build_app_from_config(settings: ServeConfig, data_dir: Path) -> FastAPI:
    """The app that loads model, catalog, caps and store when it starts and closes the store."""
    keys = ApiKeys.from_settings(settings)
    caps = load_config(CapsConfig, settings.caps_path)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from perkrank.features.loader import load_dataset
        from perkrank.serving.catalog import catalog_from_dataset
        from perkrank.serving.store import open_store

        bundle, model_version = load_bundle(settings)
        dataset = load_dataset(data_dir)
        catalog, partners = catalog_from_dataset(dataset, bundle), dataset.partners
        del dataset  # purchases are not needed while serving
        store = open_store(settings)
        app.state.serving = Serving(
            OfferRanker(bundle, catalog, settings), store, keys, caps, model_version
        )
        app.state.live = LiveRefresher(app, settings, partners)
        app.state.live.start()
        log.info(
            "serving model %s: %d offers, %d members, %d cap rules",
            model_version,
            len(catalog.offers),
            len(catalog.member_profiles),
            len(caps.rules),
        )
        gc.freeze()  # startup objects never become garbage: keep them out of every collection
        # The live refresher's threads load models beside the event loop; a short GIL switch
        # interval bounds how long a request waits for the interpreter meanwhile.
        sys.setswitchinterval(GIL_SWITCH_SECONDS)
        try:
            yield
        finally:
            app.state.live.stop()
            await store.close()

    return _new_app(settings, lifespan)


def load_bundle(settings: ServeConfig) -> tuple[Bundle, str]:
    """The bundle `settings.model_uri` names (a bundle directory or an MLflow models:/ URI)
    and its version; mlflow is imported only for the latter."""
    directory, version = resolve_model(settings)
    return Bundle.load(directory), version


def _new_app(settings: ServeConfig, lifespan: Any = None) -> FastAPI:
    app = FastAPI(
        title="perkrank",
        version="1",
        description="Ranked, capped, opt-out-safe offers for loyalty program members. "
        f"Send an API key in `{API_KEY_HEADER}`.",
        lifespan=lifespan,
        telemetry=None if settings.opentelemetry else NO_TELEMETRY,
    )
    app.include_router(_v1_routes(settings))
    app.include_router(admin_routes(), responses=ERRORS)
    app.include_router(_health_routes())
    app.include_router(events_routes(settings), responses=ERRORS)
    app.include_router(metrics_routes())
    app.add_middleware(ObservabilityMiddleware)
    app.add_exception_handler(StateStoreError, _store_unavailable)
    return app


def _v1_routes(settings: ServeConfig) -> APIRouter:
    router = APIRouter(prefix="/v1", responses=ERRORS)
    parameters = offers_parameters(settings.default_limit, settings.max_limit)

    @router.get(
        "/members/{member_id}/offers",
        response_model=OffersResponse,
        tags=["offers"],
        summary="A member's ranked offers for one screen view",
        responses={422: VALIDATION_ERROR},
        openapi_extra={
            "parameters": openapi_parameters(parameters, in_path={"member_id"}),
            "security": [{APIKeyHeader.__name__: []}],
        },
    )
    async def get_offers(request: Request) -> Response:
        """Eligible offers (valid today, offered in the region, open to the tier), ranked for
        the member, without opt-outs and within caps, budgets and the per-partner limit.
        Every offer returned is counted against its caps. A member the files do not know
        gets offers for their region and tier (query parameters, else the defaults)."""
        # Parameters are read here, in one pydantic validation, rather than declared to
        # FastAPI: its per-parameter handling cost more than ranking on this hot path.
        serving: Serving = request.app.state.serving
        serving.keys.require(request.headers.get(API_KEY_HEADER), Role.APP)
        offer_request = _offer_request(request, parameters)
        ranking = await serving.ranker.rank(serving.store, offer_request, serving.rules())
        count_offers(serving, offer_request.channel, ranking)
        return _offers_response(offer_request, ranking, serving.model_version)

    @router.get(
        "/members/{member_id}/preferences",
        response_model=PreferencesBody,
        tags=["preferences"],
        summary="What a member opted out of",
    )
    def get_preferences(request: Request, member_id: MemberId, api_key: ApiKey) -> PreferencesBody:
        """The member's opt-outs and personalization setting (defaults if never set)."""
        # Plain `def` handlers run in FastAPI's threadpool: a slow store call here never holds
        # up the event loop (only `select` has an async client).
        serving: Serving = request.app.state.serving
        serving.keys.require(api_key, Role.APP)
        return PreferencesBody.of(serving.store.get_preferences(member_id))

    @router.put(
        "/members/{member_id}/preferences",
        response_model=PreferencesBody,
        tags=["preferences"],
        summary="Replace what a member opted out of (admin key)",
    )
    def put_preferences(
        request: Request, member_id: MemberId, api_key: ApiKey, body: PreferencesBody
    ) -> PreferencesBody:
        """Replace all of the member's preferences; the very next offers request obeys them."""
        serving: Serving = request.app.state.serving
        serving.keys.require(api_key, Role.ADMIN)
        serving.store.set_preferences(member_id, body.to_preferences())
        return body

    return router


def _health_routes() -> APIRouter:
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
    def readyz(request: Request) -> Response:
        serving: Serving = request.app.state.serving
        try:
            serving.store.ping()
        except StateStoreError as error:
            STORE_ERRORS.inc()
            log.warning("not ready: %s", error)
            body = Readiness(
                status="unavailable",
                model_version=serving.model_version,
                detail="state store unreachable",
            )
            return JSONResponse(body.model_dump(), status_code=503)
        return JSONResponse(
            Readiness(status="ready", model_version=serving.model_version).model_dump()
        )

    return router


def _offer_request(request: Request, parameters: type[BaseModel]) -> OfferRequest:
    """The request's validated parameters; RequestValidationError (422) names each bad one."""
    try:
        values = parameters.model_validate({**request.query_params, **request.path_params})
    except ValidationError as error:
        raise RequestValidationError(
            [
                {**problem, "loc": (_parameter_place(problem["loc"]), *problem["loc"])}
                for problem in error.errors(include_url=False)
            ]
        ) from None
    return OfferRequest(values.member_id, values.channel, values.limit, values.region, values.tier)


def _parameter_place(location: tuple[int | str, ...]) -> str:
    return "path" if location[:1] == ("member_id",) else "query"


def _offers_response(request: OfferRequest, ranking: Ranking, model_version: str) -> Response:
    """`OffersResponse` as JSON, written by orjson without building pydantic objects."""
    offers = [
        {
            "offer_id": served.offer.offer_id,
            "partner_id": served.offer.partner_id,
            "category": served.offer.category,
            "title": served.offer.title,
            "reward": served.offer.reward,
            "rank": served.rank,
            "score": round(served.score, 6),
            "reason": served.reason,
        }
        for served in ranking.offers
    ]
    body = {
        "member_id": request.member_id,
        "channel": request.channel,
        "personalized": ranking.personalized,
        "model_version": model_version,
        "request_id": REQUEST_ID.get(),
        "offers": offers,
    }
    return Response(orjson.dumps(body), media_type="application/json")


async def _store_unavailable(request: Request, error: Exception) -> Response:
    STORE_ERRORS.inc()
    log.warning("state store unavailable: %s", error)
    return JSONResponse(
        {"detail": "state store unavailable; retry shortly"},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )
