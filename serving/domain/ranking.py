"""One request's offers: eligibility, two scorings, a shortlist per order, one store call.

The personalized order scores eligible offers with the bundle's ranker (a known member's
vector plus their repeat-purchase boost, else the cold vector of their region, tier and tenure,
named as evaluation names its cold members); the fallback order scores them with the regional
popularity of their segment. Scores and orders come from `models.scoring`. Each order's best
`pool` offers go to the store's `select` (an `OfferSelector`), which applies opt-outs, leaves
sensitive categories the member did not consent to out of the personalized order, the
per-partner limit, budgets and caps, takes the order the member's personalization setting
asks for, and counts what it returns. An exploring arm's order is first sampled from its
shortlist (`exploration`), and each shown offer carries its propensity. Everything but that one
call is numpy over the catalog's arrays.

With a bundle that carries a second stage (`models.second_stage`), a member with purchases
before its cutoff gets the second stage's order: candidates among the eligible offers by the
learned ranker, then the rest by the blend's score; every other member gets the fallback
order (regional popularity: on cold members it beats the blend's cold vector). With a coupon
stage (`models.coupon_stage`), a member it knows gets the coupon ranker's order instead.

What depends only on region, tier, tenure bucket and day (the eligible offers, their fallback
order, the cold order and the second stage's member-independent candidates) is computed once
per segment and day and reused by every request there (`segments`). Occasion offers
(birthday, welcome, win-back, tier upgrade) are eligible only while their occasion applies to
the member, and their scores get the configured boost; offers exclusive to a tier are checked
against the member's own tier (`mechanics`). Orders rank by `models.value.final_scores`:
calibrated scores plus value terms and ln(lever multipliers) of the day
(`levers.adjustments_of`, per segment).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from perkrank.config import CapRule, CapsConfig, ServeConfig
from perkrank.experiment_config import Exploration
from perkrank.lever_config import Lever
from perkrank.models import scoring, value
from perkrank.models.bundle import Bundle
from perkrank.models.coupon_stage import CANDIDATE_OFFSET as COUPON_OFFSET
from perkrank.models.second_stage import CANDIDATE_OFFSET, stage_scores
from perkrank.serving.domain.catalog import Catalog, day_number
from perkrank.serving.domain.decisions import DETERMINISTIC
from perkrank.serving.domain.exploration import explored_shortlist
from perkrank.serving.domain.local_partners import (
    local_slots,
    max_per_partner,
)
from perkrank.serving.domain.mechanics import exclusive_tier, member_occasions
from perkrank.serving.domain.member_cache import CandidateLists, MemberCache, MemberWork
from perkrank.serving.domain.privacy import sensitive_categories
from perkrank.serving.domain.ranking_values import (
    OfferRequest,
    RankedOffer,
    Ranking,
    Segment,
    Shortlist,
)
from perkrank.serving.domain.reasons import offer_reason
from perkrank.serving.domain.segments import Segments, best_order
from perkrank.serving.domain.selection import Candidate, OfferSelector, Selection, SelectionRequest

SECONDS_PER_DAY = 86_400
PERSONALIZED, NO_OFFERS = "personalized", "none"
"""Policies (`ExperimentArm.policy`) `rank` treats apart; any other is `popular`."""
MAX_CACHED_REASONS = 100_000
"""Reasons `OfferRanker.reason` keeps before its cache starts over."""
NEW = tuple.__new__
"""Makes a named tuple of all its fields without the generated `__new__` (it runs per offer)."""


class OfferRanker:
    """Ranks one catalog's offers with one bundle; caches per-segment work only."""

    def __init__(
        self,
        bundle: Bundle,
        catalog: Catalog,
        settings: ServeConfig,
        levers: Sequence[Lever] = (),
    ) -> None:
        self.bundle = bundle
        self.catalog = catalog
        self._settings = settings
        self.levers = tuple(levers)
        """The marketer levers in force (a lever change builds a new ranker)."""
        self.segments = Segments(
            bundle, catalog, settings, levers, self.pool_size(settings.max_limit)
        )
        """The segments this ranker has built (cached per region, tier, day, …)."""
        self._local = self.segments.local
        categories = {offer.category for offer in catalog.offers}
        self.sensitive = sensitive_categories(categories, settings.privacy.sensitive_categories)
        """The catalog's sensitive categories: personalized only with the member's consent."""
        self._reasons: dict[tuple[int, str | None, bool, bool, bool, bool], str] = {}
        self.candidates = CandidateLists(catalog.candidates, self._local)
        """The store's candidate lists of the orders (shared orders' kept)."""
        self.members = MemberCache(settings.member_cache_size)
        """Known members' shortlists and candidates (`member_work`), per segment."""

    async def rank(
        self,
        store: OfferSelector,
        request: OfferRequest,
        rules: Sequence[CapRule],
        now: float | None = None,
        policy: str = PERSONALIZED,
        exploration: Exploration | None = None,
        seed: int = 0,
        caps: CapsConfig | None = None,
    ) -> Ranking:
        """Shortlist eligible offers, let the store select and count them, explain each one.

        Parameters
        ----------
        store:
            Applies opt-outs, the per-partner limit, budgets and `rules` in one call.
        request:
            Member, channel, list length and optional region and tier overrides.
        rules:
            The frequency caps in force.
        now:
            Unix seconds (None: the clock); picks the cap windows, and the catalog day
            unless `ServeConfig.catalog_date` fixes it.
        policy:
            `personalized` (the member's order, or the fallback for a member who turned
            personalization off), `popular` (the fallback order only: the member's scores
            are never computed) or `none` (no offers; the store is not called).
        exploration:
            How to sample the policy's order before the store walks it (None: as ranked).
        seed:
            Seeds the sample (the decision id), so the same request samples alike.
        caps:
            Its local floor and per-partner limit (None: no floor, serve.yaml's limit).

        Returns
        -------
        At most `request.limit` offers in the order the store selected them.
        """
        if policy == NO_OFFERS:
            return Ranking(False, [], {})
        now = time.time() if now is None else now
        region, tier = self.profile(request)
        pool = self.pool_size(request.limit)
        caps = caps or CapsConfig()
        tail = self.local_tail(caps, region, request.limit)
        day = self.day(now)
        exclusive, occasions = self.member_mechanics(request.member_id, region, tier, day, now)
        tenure = self.tenure_days(request.member_id, day)
        segment = self.segment(region, tier, day, tenure, exclusive, occasions)
        candidates: list[Candidate] | None = None
        if policy == PERSONALIZED:
            shortlist, candidates = self.member_work(request.member_id, segment, pool, tail)
        else:
            shortlist = Shortlist(segment.fallback, segment.fallback, False, frozenset())
        propensities: dict[int, float] = {}
        if exploration is not None:
            shortlist, propensities = explored_shortlist(shortlist, pool, exploration, seed)
            candidates = None  # the sampled order's own
        selection = await store.select(
            self.selection_request(request, shortlist, region, rules, now, caps, candidates)
        )
        if not selection.personalized:  # the member's fallback order: nothing sampled
            propensities = {}
        if policy != PERSONALIZED:  # the store walked the fallback order as "personalized"
            selection = replace(selection, personalized=False)
        ranking = self.explain(shortlist, selection, propensities, request.language)
        ranking.suppressed["eligibility"] = len(self.catalog.offers) - len(segment.rows)
        return ranking

    def local_tail(self, caps: CapsConfig, region: str, limit: int) -> int:
        """How many local offers beyond the pool a list in `region` carries to the store: enough
        for the local floor's slots (`local_slots`) when some offers are capped."""
        slots = local_slots(caps, region, limit)
        return self.pool_size(slots) if slots else 0

    def selection_request(
        self,
        request: OfferRequest,
        shortlist: Shortlist,
        region: str,
        rules: Sequence[CapRule],
        now: float,
        caps: CapsConfig,
        personalized: list[Candidate] | None = None,
    ) -> SelectionRequest:
        """What the store walks for `request`: both orders' best `pool_size` rows plus the
        local tail (`personalized`: the personalized order's, computed before), the caps
        document's floor and per-partner limit, the decision id."""
        pool, limit = self.pool_size(request.limit), request.limit
        tail = self.local_tail(caps, region, limit)
        if personalized is None:
            personalized = self.candidates.of_rows(shortlist.personalized.rows, pool, tail)
        return SelectionRequest(
            member_id=request.member_id,
            channel=request.channel,
            now=now,
            limit=limit,
            max_per_partner=max_per_partner(caps, self._settings.max_offers_per_partner),
            personalized=personalized,
            fallback=self.candidates.of_order(shortlist.fallback, pool, tail),
            rules=rules,
            sensitive=self.sensitive,
            decision_id=request.decision_id,
            decision_ttl_seconds=self._settings.mechanics.decision_ttl_seconds,
            local_slots=local_slots(caps, region, limit),
        )

    def member_work(
        self, member_id: str, segment: Segment, pool: int, tail: int
    ) -> tuple[Shortlist, list[Candidate]]:
        """The member's `shortlist` and its personalized candidates: a known member's kept
        from their last request of this segment, pool and tail (`MemberCache`); a member
        ranked by the segment's shared order gets that order's shared candidates."""
        kept = self.members.get(member_id, segment, pool, tail)
        if kept is not None:
            return kept.shortlist, kept.personalized
        shortlist = self.shortlist(member_id, segment, pool, tail)
        if not shortlist.known_member:
            return shortlist, self.candidates.of_order(shortlist.personalized, pool, tail)
        candidates = self.candidates.of_rows(shortlist.personalized.rows, pool, tail)
        self.members.put(member_id, pool, tail, MemberWork(segment, shortlist, candidates))
        return shortlist, candidates

    @property
    def settings(self) -> ServeConfig:
        """The serving settings this ranker ranks by."""
        return self._settings

    def profile(self, request: OfferRequest) -> tuple[str, str]:
        """Region and tier to rank for: the request's, else the member's, else the defaults."""
        member = self.catalog.member(request.member_id)
        region = request.region or (member.region if member else self._settings.default_region)
        tier = request.tier or (member.tier if member else self._settings.default_tier)
        return region, tier

    def tenure_days(self, member_id: str, day: int) -> int:
        """Days from the member's signup to `day`; 0 for a member the files do not list."""
        member = self.catalog.member(member_id)
        if member is None or member.signup_day is None:
            return 0
        return day - member.signup_day

    def day(self, now: float) -> int:
        """The catalog day offers must be valid on: the configured date, else today (UTC)."""
        if self._settings.catalog_date is not None:
            return day_number(self._settings.catalog_date)
        return int(now // SECONDS_PER_DAY)

    def pool_size(self, limit: int) -> int:
        """How many candidates of each order go to the store."""
        settings = self._settings
        return limit * settings.candidate_pool_multiplier + settings.candidate_pool_margin

    def segment(
        self,
        region: str,
        tier: str,
        day: int,
        tenure_days: int = 0,
        exclusive: str | None = None,
        occasions: frozenset[str] = frozenset(),
    ) -> Segment:
        """The cached segment of these (`Segments.get`)."""
        return self.segments.get(region, tier, day, tenure_days, exclusive, occasions)

    def warm_like(self, other: OfferRanker) -> int:
        """Build the segments `other` has cached, before a swap from it (`Segments.warm_like`)."""
        return self.segments.warm_like(other.segments)

    def member_mechanics(
        self, member_id: str, region: str, tier: str, day: int, now: float
    ) -> tuple[str, frozenset[str]]:
        """The tier the member's exclusive offers are open to, and their occasions today."""
        occasions = member_occasions(
            self.catalog,
            member_id,
            region,
            day,
            now,
            self._settings.mechanics,
            self._settings.catalog_date is not None,
        )
        return exclusive_tier(self.catalog, member_id, tier), occasions

    def full_shortlist(
        self, member_id: str, region: str, tier: str, day: int, now: float
    ) -> Shortlist:
        """Both orders over every eligible offer (not cached: for explaining, not serving)."""
        exclusive, occasions = self.member_mechanics(member_id, region, tier, day, now)
        tenure = self.tenure_days(member_id, day)
        segment = self.segments.build(
            region, tier, day, tenure, len(self.catalog.offers), exclusive, occasions
        )
        return self.shortlist(member_id, segment, len(segment.rows))

    def shortlist(
        self, member_id: str, segment: Segment, pool: int, local_tail: int = 0
    ) -> Shortlist:
        """Both orders for the member: the segment's cold order unless the ranker knows them;
        a member the bundle's coupon stage knows gets its order (`CouponStage.member_scores`:
        the offers it knows by its ranker, then the others, by row); a known member's order
        ends with `local_tail` local offers (`best_with_locals`)."""
        coupons = self.bundle.coupon_stage
        if coupons is not None and coupons.member_row(member_id) is not None:
            offer_ids = [self.catalog.offers[row].offer_id for row in segment.rows]
            scores, known = coupons.stage_scores(member_id, offer_ids, np.zeros(len(offer_ids)))
            order = best_order(scores, segment.rows, pool, segment.local, local_tail)
            offsets = frozenset(segment.rows[known].tolist())
            return Shortlist(order, segment.fallback, True, frozenset(), offsets, COUPON_OFFSET)
        ranker, stage = self.bundle.ranker, self.bundle.second_stage
        member_row = ranker.member_row(member_id)
        stats_row = None if stage is None else stage.member_row(member_id)
        if member_row is None or (stage is not None and stats_row is None):
            cold = segment.cold if stage is None else segment.fallback
            return Shortlist(cold, segment.fallback, False, frozenset())
        repeat = scoring.repeat_scores(ranker, member_row, segment.item_rows)
        vector = ranker.member_vectors[member_row]
        scores = scoring.scores(vector, segment.vectors, segment.biases, repeat)
        calibration = self.bundle.calibration
        offsets: frozenset[int] = frozenset()
        if stats_row is not None:
            scores, chosen = stage_scores(
                stage, stats_row, segment.stage_items, segment.stage_flags, scores
            )
            offsets = frozenset(segment.rows[chosen].tolist())
            calibration = value.IDENTITY
        scores = value.final_scores(scores, calibration, segment.adjustments)
        personalized = best_order(scores, segment.rows, pool, segment.local, local_tail)
        repeat_rows = frozenset(segment.rows[np.flatnonzero(repeat)].tolist())
        return Shortlist(
            personalized, segment.fallback, True, repeat_rows, offsets, CANDIDATE_OFFSET
        )

    def explain(
        self,
        shortlist: Shortlist,
        selection: Selection,
        propensities: dict[int, float],
        language: str | None = None,
    ) -> Ranking:
        """The selected offers with their rank, score (in the order used, without a stage's
        candidate offset: `Shortlist.offset`), reason (in `language`) and propensity (by row;
        a row not in `propensities`: 1.0)."""
        personalized = selection.personalized
        order = shortlist.personalized if personalized else shortlist.fallback
        scores, position = order.scores, order.rows.index
        offer_rows, offers = self.catalog.offer_rows, self.catalog.offers
        repeat_rows, known = shortlist.repeat_rows, shortlist.known_member
        purchase_reasons, cached = selection.purchase_reasons, self._reasons
        offset = shortlist.offset if personalized else 0.0
        offset_rows = shortlist.offset_rows if offset else ()
        ranked = []
        for rank, offer_id in enumerate(selection.offer_ids, start=1):
            row = offer_rows[offer_id]
            repeated = row in repeat_rows
            key = (row, language, personalized, known, repeated, purchase_reasons)
            reason = cached.get(key) or self.reason(
                row,
                language,
                personalized=personalized,
                known_member=known,
                repeated=repeated,
                purchase_reasons=purchase_reasons,
            )
            score = scores[position(row)]
            if row in offset_rows:
                score -= offset
            propensity = propensities.get(row, DETERMINISTIC) if propensities else DETERMINISTIC
            ranked.append(NEW(RankedOffer, (offers[row], rank, score, reason, propensity)))
        return Ranking(personalized, ranked, dict(selection.suppressed))

    def reason(
        self,
        row: int,
        language: str | None,
        *,
        personalized: bool,
        known_member: bool,
        repeated: bool,
        purchase_reasons: bool,
    ) -> str:
        """`offer_reason` of the offer in catalog `row`, in `language` (None, or one without
        templates: the default), cached: a reason depends on nothing else."""
        key = (row, language, personalized, known_member, repeated, purchase_reasons)
        reason = self._reasons.get(key)
        if reason is None:
            if len(self._reasons) >= MAX_CACHED_REASONS:
                self._reasons.clear()
            privacy = self._settings.privacy
            texts = privacy.reasons.get(language or "") or privacy.reasons[privacy.default_language]
            offer = self.catalog.offers[row]
            reason = self._reasons[key] = offer_reason(
                offer,
                personalized=personalized,
                known_member=known_member,
                repeated=repeated,
                texts=texts,
                sensitive=offer.category in self.sensitive,
                purchase_reasons=purchase_reasons,
            )
        return reason
