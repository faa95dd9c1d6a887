"""The linear ranker's logit of a member's candidates, split into precomputed parts.

The ranker transforms each feature on its own (`models.linear_ranker`), so its logit is the
bias plus a sum of per-column contributions. Most columns do not depend on the pair:
    member      member columns, and the own columns of a pair never bought (`MEMBER`, `OWN`);
    category    `own_category_share`: the member and the item's category;
    item        item columns and `regional_share`: the item and the member's region;
    own         own columns of a pair bought before the cutoff, minus those of one never bought;
    blend       the blend's score and rank among the eligible offers (per request);
    sources     the source flags (a table over the flag values).
`score_parts` computes the first four tables once per stage, every value through
`pair_features` (the features the ranker was fitted on), for each member × category, each
region × item, and each bought pair. The blend columns' share is affine in their transformed
values (sign(x)·log1p(|x|)), so its constant goes into the member table and a request adds
two products. A request then does a few gathers: `ScoreParts.logits` equals `ranker.predict`
of `candidate_features` (tested). numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perkrank.features.ranker_features import FEATURE_NAMES, PurchaseStats, pair_features
from perkrank.models.linear_ranker import LinearRanker

OWN = (
    "own_count",
    "own_count_30d",
    "own_count_90d",
    "own_count_365d",
    "own_days",
    "own_share",
    "days_since_own",
    "since_own_over_own_gap",
    "since_own_over_member_gap",
    "since_own_over_item_gap",
)
CATEGORY = ("own_category_share",)
ITEM = (
    "item_count",
    "item_count_30d",
    "item_count_90d",
    "item_count_365d",
    "item_trend",
    "item_buyers",
    "item_repurchase_rate",
    "item_gap",
    "item_age_days",
    "regional_share",
)
MEMBER = (
    "member_purchases",
    "member_days",
    "member_items",
    "member_tenure_days",
    "member_gap",
    "days_since_visit",
    "since_visit_over_member_gap",
)
BLEND = ("blend_score", "blend_rank")
CHUNK_ROWS = 200_000
"""Pairs per `pair_features` call while the tables are built (bounds the memory)."""


@dataclass(frozen=True)
class ScoreParts:
    """Precomputed shares of the logit (see the module docstring)."""

    ranker: LinearRanker
    member_table: np.ndarray
    """(members, categories + 1): bias, member, never-bought own and category columns by
    the item's category slot (last: an unknown item), plus the blend columns' share at 0."""
    item_slots: np.ndarray
    """Category slot of each item row, then of row -1 (unknown)."""
    item_table: np.ndarray
    """(regions, items + 1): item and regional columns (last: an unknown item)."""
    own_deltas: np.ndarray
    """Per bought pair (`PurchaseStats.pair_keys`): own columns minus a never-bought pair's;
    then a 0 (position -1: a pair never bought)."""
    source_table: np.ndarray
    """Source columns' contribution of each candidate flag value."""
    blend_columns: tuple[int, ...]
    blend_weights: tuple[float, float]
    """Share of one transformed unit of the blend score, of the blend rank."""

    def logits(
        self,
        member_row: int,
        region: int,
        items: np.ndarray,
        pairs: np.ndarray,
        flags: np.ndarray,
        blend_scores: np.ndarray,
        blend_ranks: np.ndarray,
    ) -> np.ndarray:
        """The ranker's logit of the member's candidates (their stats item rows `items`,
        positions `pairs` of the member's pairs in `pair_keys` (-1: never bought), flags,
        blend scores and ranks); `region`: the member's region code in the stats."""
        scores = blend_scores.astype(np.float64)
        logged = np.log1p(np.abs(scores))
        np.copysign(logged, scores, out=logged)
        if not np.isfinite(logged.sum()):  # NaN or ±inf: the ranker's own transform
            blend = self.ranker.contributions(
                np.column_stack([scores, blend_ranks]), self.blend_columns
            ) - self.ranker.contributions(np.zeros((1, 2)), self.blend_columns)
        else:  # ranks are ≥ 1: their transform is log1p
            score_weight, rank_weight = self.blend_weights
            blend = logged * score_weight + np.log1p(blend_ranks) * rank_weight
        return (
            self.member_table[member_row][self.item_slots[items]]
            + self.item_table[region][items]
            + self.own_deltas[pairs]
            + self.source_table[flags]
            + blend
        )


def score_parts(ranker: LinearRanker, stats: PurchaseStats, source_bits: np.ndarray) -> ScoreParts:
    """The tables of `ScoreParts` for `ranker` over `stats`; `source_bits`: the flag bit of
    each source column, in the ranker's order after `BLEND`."""
    names = list(ranker.feature_names)
    columns = {name: names.index(name) for name in names}
    n_members, n_items = len(stats.member_ids), len(stats.item_ids)

    def share(values: np.ndarray, group: tuple[str, ...]) -> np.ndarray:
        positions = [FEATURE_NAMES.index(name) for name in group]
        return ranker.contributions(values[:, positions], [columns[name] for name in group])

    members = np.arange(n_members)
    unknown = pair_features(stats, members, np.full(n_members, -1))
    blend_columns = [columns[name] for name in BLEND]
    blend_zero = ranker.contributions(np.zeros((1, len(BLEND))), blend_columns)[0]
    base = ranker.bias + share(unknown, MEMBER + OWN) + blend_zero
    n_categories = stats.item_categories.max(initial=-1) + 1
    examples = [np.flatnonzero(stats.item_categories == c)[0] for c in range(n_categories)]
    member_table = np.column_stack(
        [
            *(
                base + share(pair_features(stats, members, np.full(n_members, i)), CATEGORY)
                for i in examples
            ),
            base + share(unknown, CATEGORY),
        ]
    ).reshape(n_members, n_categories + 1)
    codes = stats.item_categories
    item_slots = np.r_[np.where(codes < 0, n_categories - 1, codes), n_categories]
    regions, representatives = np.unique(stats.member_regions, return_index=True)
    all_items = np.r_[np.arange(n_items), -1]
    item_table = np.vstack(
        [np.zeros((0, n_items + 1))]
        + [
            share(pair_features(stats, np.full(n_items + 1, member), all_items), ITEM)
            for region, member in zip(regions, representatives, strict=True)
            if region >= 0
        ]
    )

    def own_deltas(keys: np.ndarray) -> np.ndarray:
        pair_members, pair_items = np.divmod(keys, n_items)
        bought = share(pair_features(stats, pair_members, pair_items), OWN)
        return bought - share(unknown[pair_members], OWN)

    own = [
        *(
            own_deltas(stats.pair_keys[start : start + CHUNK_ROWS])
            for start in range(0, len(stats.pair_keys), CHUNK_ROWS)
        ),
        np.zeros(1),
    ]
    flag_values = np.arange(2 * int(source_bits.max()))
    sources = ((flag_values[:, np.newaxis] & source_bits) > 0).astype(np.float64)
    source_columns = names[len(FEATURE_NAMES) + len(BLEND) :]
    return ScoreParts(
        ranker=ranker,
        member_table=member_table,
        item_slots=item_slots,
        item_table=item_table,
        own_deltas=np.concatenate(own),
        source_table=ranker.contributions(sources, [columns[n] for n in source_columns]),
        blend_columns=tuple(blend_columns),
        blend_weights=(
            float(ranker.weights[blend_columns[0]] / ranker.scales[blend_columns[0]]),
            float(ranker.weights[blend_columns[1]] / ranker.scales[blend_columns[1]]),
        ),
    )
