"""Second stage of the two-stage ranker: feature rows of a window's candidates, their labels,
and the full-catalogue ranking a learned score gives.

Point in time: every feature comes from `PurchaseStats` of the history before the window's
start and from CF models fitted before it; labels are the window's relevant offers. Fitting a
ranker on the validation window and scoring the test window therefore never shows a ranker a
feature computed after the purchases it is asked to predict.

Full-catalogue order: candidates first, by the ranker's score; then every other eligible
offer by global popularity (all purchases before the cutoff). The same fill orders the
`own+pop` baseline: the member's raw purchase count of the item, ties and the rest by
global popularity.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from perkrank.features.ranker_features import FEATURE_NAMES, PurchaseStats, pair_features
from perkrank.training.candidates import CF, NEW, POPULAR, REGIONAL, stats_rows
from perkrank.training.evaluation import ScoreBatch
from perkrank.training.window import EvaluationWindow

SOURCE_FEATURES = {
    "from_cf": CF,
    "from_popular": POPULAR,
    "from_regional": REGIONAL,
    "from_new": NEW,
}
"""Binary columns: which non-own sources proposed the candidate."""
CANDIDATE_OFFSET = 1e6
"""Added to candidates' scores so that they rank above every non-candidate (scores < 1)."""


@dataclass(frozen=True)
class RankingFrame:
    """One row per (member, candidate offer), rows grouped by member in ascending order."""

    member_rows: np.ndarray
    """Window member rows."""
    offer_rows: np.ndarray
    """Window offer rows."""
    features: np.ndarray
    labels: np.ndarray
    """1.0 where the offer is relevant to the member in the window."""
    feature_names: tuple[str, ...]

    def group_sizes(self, members: int) -> np.ndarray:
        """Rows per member with at least one candidate, in member order (LightGBM's `group`)."""
        sizes = np.bincount(self.member_rows, minlength=members)
        return sizes[sizes > 0]


def frame_feature_names(cf_names: tuple[str, ...]) -> tuple[str, ...]:
    """Columns of `build_frame`: pair features, each CF model's score and rank, sources."""
    cf = tuple(f"{name}_{part}" for name in cf_names for part in ("score", "rank"))
    return (*FEATURE_NAMES, *cf, *SOURCE_FEATURES)


def build_frame(
    window: EvaluationWindow,
    stats: PurchaseStats,
    sources: np.ndarray,
    cf_scores: Mapping[str, np.ndarray],
) -> RankingFrame:
    """Features and labels of every candidate in `sources` (see `candidates.generate`)."""
    member_rows, offer_rows = np.nonzero(sources)
    stats_members, stats_items = stats_rows(stats, window)
    columns = [pair_features(stats, stats_members[member_rows], stats_items[offer_rows])]
    for scores in cf_scores.values():
        columns.append(scores[member_rows, offer_rows].astype(np.float64)[:, np.newaxis])
        columns.append(score_ranks(scores)[member_rows, offer_rows][:, np.newaxis])
    flags = sources[member_rows, offer_rows]
    columns.append(np.column_stack([(flags & flag) > 0 for flag in SOURCE_FEATURES.values()]))
    labels = np.asarray(window.relevant[member_rows, offer_rows]).ravel().astype(np.float64)
    return RankingFrame(
        member_rows=member_rows,
        offer_rows=offer_rows,
        features=np.hstack(columns).astype(np.float64),
        labels=labels,
        feature_names=frame_feature_names(tuple(cf_scores)),
    )


def score_ranks(scores: np.ndarray) -> np.ndarray:
    """float (same shape): each column's rank in its row, 1 = highest, ties to the lower column."""
    order = np.argsort(-scores, axis=1, kind="stable")
    ranks = np.empty(scores.shape, dtype=np.float64)
    positions = np.broadcast_to(np.arange(1, scores.shape[1] + 1, dtype=np.float64), scores.shape)
    np.put_along_axis(ranks, order, positions, axis=1)
    return ranks


def popularity_fill(window: EvaluationWindow, stats: PurchaseStats) -> np.ndarray:
    """Per window offer, its purchases before the cutoff scaled into [0, 1)."""
    _, item_rows = stats_rows(stats, window)
    counts = np.where(item_rows >= 0, stats.item_counts[np.maximum(item_rows, 0), 0], 0.0)
    return counts / (counts.max(initial=0.0) + 1.0)


def candidate_score_batch(
    window: EvaluationWindow, frame: RankingFrame, pair_scores: np.ndarray, stats: PurchaseStats
) -> ScoreBatch:
    """Scores for `evaluation.rank_scores`: candidates by `pair_scores`, the rest by popularity."""
    dense = np.tile(popularity_fill(window, stats), (len(window.member_ids), 1))
    dense[frame.member_rows, frame.offer_rows] = CANDIDATE_OFFSET + pair_scores
    return lambda rows, offers: dense[np.ix_(rows, offers)]


def own_plus_popularity(window: EvaluationWindow, stats: PurchaseStats) -> ScoreBatch:
    """Scores of `own+pop`: own raw purchase count + popularity in [0, 1)."""
    dense = np.tile(popularity_fill(window, stats), (len(window.member_ids), 1))
    stats_members, stats_items = stats_rows(stats, window)
    rows, offers = window.bought_before.nonzero()
    own = pair_features(stats, stats_members[rows], stats_items[offers])
    dense[rows, offers] += own[:, FEATURE_NAMES.index("own_count")]
    return lambda member_rows, offer_rows: dense[np.ix_(member_rows, offer_rows)]
