"""Why each catalog offer is or is not shown to one member: a pure, read-only explanation.

`explain_offers` re-runs the selection policy (`rules.select_offers`) over the member's state
as read from the store, on the same shortlist a request would hand the store, and names for
every catalog offer what kept it out: not eligible (dates, region, tier), opted out, the
per-partner limit, a spent budget, a cap (which rule, its count and limit, and when its window
frees it), or a rank below the cut. Nothing is counted: the choice's increments are dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from perkrank.config import CapRule
from perkrank.features.schema import tier_rank
from perkrank.serving.domain.catalog import Offer
from perkrank.serving.domain.local_partners import with_local_tail
from perkrank.serving.domain.reasons import offer_reason
from perkrank.serving.domain.rules import (
    CapCounter,
    Exclusion,
    MemberState,
    scope_value,
    select_offers,
)
from perkrank.serving.domain.selection import Candidate, SelectionRequest
from perkrank.serving.domain.windows import current_bucket

Status = Literal[
    "shown",
    "not_eligible",
    "opt_out",
    "partner_limit",
    "budget",
    "cap",
    "below_cut",
    "experiment_arm",
]
"""What happened to an offer, in the order the reasons are checked (`experiment_arm`: the
member's experiment arm shows no offers)."""


@dataclass(frozen=True)
class ExplainRequest:
    """Everything the explanation reads: the member's profile, both full orders, the state."""

    member_id: str
    channel: str
    now: float
    day: date
    """The catalog day offers must be valid on."""
    region: str
    tier: str
    limit: int
    pool: int
    """How many of each order a request hands the store (`OfferRanker.pool_size`)."""
    max_per_partner: int
    rules: Sequence[CapRule]
    offers: Sequence[Offer]
    """Every catalog offer."""
    personalized: Sequence[Candidate]
    """Every eligible offer, best first, in the member's personalized order."""
    fallback: Sequence[Candidate]
    state: MemberState
    known_member: bool = False
    repeat_offer_ids: frozenset[str] = frozenset()
    local_slots: int = 0
    """The region's local floor (`local_partners.local_slots`)."""
    local_tail: int = 0
    """Local offers beyond `pool` a request hands the store (`OfferRanker.rank`)."""


@dataclass(frozen=True)
class Verdict:
    """One catalog offer: what happened to it and the facts behind it (JSON values)."""

    offer_id: str
    status: Status
    rank: int | None = None
    """1-based position in the order used (None: not eligible, so not ranked)."""
    reason: str | None = None
    """For a shown offer: the reason the member sees."""
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Explanation:
    """The member's shown offers (in order) and a verdict for every catalog offer."""

    personalized: bool
    shown: tuple[Verdict, ...]
    hidden: tuple[Verdict, ...]


def ineligibility(offer: Offer, region: str, tier: str, day: date) -> list[str]:
    """Which of `dates`, `region`, `tier` keep `offer` from the member (empty: eligible),
    by the rule of perkrank.features.eligibility."""
    checks = []
    if not offer.valid_from <= day <= offer.valid_to:
        checks.append("dates")
    if offer.regions is not None and region not in offer.regions:
        checks.append("region")
    if tier_rank(offer.min_tier) > tier_rank(tier):
        checks.append("tier")
    return checks


def explain_offers(request: ExplainRequest) -> Explanation:
    """Re-run `select_offers` on the request's shortlist and explain every catalog offer."""
    slots, tail = request.local_slots, request.local_tail
    choice = select_offers(
        request.state,
        SelectionRequest(
            member_id=request.member_id,
            channel=request.channel,
            now=request.now,
            limit=request.limit,
            max_per_partner=request.max_per_partner,
            personalized=with_local_tail(request.personalized, request.pool, tail, _local),
            fallback=with_local_tail(request.fallback, request.pool, tail, _local),
            rules=request.rules,
            local_slots=slots,
        ),
    )
    order = request.personalized if choice.personalized else request.fallback
    ranks = {candidate.offer_id: rank for rank, candidate in enumerate(order, start=1)}
    by_id = {offer.offer_id: offer for offer in request.offers}
    chosen = [order[position] for position in choice.positions]
    shown = tuple(
        Verdict(
            candidate.offer_id,
            "shown",
            ranks[candidate.offer_id],
            offer_reason(
                by_id[candidate.offer_id],
                personalized=choice.personalized,
                known_member=request.known_member,
                repeated=candidate.offer_id in request.repeat_offer_ids,
            ),
        )
        for candidate in chosen
    )
    left_out = {exclusion.offer_id: exclusion for exclusion in choice.left_out}
    blanket = _blanket(choice.left_out)
    shown_ids = {verdict.offer_id for verdict in shown}
    hidden = []
    for offer in request.offers:
        offer_id = offer.offer_id
        if offer_id in shown_ids:
            continue
        checks = ineligibility(offer, request.region, request.tier, request.day)
        rank = ranks.get(offer_id)
        if checks or rank is None:
            hidden.append(_not_eligible(offer, checks))
        elif blanket is not None:
            hidden.append(Verdict(offer_id, "opt_out", rank, detail={"kind": blanket}))
        elif offer_id in left_out:
            exclusion = left_out[offer_id]
            hidden.append(_excluded(request, exclusion, order[exclusion.position], chosen, rank))
        else:
            hidden.append(Verdict(offer_id, "below_cut", rank, detail={"pool": request.pool}))
    return Explanation(choice.personalized, shown, tuple(hidden))


def _blanket(left_out: Sequence[Exclusion]) -> str | None:
    """`all` or `channel` when the member opted out of everything here."""
    for exclusion in left_out[:1]:
        if exclusion.reason == "opt_out" and exclusion.detail in ("all", "channel"):
            return exclusion.detail
    return None


def _not_eligible(offer: Offer, checks: list[str]) -> Verdict:
    detail: dict[str, Any] = {"checks": checks or ["dates"]}
    if "dates" in detail["checks"]:
        detail |= {
            "valid_from": offer.valid_from.isoformat(),
            "valid_to": offer.valid_to.isoformat(),
        }
    if "region" in checks:
        detail["regions"] = sorted(offer.regions or ())
    if "tier" in checks:
        detail["min_tier"] = offer.min_tier
    return Verdict(offer.offer_id, "not_eligible", detail=detail)


def _excluded(
    request: ExplainRequest,
    exclusion: Exclusion,
    candidate: Candidate,
    chosen: Sequence[Candidate],
    rank: int,
) -> Verdict:
    """The verdict of a shortlisted offer `select_offers` left out."""
    offer_id = exclusion.offer_id
    if exclusion.reason == "limit":
        return Verdict(offer_id, "below_cut", rank, detail={"limit": request.limit})
    if exclusion.reason == "opt_out":
        return Verdict(offer_id, "opt_out", rank, detail={"kind": exclusion.detail})
    if exclusion.reason == "partner_limit":
        detail = {"partner_id": exclusion.detail, "max_per_partner": request.max_per_partner}
        return Verdict(offer_id, "partner_limit", rank, detail=detail)
    if exclusion.reason == "budget":
        redeemed = request.state.redeemed.get(offer_id, 0)
        return Verdict(
            offer_id, "budget", rank, detail={"redeemed": redeemed, "budget": candidate.budget}
        )
    rule = next(rule for rule in request.rules if rule.name == exclusion.detail)
    return Verdict(offer_id, "cap", rank, detail=cap_detail(request, rule, candidate, chosen))


def cap_detail(
    request: ExplainRequest, rule: CapRule, candidate: Candidate, chosen: Sequence[Candidate]
) -> dict[str, Any]:
    """A capping rule's facts: its count (stored, plus what this request chose before, for a
    rule counting `served`), limit, and when its window frees it (None: never)."""
    bucket = current_bucket(rule.window, request.now)
    value = scope_value(rule.scope, candidate, request.channel)
    counter = CapCounter(rule.name, rule.scope, bucket.label, value)
    count = request.state.cap_counts.get(counter, 0)
    if rule.counts == "served":
        count += sum(
            scope_value(rule.scope, earlier, request.channel) == value for earlier in chosen
        )
    until = None if bucket.ttl_seconds is None else request.now + bucket.ttl_seconds
    return {
        "rule": rule.name,
        "scope": rule.scope,
        "counts": rule.counts,
        "count": count,
        "limit": rule.limit,
        "window": rule.window,
        "until": until,
    }


def counters_to_read(
    rules: Sequence[CapRule], candidates: Sequence[Candidate], channel: str, now: float
) -> list[CapCounter]:
    """Every counter `select_offers` may read for `candidates` (what a snapshot must hold)."""
    counters = {}
    for rule in rules:
        label = current_bucket(rule.window, now).label
        for candidate in candidates:
            counter = CapCounter(
                rule.name, rule.scope, label, scope_value(rule.scope, candidate, channel)
            )
            counters[counter] = None
    return list(counters)


def _local(candidate: Candidate) -> bool:
    return candidate.local
