"""`GET /v1/members/{member_id}/offers`: a member's ranked offers for one screen view.

Apps call it on every screen view, so its path stays small: numpy over arrays held in memory,
one store round trip, JSON written by orjson. Its parameters are read in one pydantic
validation and its key checked by a plain call, not declared to FastAPI: FastAPI's
per-parameter and per-dependency handling cost more than ranking on this path.

Each response is a decision: it gets a `decision_id` (body and `X-Decision-Id`), names the
experiment and arm that answered (the arm's policy ranks it, with the arm's model, and its
exploration draws the order seeded by the decision id) and the model version, and is queued
for the decision log (`perkrank.serving.recorder`) with each offer's propensity, never waited
for.
"""

from __future__ import annotations

import os
import time

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ValidationError

from perkrank.config import ServeConfig
from perkrank.serving.api.auth import API_KEY_HEADER, Role
from perkrank.serving.api.deps import context_of, require_key
from perkrank.serving.api.logs import REQUEST_ID
from perkrank.serving.api.observability import count_offers
from perkrank.serving.api.schemas import (
    VALIDATION_ERROR,
    OffersResponse,
    offers_parameters,
    openapi_parameters,
)
from perkrank.serving.domain.channels import QUIET_HOURS, in_quiet_hours, list_size
from perkrank.serving.domain.decisions import Decision
from perkrank.serving.domain.logged_decision import logged_decision
from perkrank.serving.domain.ranking import PERSONALIZED, OfferRequest, Ranking
from perkrank.serving.domain.reasons import is_exclusive, reason_language

DECISION_ID_HEADER = "X-Decision-Id"


def offers_routes(settings: ServeConfig) -> APIRouter:
    """The offers endpoint, under /v1, with the configured list lengths."""
    router = APIRouter(prefix="/v1")
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
        Every offer returned is counted against its caps, once per decision: a `decision_id`
        shown before (on any channel) is not counted again. Push and SMS inside the member's
        local quiet hours get an empty list (`empty_reason`: `quiet_hours`). A re-show is not
        logged again (the decision log keeps each decision once, as first shown). A member the
        files do not know gets offers for their region and tier (query parameters, else the
        defaults)."""
        context = context_of(request)
        require_key(request, request.headers.get(API_KEY_HEADER), Role.APP)
        offer_request, reshow = _offer_request(request, parameters, settings)
        decision_id = offer_request.decision_id
        assignment = context.assignment(offer_request)
        ranker, model_version = context.model_for(assignment)
        now = time.time()
        policy, exploration = (
            (PERSONALIZED, None)
            if assignment is None
            else (assignment.policy, assignment.exploration)
        )
        region = ranker.profile(offer_request)[0]
        mechanics = settings.mechanics
        channel = mechanics.channels.get(offer_request.channel)
        empty_reason = None
        if in_quiet_hours(now, mechanics.time_zone(region), channel):
            ranking, empty_reason = Ranking(False, [], {}), QUIET_HOURS
        else:
            ranking = await ranker.rank(
                context.store,
                offer_request,
                context.rules(),
                now,
                policy,
                exploration,
                int(decision_id, 16),
                context.caps,
            )
        count_offers(context, offer_request.channel, ranking)
        decision = logged_decision(offer_request, ranking, now, model_version, assignment)
        if not reshow:  # the log keeps a decision once, as first shown
            request.app.state.recorder.record(decision)
        return _offers_response(offer_request, ranking, decision, empty_reason)

    return router


def _offer_request(
    request: Request, parameters: type[BaseModel], settings: ServeConfig
) -> tuple[OfferRequest, bool]:
    """The request's validated parameters, the reasons' language from `lang` or
    `Accept-Language`, and whether it re-shows a decision; a new decision gets a new id
    (random, 128 bits). RequestValidationError (422) names each bad one."""
    try:
        values = parameters.model_validate({**request.query_params, **request.path_params})
    except ValidationError as error:
        raise RequestValidationError(
            [
                {**problem, "loc": (_parameter_place(problem["loc"]), *problem["loc"])}
                for problem in error.errors(include_url=False)
            ]
        ) from None
    privacy = settings.privacy
    language = reason_language(
        values.lang,
        request.headers.get("accept-language"),
        privacy.reasons,
        privacy.default_language,
    )
    limit = list_size(values.limit, settings.mechanics.channels.get(values.channel))
    reshow = bool(values.decision_id)
    decision_id = values.decision_id if reshow else os.urandom(16).hex()
    offer_request = OfferRequest(
        values.member_id, values.channel, limit, values.region, values.tier, language, decision_id
    )
    return offer_request, reshow


def _parameter_place(location: tuple[int | str, ...]) -> str:
    return "path" if location[:1] == ("member_id",) else "query"


def _offers_response(
    request: OfferRequest, ranking: Ranking, decision: Decision, empty_reason: str | None
) -> Response:
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
            "exclusive": is_exclusive(served.offer),
            "occasion": served.offer.occasion,
        }
        for served in ranking.offers
    ]
    body = {
        "member_id": request.member_id,
        "channel": request.channel,
        "personalized": ranking.personalized,
        "model_version": decision.model_version,
        "request_id": REQUEST_ID.get(),
        "decision_id": decision.decision_id,
        "experiment": decision.experiment,
        "arm": decision.arm,
        "offers": offers,
        "empty_reason": empty_reason,
    }
    return Response(
        orjson.dumps(body),
        media_type="application/json",
        headers={DECISION_ID_HEADER: decision.decision_id},
    )
