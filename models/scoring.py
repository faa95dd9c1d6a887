"""The score of a member for an item, written once: serving, evaluation, the MLflow model and
blending all call this module.

    score(member, item) = member_vector · item_vector + item_bias
                          + repeat_weight · log1p(repeat[member, item])

Member vector: the learned row of a member the factors know, else the sum of the vectors of
the member's feature names the factors know (a member without purchases is named by
`vocabulary.cold_member_feature_names` from region, tier and tenure). Item vector and bias:
the learned row, else the sums over the item's known feature names. The repeat term is zero
unless both the member and the item are known. A bundle with offer response rates adds
`offer_prior` to each offer's bias when serving: weight · log(rate / global rate)
(`models.offer_rates`; 0 for an offer without events, and everywhere without rates).

Order: highest score first; equal scores go to the lower position (evaluation's columns are
offers sorted by offer_id, serving's rows follow the catalog). numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from perkrank.models.factors import Factors
from perkrank.models.offer_rates import OfferRates


class ItemInputs(NamedTuple):
    """Items' vectors and biases under one set of factors, and their rows (-1: unseen)."""

    vectors: np.ndarray
    biases: np.ndarray
    rows: np.ndarray


def member_vector(
    factors: Factors, member_id: str | None, feature_names: Sequence[str]
) -> np.ndarray:
    """The member's learned vector, else the sum of its known feature vectors."""
    row = None if member_id is None else factors.member_row(member_id)
    if row is not None:
        return factors.member_vectors[row]
    rows = factors.member_feature_rows(feature_names)
    return factors.member_feature_vectors[rows].sum(axis=0, dtype=np.float32)


def member_vectors(
    factors: Factors, member_ids: Sequence[str], feature_names: Sequence[Sequence[str]]
) -> np.ndarray:
    """`member_vector` of each member, one row each."""
    vectors = np.zeros((len(member_ids), factors.dim), dtype=np.float32)
    for position, (member_id, names) in enumerate(zip(member_ids, feature_names, strict=True)):
        vectors[position] = member_vector(factors, member_id, names)
    return vectors


def item_inputs(
    factors: Factors, items: Sequence[str], feature_names: Sequence[Sequence[str]]
) -> ItemInputs:
    """Vectors, biases and rows of `items`; unseen items are built from their feature names."""
    vectors = np.zeros((len(items), factors.dim), dtype=np.float32)
    biases = np.zeros(len(items), dtype=np.float32)
    rows = np.full(len(items), -1, dtype=np.int64)
    for position, (item, names) in enumerate(zip(items, feature_names, strict=True)):
        row = factors.item_row(item)
        if row is not None:
            rows[position] = row
            vectors[position] = factors.item_vectors[row]
            biases[position] = factors.item_biases[row]
            continue
        feature_rows = factors.item_feature_rows(names)
        vectors[position] = factors.item_feature_vectors[feature_rows].sum(axis=0)
        biases[position] = factors.item_feature_biases[feature_rows].sum()
    return ItemInputs(vectors, biases, rows)


def offer_prior(rates: OfferRates | None, offer_ids: Sequence[str]) -> np.ndarray:
    """The offer-level response prior of each offer (0 for offers `rates` has no events of,
    all 0 without rates), added to the offers' biases."""
    prior = np.zeros(len(offer_ids), dtype=np.float32)
    if rates is None:
        return prior
    lifts = dict(zip(rates.offer_ids.tolist(), rates.log_lift().tolist(), strict=True))
    for position, offer_id in enumerate(offer_ids):
        prior[position] = lifts.get(offer_id, 0.0)
    return prior


def has_repeat(factors: Factors) -> bool:
    """Whether the factors add a repeat term at all."""
    return factors.repeat is not None and factors.repeat_weight != 0


def repeat_scores(factors: Factors, member_row: int | None, item_rows: np.ndarray) -> np.ndarray:
    """The repeat term of one member (row None: unknown) over item rows (-1: unknown item)."""
    scores = np.zeros(len(item_rows), dtype=np.float32)
    if member_row is None or not has_repeat(factors):
        return scores
    repeat = factors.repeat
    start, end = repeat.indptr[member_row], repeat.indptr[member_row + 1]
    if start == end:
        return scores
    dense = np.zeros(len(factors.item_ids) + 1, dtype=np.float32)  # last slot: unknown items
    dense[repeat.indices[start:end]] = np.log1p(repeat.data[start:end])
    return factors.repeat_weight * dense[np.asarray(item_rows)]


def repeat_matrix(
    factors: Factors, member_rows: np.ndarray, item_rows: np.ndarray
) -> sp.csr_matrix | None:
    """The repeat term (len(member_rows) × len(item_rows), rows -1: unknown), None if none."""
    if not has_repeat(factors):
        return None
    member_rows, item_rows = np.asarray(member_rows), np.asarray(item_rows)
    known_members, known_items = np.flatnonzero(member_rows >= 0), np.flatnonzero(item_rows >= 0)
    counts = factors.repeat[member_rows[known_members]][:, item_rows[known_items]].tocoo()
    return sp.csr_matrix(
        (
            factors.repeat_weight * np.log1p(counts.data),
            (known_members[counts.row], known_items[counts.col]),
        ),
        shape=(len(member_rows), len(item_rows)),
        dtype=np.float32,
    )


def scores(
    member: np.ndarray,
    item_vectors: np.ndarray,
    item_biases: np.ndarray,
    repeat: np.ndarray | None = None,
) -> np.ndarray:
    """One member's scores over items (`repeat`: that member's repeat term, or None)."""
    result = item_vectors @ member
    result += item_biases
    if repeat is not None:
        result += repeat
    return result


def batch_scores(
    members: np.ndarray,
    item_vectors: np.ndarray,
    item_biases: np.ndarray,
    repeat: np.ndarray | None = None,
) -> np.ndarray:
    """Scores (members × items) of member vectors over items (`repeat` dense, or None)."""
    result = members @ item_vectors.T + item_biases
    if repeat is not None:
        result += repeat
    return result


def known_scores(factors: Factors, member_rows: np.ndarray, item_rows: np.ndarray) -> np.ndarray:
    """Scores (len(member_rows) × len(item_rows)) of known members over known items."""
    repeat = repeat_matrix(factors, member_rows, item_rows)
    result = batch_scores(
        factors.member_vectors[member_rows],
        factors.item_vectors[item_rows],
        factors.item_biases[item_rows],
        None if repeat is None else repeat.toarray(),
    )
    return result.astype(np.float32, copy=False)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Per row of `scores`, the columns of the k highest, best first; ties to the lower column."""
    k = min(k, scores.shape[1])
    if k == scores.shape[1]:
        return np.argsort(-scores, axis=1, kind="stable")
    found = _top_k_above_kth(scores, k)
    if found is not None:
        return found
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    top_scores = np.take_along_axis(scores, top, axis=1)
    top = np.take_along_axis(top, np.lexsort((top, -top_scores)), axis=1)
    # argpartition picks arbitrarily among scores tied with the k-th: re-rank those rows fully.
    kth = np.take_along_axis(scores, top[:, -1:], axis=1)
    tied_outside = (scores == kth).sum(axis=1) > (top_scores == kth).sum(axis=1)
    if tied_outside.any():
        top[tied_outside] = np.argsort(-scores[tied_outside], axis=1, kind="stable")[:, :k]
    return top


def _top_k_above_kth(scores: np.ndarray, k: int) -> np.ndarray | None:
    """`top_k` where each row has exactly k scores at or above its k-th highest (no tie at
    the k-th crosses it, no NaN): those columns, ascending, sorted stably by score; None
    otherwise. A partition of the scores and a sort of k per row, no index array of all."""
    negated = -scores
    kth = np.partition(negated, k - 1, axis=1)[:, k - 1 : k]
    _, columns = np.nonzero(negated <= kth)
    if len(columns) != scores.shape[0] * k or np.isnan(kth).any():
        return None
    columns = columns.reshape(scores.shape[0], k)
    order = np.argsort(np.take_along_axis(negated, columns, axis=1), axis=1, kind="stable")
    return np.take_along_axis(columns, order, axis=1)


def best(scores: np.ndarray, k: int) -> np.ndarray:
    """`top_k` of one member's scores: the positions of the k highest, best first (ties to
    the lower position). One row, so each step is one small numpy call: served per request."""
    k = min(k, len(scores))
    if k == len(scores):
        return np.argsort(-scores, kind="stable")
    top = np.argpartition(-scores, k - 1)[:k]
    top_scores = scores[top]
    top = top[np.lexsort((top, -top_scores))]
    # argpartition picks arbitrarily among scores tied with the k-th: rank them all then.
    kth = scores[top[-1]]
    if np.count_nonzero(scores == kth) > np.count_nonzero(top_scores == kth):
        return np.argsort(-scores, kind="stable")[:k]
    return top
