"""The learned coupon ranker: training rows of earlier campaigns from `models.coupon_stage`'s
features (the arrays serving reads, as of each campaign's start), every modelling choice made
on a validation split of campaigns inside the training period, and the served stage.

Choices (`choose`): the campaigns starting before `validation_start` are the fit campaigns
(labels: redemptions dated before `validation_start`), those starting from it up to the cutoff
the validation campaigns (labels dated before the cutoff). For each penalty in `L2_GRID`,
greedy forward selection adds the feature of `FEATURES` that most raises the validation score
of `models.ranker.fit_linear` fitted on the fit campaigns, and stops when none raises it; the
(features, penalty) with the best score wins. Validation score: the mean over Type A and
Type B/C of the mean NDCG@10 of their household × campaign pairs with a redemption (a group
without such pairs is left out). The ranker is then refitted with those features and penalty
on all campaigns before the cutoff (`fit`). Training rows keep only household × campaign pairs
with a redemption (only those can teach a ranking); the test campaigns take no part.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from perkrank.features.complete_journey import CouponTables
from perkrank.features.ids import IdMap
from perkrank.models.coupon_stage import FEATURES, CouponStage, feature_arrays
from perkrank.models.linear_ranker import LinearRanker
from perkrank.models.ranker import fit_linear
from perkrank.training import coupon_evaluation as ce
from perkrank.training.coupon_stats import coupon_stats

L2_GRID = (0.1, 1.0, 10.0, 100.0)
TYPE_GROUPS = {"Type A": ("Type A",), "Type B/C": ("Type B", "Type C")}


@dataclass(frozen=True)
class TrainingRows:
    """Stacked feature rows of campaigns: one query per household × campaign."""

    features: np.ndarray
    """Columns: `FEATURES`."""
    labels: np.ndarray
    query_ids: np.ndarray
    """One id per row ("<campaign>/<member>"); rows of a query are contiguous."""
    types: np.ndarray
    """The campaign type of each row."""

    def where(self, keep: np.ndarray) -> TrainingRows:
        """The rows where `keep`."""
        return TrainingRows(
            self.features[keep], self.labels[keep], self.query_ids[keep], self.types[keep]
        )


@dataclass(frozen=True)
class Choice:
    """The chosen features and penalty, with their validation scores."""

    features: tuple[str, ...]
    l2: float
    score: float
    """The validation score (see the module docstring)."""
    per_l2: dict[float, tuple[tuple[str, ...], float]]
    """Each penalty's forward-selected features and validation score."""


def campaign_features(tables: CouponTables, index: ce.CouponIndex, task: ce.Campaign) -> np.ndarray:
    """float64 (members × coupons × `FEATURES`) of a campaign, as of its start."""
    stats = coupon_stats(tables, index, task.start)
    return feature_arrays(stats, IdMap(stats.member_ids).rows(task.members), task.coupon_rows)


def campaign_stage(
    tables: CouponTables, index: ce.CouponIndex, start: pd.Timestamp, ranker: LinearRanker
) -> CouponStage:
    """The stage serving would hold with a bundle cut at `start`."""
    return CouponStage(ranker, coupon_stats(tables, index, start))


def training_rows(
    tables: CouponTables,
    index: ce.CouponIndex,
    campaign_ids: Iterable[str],
    labels_before: pd.Timestamp,
    *,
    redeeming_only: bool = True,
) -> TrainingRows:
    """Rows of the household × campaign pairs of `campaign_ids` (with `redeeming_only`, those
    with a redemption dated before `labels_before`)."""
    features, labels, queries, types = [], [], [], []
    for campaign_id in sorted(campaign_ids):
        task = ce.campaign_task(tables, index, campaign_id, labels_before=labels_before)
        keep = task.labels.any(axis=1) if redeeming_only else np.ones(len(task.members), bool)
        if not keep.any():
            continue
        values = campaign_features(tables, index, task)[keep]
        features.append(values.reshape(-1, len(FEATURES)))
        labels.append(task.labels[keep].ravel())
        coupons = task.labels.shape[1]
        queries.append(np.repeat([f"{campaign_id}/{m}" for m in task.members[keep]], coupons))
        types.append(np.full(len(queries[-1]), task.campaign_type))
    if not features:
        raise ValueError(f"no household redeemed in campaigns {sorted(campaign_ids)}")
    return TrainingRows(
        np.vstack(features),
        np.concatenate(labels).astype(np.float64),
        np.concatenate(queries),
        np.concatenate(types),
    )


def fit(rows: TrainingRows, names: Sequence[str], l2: float) -> LinearRanker:
    """`fit_linear` on the `names` columns of `rows`."""
    columns = [FEATURES.index(name) for name in names]
    return fit_linear(rows.features[:, columns], rows.labels, names, l2=l2)


def validation_score(
    fit_rows: TrainingRows, validation: TrainingRows, names: Sequence[str], l2: float
) -> float:
    """The validation score of the ranker fitted on `fit_rows` (module docstring)."""
    ranker = fit(fit_rows, names, l2)
    columns = [FEATURES.index(name) for name in names]
    return group_score(ranker.predict(validation.features[:, columns]), validation)


def group_score(scores: np.ndarray, rows: TrainingRows) -> float:
    """Mean over `TYPE_GROUPS` (with queries) of the mean NDCG@10 of their queries."""
    means = [value for value in group_ndcg(scores, rows).values() if not np.isnan(value)]
    return float(np.mean(means))


def group_ndcg(scores: np.ndarray, rows: TrainingRows) -> dict[str, float]:
    """Mean NDCG@10 of each of `TYPE_GROUPS`' queries (NaN without any)."""
    result = {}
    for group, types in TYPE_GROUPS.items():
        part = np.isin(rows.types, types)
        if not part.any():
            result[group] = float("nan")
            continue
        padded = query_matrices(scores[part], rows.labels[part] > 0, rows.query_ids[part])
        result[group] = float(ce.ranking_metrics(*padded)["ndcg@10"].mean())
    return result


def choose(fit_rows: TrainingRows, validation: TrainingRows) -> Choice:
    """Features and penalty by forward selection per penalty of `L2_GRID` (module docstring)."""
    per_l2 = {}
    with threadpool_limits(1, "blas"):  # many small fits: BLAS threads only contend
        for l2 in L2_GRID:
            chosen: tuple[str, ...] = ()
            best = -np.inf
            while len(chosen) < len(FEATURES):
                scores = {
                    name: validation_score(fit_rows, validation, (*chosen, name), l2)
                    for name in FEATURES
                    if name not in chosen
                }
                name = max(scores, key=lambda candidate: scores[candidate])
                if scores[name] <= best:
                    break
                chosen, best = (*chosen, name), scores[name]
            per_l2[l2] = (chosen, float(best))
    l2 = max(per_l2, key=lambda penalty: per_l2[penalty][1])
    return Choice(per_l2[l2][0], l2, per_l2[l2][1], per_l2)


def query_matrices(
    scores: np.ndarray, labels: np.ndarray, query_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Queries × their longest length: scores padded with −inf, labels with False."""
    _, first, inverse = np.unique(query_ids, return_index=True, return_inverse=True)
    position = np.arange(len(query_ids)) - first[inverse]
    shape = (len(first), int(position.max()) + 1)
    padded_scores, padded_labels = np.full(shape, -np.inf), np.zeros(shape, dtype=bool)
    padded_scores[inverse, position] = scores
    padded_labels[inverse, position] = labels
    return padded_scores, padded_labels
