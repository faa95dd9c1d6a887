"""The second-stage ranker as every scorer runs it: one member's candidates among the offers
eligible to them, their feature rows, the ranker's score.

Candidates (bit flags) among the eligible offers, like `training.candidates`:
    OWN       offers whose item the member bought before the cutoff;
    CF        the `cf_top` best by the first-stage (blend) score;
    POPULAR   the `popular_top` with the most purchases in the last 90 days (> 0);
    REGIONAL  the `regional_top` known items with the highest smoothed share in the region;
    NEW       the `new_top` best sellers (last 90 days) whose item first sold within `new_days`.
POPULAR, REGIONAL and NEW depend only on the eligible offers and the region: a segment's
flags (`segment_flags`) are computed once and shared by its members.

Features of a candidate: `features.ranker_features.pair_features` (the function the offline
ranker uses) from `PurchaseStats` held in memory, then the blend's score and rank among the
eligible offers and the non-own source flags (`SERVED_FEATURES`).

The ranker's logit of a request's candidates comes from tables computed once per stage
(`SecondStage.parts`, `models.stage_parts`): equal to `ranker.predict(candidate_features)`.
A stage with `trees` (`models.tree_ranker`, scaled at fit time) adds their score of the
candidates' feature rows to that logit: the served score of the ensemble.

Order (`member_scores`): candidates first by the ranker's logit (`CANDIDATE_OFFSET` + logit),
then the other eligible offers by the blend's score. Only members with purchases before the
cutoff whom the blend knows are ranked so (`SecondStage.member_row`); every other member gets
the fallback's order (regional popularity), in serving, evaluation and the MLflow model.
numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from perkrank.features.ids import IdMap
from perkrank.features.ranker_features import (
    FEATURE_NAMES,
    WINDOWS_DAYS,
    PurchaseStats,
    pair_features,
)
from perkrank.models import scoring
from perkrank.models.linear_ranker import LinearRanker
from perkrank.models.stage_parts import ScoreParts, score_parts
from perkrank.models.tree_ranker import TreeRanker

OWN, CF, POPULAR, REGIONAL, NEW = 1, 2, 4, 8, 16
SOURCE_FEATURES = {
    "from_cf": CF,
    "from_popular": POPULAR,
    "from_regional": REGIONAL,
    "from_new": NEW,
}
"""Binary feature columns: which non-own sources proposed the candidate."""
SOURCE_BITS = np.array(list(SOURCE_FEATURES.values()), dtype=np.uint8)
SERVED_FEATURES: tuple[str, ...] = (*FEATURE_NAMES, "blend_score", "blend_rank", *SOURCE_FEATURES)
"""Columns of `candidate_features`, the ranker's inputs."""
CANDIDATE_OFFSET = 1e6
"""Added to candidates' logits so that they rank above every non-candidate's blend score."""
RECENT_COLUMN = 1 + WINDOWS_DAYS.index(90)
"""Column of `PurchaseStats.item_counts` holding the last 90 days."""


@dataclass(frozen=True)
class CandidateSizes:
    """How many offers each non-own source adds per member."""

    cf_top: int = 100
    popular_top: int = 50
    regional_top: int = 20
    new_top: int = 20
    new_days: int = 30


@dataclass(frozen=True)
class SecondStage:
    """The ranker, the purchase statistics it reads, the names of their region codes."""

    ranker: LinearRanker
    stats: PurchaseStats
    region_ids: np.ndarray
    """Region name of each code of `stats.member_regions`."""
    sizes: CandidateSizes = CandidateSizes()
    trees: TreeRanker | None = None
    """Added to the linear logit (its leaf values already carry the ensemble weight)."""

    def __post_init__(self) -> None:
        if tuple(self.ranker.feature_names) != SERVED_FEATURES:
            raise ValueError("the ranker's feature names are not those of the second stage")
        if self.trees is not None and tuple(self.trees.feature_names) != SERVED_FEATURES:
            raise ValueError("the trees' feature names are not those of the second stage")

    @cached_property
    def members(self) -> IdMap:
        return IdMap(self.stats.member_ids)

    @cached_property
    def items(self) -> IdMap:
        return IdMap(self.stats.item_ids)

    def member_row(self, member_id: str) -> int | None:
        """The member's row in the statistics if they bought anything before the cutoff."""
        return warm_row(self.stats, self.members, member_id)

    def item_rows(self, item_ids: np.ndarray | list[str]) -> np.ndarray:
        """Rows of items in the statistics (-1: never sold before the cutoff)."""
        return self.items.rows(item_ids)

    def region_code(self, region: str) -> int:
        """The code of a region in the statistics (-1: no member there)."""
        matches = np.flatnonzero(self.region_ids == region)
        return int(matches[0]) if len(matches) else -1

    @cached_property
    def parts(self) -> ScoreParts:
        """The ranker's precomputed logit parts over the statistics (`models.stage_parts`)."""
        return score_parts(self.ranker, self.stats, SOURCE_BITS)

    def segment_flags(self, item_rows: np.ndarray, region: str) -> np.ndarray:
        """`segment_flags` of eligible offers (stats `item_rows`) in `region`."""
        return segment_flags(self.stats, self.sizes, item_rows, self.region_code(region))


def warm_row(stats: PurchaseStats, members: IdMap, member_id: str) -> int | None:
    """The row (in `members`, the map of `stats.member_ids`) of a member with purchases."""
    row = members.get(member_id)
    if row is None or stats.member_purchases[row] == 0:
        return None
    return row


def segment_flags(
    stats: PurchaseStats, sizes: CandidateSizes, item_rows: np.ndarray, region: int
) -> np.ndarray:
    """uint8 POPULAR | REGIONAL | NEW flags of eligible offers (their stats `item_rows`) for
    members of the region with code `region` (-1: none there, no REGIONAL)."""
    flags = np.zeros(len(item_rows), dtype=np.uint8)
    known = item_rows >= 0
    rows = np.maximum(item_rows, 0)
    recent = np.where(known, stats.item_counts[rows, RECENT_COLUMN], 0.0)
    _flag_top(flags, np.where(recent > 0, recent, -np.inf), sizes.popular_top, POPULAR)
    first_age = np.where(known, stats.item_first_age[rows], np.inf)
    new = (first_age <= sizes.new_days) & (recent > 0)
    _flag_top(flags, np.where(new, recent, -np.inf), sizes.new_top, NEW)
    if region >= 0:
        shares = np.where(known, stats.region_shares[region][rows], -np.inf)
        _flag_top(flags, shares, sizes.regional_top, REGIONAL)
    return flags


def member_candidates(
    stats: PurchaseStats,
    sizes: CandidateSizes,
    member_row: int,
    item_rows: np.ndarray,
    flags: np.ndarray,
    blend_scores: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Positions (ascending) of the member's candidates among the eligible offers, and their
    feature rows (`SERVED_FEATURES`). `flags`: `segment_flags` of the same offers."""
    scores = blend_scores[np.newaxis]
    ranks = blend_ranks(scores)
    flags = candidate_flags(stats, sizes, np.array([member_row]), item_rows, flags, scores, ranks)
    chosen = np.flatnonzero(flags[0])
    return chosen, candidate_features(
        stats,
        np.full(len(chosen), member_row),
        item_rows[chosen],
        blend_scores[chosen],
        ranks[0, chosen],
        flags[0, chosen],
    )


def candidate_flags(
    stats: PurchaseStats,
    sizes: CandidateSizes,
    member_rows: np.ndarray,
    item_rows: np.ndarray,
    flags: np.ndarray,
    blend_scores: np.ndarray,
    ranks: np.ndarray,
) -> np.ndarray:
    """uint8 (members × offers): the segment's `flags` plus CF (each row's `cf_top` best
    finite `blend_scores`, members × offers, by their `blend_ranks` `ranks`) and OWN, for
    members (stats rows) of one segment."""
    result = np.repeat(flags[np.newaxis], len(member_rows), axis=0)
    result[(ranks <= sizes.cf_top) & np.isfinite(blend_scores)] |= CF
    result[bought(stats, member_rows, item_rows)] |= OWN
    return result


def bought(stats: PurchaseStats, member_rows: np.ndarray, item_rows: np.ndarray) -> np.ndarray:
    """Bool (members × items): the member (stats row) bought the item (stats row; -1: no)."""
    keys = member_rows[:, np.newaxis] * len(stats.item_ids) + item_rows[np.newaxis, :]
    if len(stats.pair_keys) == 0:
        return np.zeros(keys.shape, dtype=bool)
    at = np.minimum(np.searchsorted(stats.pair_keys, keys), len(stats.pair_keys) - 1)
    return (stats.pair_keys[at] == keys) & (item_rows >= 0)


def candidate_features(
    stats: PurchaseStats,
    member_rows: np.ndarray,
    items: np.ndarray,
    blend_scores: np.ndarray,
    ranks: np.ndarray,
    flags: np.ndarray,
) -> np.ndarray:
    """float64 (candidates × SERVED_FEATURES) of candidates given one entry each: member and
    item stats rows, blend score, blend rank among the member's eligible offers, flags."""
    columns = [
        pair_features(stats, member_rows, items),
        blend_scores.astype(np.float64)[:, np.newaxis],
        np.asarray(ranks, dtype=np.float64)[:, np.newaxis],
        (flags[:, np.newaxis] & SOURCE_BITS) > 0,
    ]
    return np.hstack(columns).astype(np.float64, copy=False)


def member_scores(
    stage: SecondStage,
    member_row: int,
    item_rows: np.ndarray,
    flags: np.ndarray,
    blend_scores: np.ndarray,
) -> np.ndarray:
    """float64 scores of the eligible offers: candidates by `CANDIDATE_OFFSET` + the ranker's
    logit (plus the trees' score), the others by their blend score (see the module
    docstring); `stage_scores` also says which offers are candidates."""
    return stage_scores(stage, member_row, item_rows, flags, blend_scores)[0]


def stage_scores(
    stage: SecondStage,
    member_row: int,
    item_rows: np.ndarray,
    flags: np.ndarray,
    blend_scores: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """`member_scores`, and the positions (ascending) of the candidates among them. The logit
    comes from `SecondStage.parts`: equal to `ranker.predict` of `candidate_features`. Served
    per request: `candidate_flags` and `blend_ranks` of one member, computed on one row
    (`row_ranks`, `member_pairs`)."""
    stats = stage.stats
    ranks = row_ranks(blend_scores)
    pairs = member_pairs(stats, member_row, item_rows)
    flags = flags | np.where(pairs >= 0, np.uint8(OWN), np.uint8(0))
    top = ranks <= stage.sizes.cf_top
    if not np.isfinite(blend_scores).all():
        top &= np.isfinite(blend_scores)
    flags[top] |= CF
    chosen = np.flatnonzero(flags)
    logits = stage.parts.logits(
        member_row,
        int(stats.member_regions[member_row]),
        item_rows[chosen],
        pairs[chosen],
        flags[chosen],
        blend_scores[chosen],
        ranks[chosen],
    )
    if stage.trees is not None:
        rows = candidate_features(
            stats,
            np.full(len(chosen), member_row),
            item_rows[chosen],
            blend_scores[chosen],
            ranks[chosen],
            flags[chosen],
        )
        logits = logits + stage.trees.predict(rows)
    result = blend_scores.astype(np.float64)
    result[chosen] = CANDIDATE_OFFSET + logits
    return result, chosen


def row_ranks(scores: np.ndarray) -> np.ndarray:
    """`blend_ranks` of one row (1-D `scores`), without a stable sort: float32 scores
    (serving's) by one sort of keys that pack each score's order with its position, others
    by an unstable sort with tied scores put back in position order (a stable sort only with
    NaNs)."""
    if scores.dtype == np.float32 and len(scores) < 2**32:
        return _packed_ranks(scores)
    negated = -scores
    order = np.argsort(negated)
    ordered = negated[order]
    if len(ordered) and np.isnan(ordered[-1]):  # NaNs sort last, in no particular order
        order = np.argsort(negated, kind="stable")
    else:
        ties = ordered[1:] == ordered[:-1]
        if ties.any():  # within each run of equal scores, lower positions first
            runs = np.concatenate(([0], np.cumsum(~ties)))
            keys = runs * len(order) + order
            keys.sort()
            order = keys % len(order)
    return _ranks_of(order)


def _packed_ranks(scores: np.ndarray) -> np.ndarray:
    """`row_ranks` of float32 scores: each negated score's bits mapped to an int32 that sorts
    as the floats do (-0.0 counted as 0.0), above its position in an int64, one sort."""
    negated = -scores + np.float32(0.0)  # -0.0 + 0.0 is 0.0: ties with 0.0
    if np.isnan(negated).any():  # NaNs rank last, in position order
        return _ranks_of(np.argsort(negated, kind="stable"))
    bits = negated.view(np.int32)
    keys = (bits ^ ((bits >> 31) & 0x7FFFFFFF)).astype(np.int64) << 32
    keys |= np.arange(len(scores))
    keys.sort()
    return _ranks_of(keys & 0xFFFFFFFF)


def _ranks_of(order: np.ndarray) -> np.ndarray:
    """float64 rank (1 = first) of each position, from the positions in rank order."""
    ranks = np.empty(len(order))
    ranks[order] = np.arange(1.0, len(order) + 1)
    return ranks


def member_pairs(stats: PurchaseStats, member_row: int, item_rows: np.ndarray) -> np.ndarray:
    """Position in `stats.pair_keys` of the member's (stats row) pair with each item (stats
    row; -1: never bought): the member's pairs are one run of the sorted pair keys."""
    n_items = len(stats.item_ids)
    first = member_row * n_items
    start, end = stats.pair_keys.searchsorted((first, first + n_items))
    positions = np.full(n_items + 1, -1, dtype=np.intp)  # last slot: item row -1
    positions[stats.pair_keys[start:end] - first] = np.arange(start, end)
    return positions[item_rows]


def member_bought(stats: PurchaseStats, member_row: int, item_rows: np.ndarray) -> np.ndarray:
    """`bought` of one member (stats row)."""
    return member_pairs(stats, member_row, item_rows) >= 0


def blend_ranks(scores: np.ndarray) -> np.ndarray:
    """float64 (members × offers): rank (1 = highest) of each score in its row, ties to the
    lower position (a stable sort of the negated scores)."""
    order = np.argsort(-scores, axis=1, kind="stable")
    ranks = np.empty(scores.shape)
    np.put_along_axis(ranks, order, np.arange(1.0, scores.shape[1] + 1), axis=1)
    return ranks


def _flag_top(flags: np.ndarray, scores: np.ndarray, k: int, flag: int) -> None:
    """Set `flag` on the k best finite `scores` (ties to the lower position), in place."""
    if k <= 0 or len(scores) == 0:
        return
    top = scoring.best(scores, k)
    flags[top[np.isfinite(scores[top])]] |= flag
