"""Regional popularity: the non-personalized ranking of items per segment (region × tier).

One dimension per segment, one per region and one global dimension; an item's value in each
is its share of the purchases made there. A segment's shares are smoothed towards its
region's, a region's towards the global ones, so small segments borrow from larger ones.
A known member is the one-hot of its segment. Feature vectors telescope so that a member
known only by its features gets the finest level the model knows: `segment=s` → e_s −
e_region(s), `region=r` → e_r − e_global, `tier=t` → e_global; for a known segment they sum
to e_s, for a new segment of a known region to e_region, for an unknown region to e_global.
"""

import numpy as np
import scipy.sparse as sp

from perkrank.features.schema import TIERS
from perkrank.features.training_data import TrainingData
from perkrank.features.vocabulary import ITEM_SEPARATOR, member_feature_names
from perkrank.models.factors import Factors

PRIOR_WEIGHT = 20.0
"""How many (decayed) purchases the parent level's shares count for in a segment or region."""


def fit_popularity(data: TrainingData, *, prior_weight: float = PRIOR_WEIGHT) -> Factors:
    """Popularity per segment, backed off to region and global.

    Parameters
    ----------
    data:
        Training members × items; `purchase_counts` and `member_segments` are used.
    prior_weight:
        Additive smoothing: shares = (purchases + prior_weight · parent shares) /
        (total + prior_weight), so a segment with far fewer purchases ranks like its region.

    Returns
    -------
    Factors whose score is the item's smoothed share of purchases in the member's segment
    (comparable across segments: each segment's shares sum to 1). Unseen items score 0.
    """
    segment_ids, member_segment_rows = np.unique(
        np.asarray(data.member_segments, dtype=str), return_inverse=True
    )
    segment_regions = np.array([segment.rpartition(ITEM_SEPARATOR)[0] for segment in segment_ids])
    region_ids, segment_region_rows = np.unique(segment_regions, return_inverse=True)

    segment_counts = _group_sum(data.purchase_counts, member_segment_rows, len(segment_ids))
    region_counts = _group_sum(segment_counts, segment_region_rows, len(region_ids))
    global_counts = region_counts.sum(axis=0, keepdims=True)
    global_shares = global_counts / max(global_counts.sum(), np.finfo(np.float64).tiny)
    region_shares = _smoothed_shares(region_counts, global_shares, prior_weight)
    segment_shares = _smoothed_shares(
        segment_counts, region_shares[segment_region_rows], prior_weight
    )

    segment_count, region_count = len(segment_ids), len(region_ids)
    unit = np.eye(segment_count + region_count + 1, dtype=np.float32)
    global_vector = unit[-1]
    feature_vectors: dict[str, np.ndarray] = {}
    for segment_row, segment in enumerate(segment_ids):
        region, _, tier = segment.rpartition(ITEM_SEPARATOR)
        region_vector = unit[segment_count + segment_region_rows[segment_row]]
        region_feature, _, segment_feature = member_feature_names(region, tier)
        feature_vectors[segment_feature] = unit[segment_row] - region_vector
        feature_vectors[region_feature] = region_vector - global_vector
    for tier in TIERS:
        _, tier_feature, _ = member_feature_names("", tier)
        feature_vectors[tier_feature] = global_vector

    return Factors(
        member_ids=data.member_ids,
        member_vectors=unit[member_segment_rows],
        item_ids=data.item_ids,
        item_vectors=np.hstack([segment_shares.T, region_shares.T, global_shares.T]),
        item_biases=np.zeros(len(data.item_ids), dtype=np.float32),
        member_feature_ids=np.array(list(feature_vectors), dtype=str),
        member_feature_vectors=np.array(list(feature_vectors.values()), dtype=np.float32),
        name="regional_popularity",
    )


def _group_sum(
    counts: sp.spmatrix | np.ndarray, group_of_row: np.ndarray, groups: int
) -> np.ndarray:
    """Dense (groups × columns) sums of the rows of `counts` per group."""
    indicator = sp.csr_matrix(
        (np.ones(len(group_of_row)), (group_of_row, np.arange(len(group_of_row)))),
        shape=(groups, len(group_of_row)),
    )
    return (indicator @ sp.csr_matrix(counts, dtype=np.float64)).toarray()


def _smoothed_shares(
    counts: np.ndarray, parent_shares: np.ndarray, prior_weight: float
) -> np.ndarray:
    """Each row's (counts + prior_weight · parent shares) / (row total + prior_weight)."""
    totals = counts.sum(axis=1, keepdims=True) + prior_weight
    smoothed = counts + prior_weight * parent_shares
    return np.divide(smoothed, totals, out=np.zeros_like(smoothed), where=totals > 0)


def fit_global_popularity(data: TrainingData) -> Factors:
    """Non-personalized popularity: every member scores an item by its share of all purchases."""
    counts = np.asarray(data.purchase_counts.sum(axis=0), dtype=np.float64).ravel()
    shares = counts / max(counts.sum(), np.finfo(np.float64).tiny)
    return Factors(
        member_ids=data.member_ids,
        member_vectors=np.zeros((len(data.member_ids), 0), dtype=np.float32),
        item_ids=data.item_ids,
        item_vectors=np.zeros((len(data.item_ids), 0), dtype=np.float32),
        item_biases=shares.astype(np.float32),
        name="popularity",
    )
