"""Segments: what every member of one region, tier, tenure bucket, exclusive tier and set of
occasions shares on one day — the eligible offers, their cold and fallback orders, the
second stage's member-independent candidates, and the value and lever terms — built once and
cached for every request there (`OfferRanker` asks for them)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from perkrank.config import ServeConfig
from perkrank.features.vocabulary import (
    cold_member_feature_names,
    item_id,
    member_feature_names,
    tenure_feature_after,
)
from perkrank.lever_config import Lever
from perkrank.models import scoring, value
from perkrank.models.bundle import Bundle
from perkrank.serving.domain.catalog import Catalog
from perkrank.serving.domain.levers import adjustments_of
from perkrank.serving.domain.local_partners import best_with_locals
from perkrank.serving.domain.mechanics import occasion_boosts
from perkrank.serving.domain.ranking_values import Order, Segment

REGION_FEATURE = "region="
"""How `vocabulary.member_feature_names` names a member's region feature."""
MAX_CACHED_SEGMENTS = 4096
"""Region × tier × day × tenure bucket entries kept before the cache starts over."""


class Segments:
    """The segments of one bundle, catalog and set of levers, built on demand and cached."""

    def __init__(
        self,
        bundle: Bundle,
        catalog: Catalog,
        settings: ServeConfig,
        levers: Sequence[Lever],
        max_pool: int,
    ) -> None:
        self.bundle = bundle
        self.catalog = catalog
        self.settings = settings
        self.max_pool = max_pool
        self.levers = tuple(levers)
        net = np.array([offer.net_value for offer in catalog.offers], dtype=np.float64)
        self._value_terms = value.value_terms(net, settings.value_weight)
        self._cache: dict[tuple[str | None, str, int, str, str, frozenset[str]], Segment] = {}
        self._inputs: dict[tuple, tuple[str, str, int, int, str, frozenset[str]]] = {}
        """What each cached segment was built from (`warm_like` builds the same ones)."""
        self._known_regions = set(catalog.region_masks) | _model_regions(bundle)
        self.local = np.array([candidate.local for candidate in catalog.candidates], bool)
        """By catalog row: the offer's partner is local."""
        self._offer_prior = scoring.offer_prior(
            bundle.offer_rates, [offer.offer_id for offer in catalog.offers]
        )
        self._stage_items = None
        if bundle.second_stage is not None:
            self._stage_items = bundle.second_stage.item_rows(
                [item_id(offer.partner_id, offer.category) for offer in catalog.offers]
            )
            _ = bundle.second_stage.parts  # the logit tables: built at load, not per request

    def get(
        self,
        region: str,
        tier: str,
        day: int,
        tenure_days: int = 0,
        exclusive: str | None = None,
        occasions: frozenset[str] = frozenset(),
    ) -> Segment:
        """The eligible offers and shared orders of a region, tier, day, the tenure bucket of
        `tenure_days`, the tier exclusive offers are open to (None: `tier`) and the member's
        occasions (cached)."""
        # Regions neither the catalog nor the models name all rank alike: one cache entry.
        region_key = region if region in self._known_regions else None
        exclusive = exclusive or tier
        key = (region_key, tier, day, tenure_feature_after(tenure_days), exclusive, occasions)
        segment = self._cache.get(key)
        if segment is None:
            if len(self._cache) >= MAX_CACHED_SEGMENTS:
                self._cache.clear()
                self._inputs.clear()
            segment = self.build(
                region, tier, day, tenure_days, self.max_pool, exclusive, occasions
            )
            self._cache[key] = segment
            self._inputs[key] = (region, tier, day, tenure_days, exclusive, occasions)
        return segment

    def warm_like(self, other: Segments) -> int:
        """Build the segments `other` has cached, so that requests after a swap from `other`'s
        ranker to this one find them built; run before the swap, off the event loop. Returns
        how many were built."""
        inputs = list(other._inputs.values())
        for region, tier, day, tenure_days, exclusive, occasions in inputs:
            self.get(region, tier, day, tenure_days, exclusive, occasions)
        return len(inputs)

    def build(
        self,
        region: str,
        tier: str,
        day: int,
        tenure_days: int,
        pool: int,
        exclusive: str,
        occasions: frozenset[str],
    ) -> Segment:
        """A segment of these with orders of `pool` offers (uncached)."""
        rows = np.flatnonzero(self.catalog.eligible(region, tier, day, exclusive, occasions))
        local = self.local[rows]
        ranker, fallback = self.catalog.ranker, self.catalog.fallback
        boost = self.settings.mechanics.occasions.boost
        boosts = occasion_boosts(self.catalog, rows, boost, ranker.biases.dtype)
        cold_vector = scoring.member_vector(
            self.bundle.ranker, None, cold_member_feature_names(region, tier, tenure_days)
        )
        segment_vector = scoring.member_vector(
            self.bundle.fallback, None, member_feature_names(region, tier)
        )
        biases = ranker.biases[rows] + boosts + self._offer_prior[rows]
        vectors = ranker.vectors[rows]
        adjustments = adjustments_of(self._value_terms, self.levers, self.catalog.offers, rows, day)
        cold_scores = value.final_scores(
            scoring.scores(cold_vector, vectors, biases), self.bundle.calibration, adjustments
        )
        fallback_scores = value.final_scores(
            scoring.scores(segment_vector, fallback.vectors[rows], fallback.biases[rows] + boosts),
            value.IDENTITY,
            adjustments,
        )
        stage_items = stage_flags = None
        if self.bundle.second_stage is not None:
            stage_items = self._stage_items[rows]
            stage_flags = self.bundle.second_stage.segment_flags(stage_items, region)
        return Segment(
            rows=rows,
            vectors=vectors,
            biases=biases,
            item_rows=ranker.item_rows[rows],
            cold=best_order(cold_scores, rows, pool, local, pool),
            fallback=best_order(fallback_scores, rows, pool, local, pool),
            local=local,
            stage_items=stage_items,
            stage_flags=stage_flags,
            adjustments=adjustments,
        )


def _model_regions(bundle: Bundle) -> set[str]:
    """Regions the ranker or the fallback has a feature vector for."""
    names = {
        *bundle.ranker.member_feature_ids.tolist(),
        *bundle.fallback.member_feature_ids.tolist(),
    }
    return {name.removeprefix(REGION_FEATURE) for name in names if name.startswith(REGION_FEATURE)}


def best_order(
    scores: np.ndarray, rows: np.ndarray, count: int, local: np.ndarray | None = None, tail: int = 0
) -> Order:
    """The `count` best of `rows` (ascending) by `scores` (aligned with `rows`), best first;
    ties by row (`scoring.best`); then `tail` local rows (`best_with_locals`)."""
    positions = best_with_locals(scores, count, local, tail)
    return Order(rows[positions].tolist(), scores[positions].tolist())
