"""Ranking metrics of one slice's members, from ranked relevance flags.

Definitions (per member, then averaged over the members of a slice by `training.evaluation`):
    precision@k = relevant in top-k / k;  recall@k = relevant in top-k / |relevant|;
    ndcg@k = DCG@k / ideal DCG over min(k, |relevant|) relevant offers (binary relevance,
    gain 1 / log2(position + 1));  map@k = Σ precision@i over relevant positions i ≤ k,
    divided by min(k, |relevant|);  hit_rate@k = 1 if any relevant offer is in the top-k;
    coverage@k = distinct offers in any member's top-k / distinct candidate offers of the
    slice's members (one value per slice, not an average);  local_share@k = offers of local
    partners in the top-k / offers in the top-k (0 for a member with none).
Positions past a member's last candidate count as misses.
"""

import numpy as np

METRICS = ("precision", "recall", "ndcg", "map", "hit_rate", "coverage", "local_share")


def precision_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    """Per member (row of ranked relevance flags): relevant offers in the top-k / k."""
    return hits[:, :k].sum(axis=1) / k


def recall_at_k(hits: np.ndarray, relevant_counts: np.ndarray, k: int) -> np.ndarray:
    """Per member: relevant offers in the top-k / all relevant offers (counts ≥ 1)."""
    return hits[:, :k].sum(axis=1) / relevant_counts


def ndcg_at_k(hits: np.ndarray, relevant_counts: np.ndarray, k: int) -> np.ndarray:
    """Per member: binary-relevance DCG@k over the ideal DCG of min(k, |relevant|) offers."""
    top = hits[:, :k]
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = top @ discounts[: top.shape[1]]
    ideal = np.cumsum(discounts)[np.minimum(relevant_counts, k) - 1]
    return dcg / ideal


def average_precision_at_k(hits: np.ndarray, relevant_counts: np.ndarray, k: int) -> np.ndarray:
    """Per member: Σ precision@i at relevant positions i ≤ k, over min(k, |relevant|)."""
    top = hits[:, :k]
    precisions = np.cumsum(top, axis=1) / np.arange(1, top.shape[1] + 1)
    return (precisions * top).sum(axis=1) / np.minimum(relevant_counts, k)


def hit_rate_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    """Per member: 1.0 if any relevant offer is in the top-k, else 0.0."""
    return hits[:, :k].any(axis=1).astype(np.float64)


def catalog_coverage(top_offer_rows: np.ndarray, k: int, candidate_offers: int) -> float:
    """Distinct offers in any top-k (rows of offer rows, -1 = empty) / distinct candidates."""
    shown = np.unique(top_offer_rows[:, :k])
    return float(np.count_nonzero(shown >= 0) / candidate_offers)


def local_share_at_k(top_offer_rows: np.ndarray, k: int, is_local: np.ndarray) -> np.ndarray:
    """Per member (rows of offer rows, -1 = empty): local offers in the top-k / offers there;
    `is_local` by offer row."""
    top = top_offer_rows[:, :k]
    shown = top >= 0
    local = shown & is_local[np.where(shown, top, 0)]
    return local.sum(axis=1) / np.maximum(shown.sum(axis=1), 1)
