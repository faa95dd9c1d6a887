"""Explain one member's offers from the context in force: read-only, nothing counted.

Gathers what `perkrank.serving.domain.explain.explain_offers` needs: the member's profile, the
experiment arm answering them (its model and policy), both full orders over the eligible
offers, and a snapshot of their state read from the store (`StateStore.member_state`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from perkrank.config import ServeConfig
from perkrank.serving.domain.catalog_diff import day_date
from perkrank.serving.domain.context import ServingContext
from perkrank.serving.domain.explain import (
    ExplainRequest,
    Explanation,
    Verdict,
    counters_to_read,
    explain_offers,
)
from perkrank.serving.domain.local_partners import local_slots, max_per_partner
from perkrank.serving.domain.ranking import NO_OFFERS, PERSONALIZED, OfferRequest, Shortlist
from perkrank.serving.domain.selection import Preferences


@dataclass(frozen=True)
class MemberExplanation:
    """A member's explanation with what it was computed for."""

    member_id: str
    channel: str
    region: str
    tier: str
    known_member: bool
    experiment: str | None
    arm: str | None
    policy: str
    model_version: str
    preferences: Preferences
    explanation: Explanation


def explain_member(
    context: ServingContext,
    settings: ServeConfig,
    request: OfferRequest,
    now: float | None = None,
) -> MemberExplanation:
    """Why each catalog offer is or is not shown to `request.member_id` now (read-only)."""
    now = time.time() if now is None else now
    assignment = context.assignment(request)
    ranker, model_version = context.model_for(assignment)
    policy = PERSONALIZED if assignment is None else assignment.policy
    region, tier = ranker.profile(request)
    day = ranker.day(now)
    shortlist = ranker.full_shortlist(request.member_id, region, tier, day, now)
    if policy != PERSONALIZED:
        shortlist = Shortlist(shortlist.fallback, shortlist.fallback, False, frozenset())
    catalog = ranker.catalog
    personalized = [catalog.candidates[row] for row in shortlist.personalized.rows]
    fallback = [catalog.candidates[row] for row in shortlist.fallback.rows]
    rules = context.rules()
    slots = local_slots(context.caps, region, request.limit)
    state = context.store.member_state(
        request.member_id,
        counters_to_read(rules, personalized, request.channel, now),
        [candidate.offer_id for candidate in personalized],
    )
    explained = ExplainRequest(
        member_id=request.member_id,
        channel=request.channel,
        now=now,
        day=day_date(day),
        region=region,
        tier=tier,
        limit=request.limit,
        pool=ranker.pool_size(request.limit),
        max_per_partner=max_per_partner(context.caps, settings.max_offers_per_partner),
        local_slots=slots,
        local_tail=ranker.pool_size(slots) if slots else 0,
        rules=rules,
        offers=catalog.offers,
        personalized=personalized,
        fallback=fallback,
        state=state,
        known_member=shortlist.known_member,
        repeat_offer_ids=frozenset(catalog.offers[row].offer_id for row in shortlist.repeat_rows),
    )
    explanation = explain_offers(explained)
    if policy == NO_OFFERS:
        explanation = Explanation(
            False,
            (),
            tuple(Verdict(offer.offer_id, "experiment_arm") for offer in catalog.offers),
        )
    return MemberExplanation(
        member_id=request.member_id,
        channel=request.channel,
        region=region,
        tier=tier,
        known_member=shortlist.known_member,
        experiment=None if assignment is None else assignment.experiment,
        arm=None if assignment is None else assignment.arm,
        policy=policy,
        model_version=model_version,
        preferences=state.preferences,
        explanation=explanation,
    )
