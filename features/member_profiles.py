"""Members' purchase profiles and their neighbours' averaged profile (TIFU-KNN style).

After Hu et al. 2020, "Modeling Personalized Item Frequency Information for Next-basket
Recommendation": a member's purchases are grouped into baskets (one per purchase day); the
profile weighs basket j back from the latest by `BASKET_DECAY`**j and divides by the weights'
sum, so an item bought in every basket scores 1. A member's neighbours are the `NEIGHBOURS`
members (of a pool of the `NEIGHBOUR_POOL` with the most baskets) whose profiles are closest by
cosine; the neighbour score of an item is the mean of their profiles (an item bought by none of
them: 0). Per member only the `NEIGHBOUR_TOP` best items are kept, as sorted pair keys
member_row · n_items + item_row with their scores: what a server holds in memory. numpy/scipy.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

BASKET_DECAY = 0.9
NEIGHBOURS = 100
NEIGHBOUR_POOL = 1_000
NEIGHBOUR_TOP = 30
BLOCK_CELLS = 2**22
"""Members × (pool or items) cells of one block's dense similarity and score arrays."""


def basket_profiles(
    member_rows: np.ndarray, item_rows: np.ndarray, ages: np.ndarray, n_members: int, n_items: int
) -> tuple[sp.csr_matrix, np.ndarray]:
    """csr (members × items) profiles of purchases (member, item, age in days), and each
    member's number of baskets (distinct purchase days)."""
    ages = np.asarray(ages, dtype=np.int64)
    span = int(ages.max()) + 1 if len(ages) else 1
    baskets = _unique(np.asarray(member_rows, dtype=np.int64) * span + ages)
    basket_members = baskets // span
    starts = np.flatnonzero(np.r_[True, basket_members[1:] != basket_members[:-1]])
    counts = np.bincount(basket_members, minlength=n_members)
    # baskets sort by member, then by age: the latest first, so j is the offset in the run
    index = np.arange(len(baskets)) - np.repeat(starts, np.diff(np.r_[starts, len(baskets)]))
    weights = BASKET_DECAY ** index.astype(np.float64)
    totals = np.bincount(basket_members, weights=weights, minlength=n_members)
    keys = _unique(
        (np.asarray(member_rows, dtype=np.int64) * span + ages) * n_items + np.asarray(item_rows)
    )
    basket_of = np.searchsorted(baskets, keys // n_items)
    members = basket_members[basket_of]
    profiles = sp.csr_matrix(
        (weights[basket_of] / totals[members], (members, keys % n_items)),
        shape=(n_members, n_items),
    )
    profiles.sum_duplicates()
    return profiles, counts


def neighbour_scores(profiles: sp.csr_matrix, baskets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted pair keys (member_row · n_items + item_row) of each member's `NEIGHBOUR_TOP`
    best neighbour scores (> 0), and those scores; `baskets`: each member's basket count."""
    n_members, n_items = profiles.shape
    norms = np.sqrt(np.asarray(profiles.multiply(profiles).sum(axis=1)).ravel())
    unit = sp.diags(np.divide(1.0, norms, out=np.zeros(n_members), where=norms > 0)) @ profiles
    pool = np.sort(np.argsort(-baskets, kind="stable")[:NEIGHBOUR_POOL])
    pool = pool[norms[pool] > 0]
    k = min(NEIGHBOURS, len(pool) - 1)
    active = np.flatnonzero(norms > 0)
    if k <= 0 or len(active) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    pool_unit, pool_profiles = unit[pool].T.tocsc(), profiles[pool].tocsr()
    block = max(1, BLOCK_CELLS // max(len(pool), n_items))
    keys, scores = [], []
    for start in range(0, len(active), block):
        rows = active[start : start + block]
        similarity = (unit[rows] @ pool_unit).toarray()
        similarity[rows[:, np.newaxis] == pool[np.newaxis, :]] = -np.inf  # not oneself
        nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        chosen = np.take_along_axis(similarity, nearest, axis=1) > 0
        weights = sp.csr_matrix(
            (np.full(int(chosen.sum()), 1.0 / k), (np.nonzero(chosen)[0], nearest[chosen])),
            shape=(len(rows), len(pool)),
        )
        block_scores = (weights @ pool_profiles).toarray()
        top = min(NEIGHBOUR_TOP, n_items)
        best = np.argpartition(-block_scores, top - 1, axis=1)[:, :top]
        values = np.take_along_axis(block_scores, best, axis=1)
        kept = values > 0
        keys.append(np.repeat(rows, kept.sum(axis=1)).astype(np.int64) * n_items + best[kept])
        scores.append(values[kept])
    keys_all, scores_all = np.concatenate(keys), np.concatenate(scores)
    order = np.argsort(keys_all)
    return keys_all[order], scores_all[order]


def _unique(keys: np.ndarray) -> np.ndarray:
    """Sorted distinct int64 keys by one sort (numpy's hash-based unique is much slower)."""
    keys = np.sort(keys)
    return keys[np.r_[True, keys[1:] != keys[:-1]]] if len(keys) else keys
