"""`GET /v1/admin/members/{member_id}/explain` (admin key): why each offer is or is not shown.

Read-only: the member's state is read from the store and the selection rules re-run on it;
nothing is counted against caps and no decision is logged (`perkrank.serving.explaining`).
"""

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from perkrank.config import ServeConfig
from perkrank.serving.api.deps import AdminKey, Context
from perkrank.serving.api.schemas import MEMBER_ID_PATTERN, Channel, Tier
from perkrank.serving.domain.explain import Status
from perkrank.serving.domain.ranking import OfferRequest
from perkrank.serving.explaining import MemberExplanation, explain_member


class VerdictBody(BaseModel):
    """One catalog offer: what happened to it, its rank in the order used, and the facts."""

    offer_id: str
    status: Status
    rank: int | None
    reason: str | None
    detail: dict[str, Any] = Field(
        description="not_eligible: `checks` (dates, region, tier) and the offer's values; "
        "opt_out: `kind`; cap: `rule`, `count`, `limit`, `until` (Unix seconds, null: never); "
        "partner_limit: `partner_id`; budget: `redeemed`, `budget`; below_cut: `limit` or `pool`."
    )


class PreferencesBody(BaseModel):
    """What the member opted out of."""

    opt_out_all: bool
    opted_out_channels: list[str]
    opted_out_categories: list[str]
    opted_out_partners: list[str]
    personalization: bool


class ExplanationBody(BaseModel):
    """A member's offers now, and why every other catalog offer is not shown."""

    member_id: str
    channel: str
    region: str
    tier: str
    known_member: bool
    experiment: str | None
    arm: str | None
    policy: str
    model_version: str
    personalized: bool
    preferences: PreferencesBody
    shown: list[VerdictBody]
    hidden: list[VerdictBody]

    @classmethod
    def of(cls, explained: MemberExplanation) -> "ExplanationBody":
        preferences = {
            name: sorted(value) if isinstance(value, frozenset) else value
            for name, value in asdict(explained.preferences).items()
        }
        explanation = explained.explanation
        fields = {
            name: getattr(explained, name)
            for name in cls.model_fields
            if hasattr(explained, name) and name not in ("preferences", "personalized")
        }
        return cls(
            **fields,
            personalized=explanation.personalized,
            preferences=PreferencesBody(**preferences),
            shown=[VerdictBody(**asdict(verdict)) for verdict in explanation.shown],
            hidden=[VerdictBody(**asdict(verdict)) for verdict in explanation.hidden],
        )


def explain_routes(settings: ServeConfig) -> APIRouter:
    """The member explanation endpoint."""
    router = APIRouter(prefix="/v1/admin")

    @router.get(
        "/members/{member_id}/explain",
        response_model=ExplanationBody,
        tags=["admin"],
        summary="Why each offer is or is not shown to a member (counts nothing)",
    )
    async def explain(
        _: AdminKey,
        context: Context,
        member_id: Annotated[str, Path(pattern=MEMBER_ID_PATTERN)],
        channel: Channel = "app",
        limit: Annotated[int | None, Query(ge=1, le=settings.max_limit)] = None,
        region: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
        tier: Tier | None = None,
    ) -> ExplanationBody:
        """The member's offers as a request would get them now, with their reasons, the
        member's preferences, and for every other catalog offer why it is not shown: not
        eligible (dates, region, tier), opted out, capped (rule, count/limit, until when),
        partner limit, budget spent, or ranked below the cut. Nothing is counted."""
        request = OfferRequest(member_id, channel, limit or settings.default_limit, region, tier)
        explained = await run_in_threadpool(explain_member, context, settings, request)
        return ExplanationBody.of(explained)

    return router
