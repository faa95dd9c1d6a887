"""A learned coupon ranker for campaigns: features per (household, coupon) from data dated
before the campaign starts, and a ranker fitted on earlier campaigns' redemptions.

Features (each a members × coupons array; `coupon_evaluation.BASELINES` plus):
    product_lines        the household's purchase lines of the coupon's exact products;
    product_recent       the same, each line weighted 2^(−days before the start / 30);
    category_recent      the same for the coupon's item categories;
    same_coupon          the household's earlier redemptions of this coupon's UPC;
    redemption_rate      redemptions of the UPC / households exposed to earlier campaigns
                         holding it (0 when the UPC was never offered before);
    product_reach        households (all of them) that bought one of the coupon's products,
                         summed over its products (not personal).
The ranker (`fit`) is `models.ranker`'s logistic regression (`fit_linear`) on the rows of the
household × campaign pairs of earlier campaigns with at least one redemption; its features are
chosen by greedy forward selection on NDCG@10 cross-validated over household folds inside those
campaigns (`select_features`), so the test campaigns never take part in the choice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from perkrank.features.columns import Columns
from perkrank.features.complete_journey import CouponTables
from perkrank.features.ids import IdMap
from perkrank.models.ranker import LinearRanker, fit_linear
from perkrank.training import coupon_evaluation as ce

EXTRA = (
    "product_lines", "product_recent", "category_recent", "same_coupon", "redemption_rate",
    "product_reach",
)  # fmt: skip
FEATURES = (*ce.BASELINES, *EXTRA)
HALF_LIFE_DAYS = 30.0
FOLDS = 5


@dataclass(frozen=True)
class TrainingRows:
    """Stacked feature rows of earlier campaigns: one query per household × campaign."""

    features: np.ndarray
    """Columns: `FEATURES`."""
    labels: np.ndarray
    query_ids: np.ndarray
    """One id per row ("<campaign>/<member>"); rows of a query are contiguous."""

    @property
    def households(self) -> np.ndarray:
        """The member of each row."""
        return np.array([query.split("/", 1)[1] for query in self.query_ids])


def coupon_features(
    tables: CouponTables, index: ce.CouponIndex, task: ce.Campaign
) -> dict[str, np.ndarray]:
    """Each of `FEATURES` as a members × coupons array, from data dated before the start."""
    features = ce.baseline_features(tables, index, task)
    members = IdMap(task.members)
    everyone = tables.purchases[tables.purchases[Columns.ts] < task.start]
    bought = everyone[everyone.member_id.isin(members)]
    rows = members.rows(bought.member_id)
    days = (task.start - bought[Columns.ts]).dt.total_seconds().to_numpy() / 86_400
    weights = np.exp2(-days / HALF_LIFE_DAYS)
    coupon_items = index.coupon_items[task.coupon_rows]
    coupon_products = index.coupon_products[task.coupon_rows]

    def per_coupon(values: np.ndarray, columns: np.ndarray, map_: IdMap, covers: sp.csr_matrix):
        counts = sp.csr_matrix((values, (rows, columns)), shape=(len(members), len(map_)))
        return (counts @ covers.T).toarray()

    product_columns = index.products.rows(bought.product_id)
    earlier = tables.redemptions[tables.redemptions["redemption_date"] < task.start]
    return {
        **features,
        "product_lines": per_coupon(
            np.ones(len(rows)), product_columns, index.products, coupon_products
        ),
        "product_recent": per_coupon(weights, product_columns, index.products, coupon_products),
        "category_recent": per_coupon(
            weights, index.items.rows(bought.item_id), index.items, coupon_items
        ),
        "same_coupon": _same_coupon(earlier, members, task.coupon_upcs),
        "redemption_rate": np.ones((len(members), 1)) * _redemption_rate(tables, earlier, task),
        "product_reach": np.ones((len(members), 1)) * (coupon_products @ _reach(everyone, index)),
    }


def _reach(purchases: pd.DataFrame, index: ce.CouponIndex) -> np.ndarray:
    """Per product of `index`: the households with a purchase line of it."""
    pairs = purchases.drop_duplicates([Columns.member_id, "product_id"])
    return np.bincount(index.products.rows(pairs.product_id), minlength=len(index.products))


def _same_coupon(earlier: pd.DataFrame, members: IdMap, upcs: np.ndarray) -> np.ndarray:
    """Per member × coupon: the member's earlier redemptions of the coupon's UPC."""
    member_rows, upc_rows = members.rows(earlier.member_id), IdMap(upcs).rows(earlier.coupon_upc)
    known = (member_rows >= 0) & (upc_rows >= 0)
    result = np.zeros((len(members), len(upcs)))
    np.add.at(result, (member_rows[known], upc_rows[known]), 1.0)
    return result


def _redemption_rate(tables: CouponTables, earlier: pd.DataFrame, task: ce.Campaign) -> np.ndarray:
    """Per coupon: redemptions of its UPC before the start / exposures of earlier campaigns
    offering the UPC (0 where it was never offered)."""
    campaigns = tables.campaigns
    before = campaigns.loc[campaigns.start_date < task.start, "campaign_id"]
    offered = tables.coupons[tables.coupons["campaign_id"].isin(before)]
    offered = offered.drop_duplicates(["campaign_id", "coupon_upc"])
    exposed = tables.exposures.groupby("campaign_id").size()
    upcs = IdMap(task.coupon_upcs)
    exposed_before = _per_upc(
        upcs,
        offered["coupon_upc"],
        np.nan_to_num(offered["campaign_id"].map(exposed).to_numpy(float)),
    )
    redeemed = _per_upc(upcs, earlier["coupon_upc"], np.ones(len(earlier)))
    return redeemed / np.maximum(exposed_before, 1)


def _per_upc(upcs: IdMap, keys: pd.Series, values: np.ndarray) -> np.ndarray:
    """Sum of `values` per UPC of `upcs` (keys outside `upcs` are dropped)."""
    rows = upcs.rows(keys)
    known = rows >= 0
    return np.bincount(rows[known], weights=values[known], minlength=len(upcs))


def stacked(features: dict[str, np.ndarray]) -> np.ndarray:
    """`FEATURES` as columns, one row per member × coupon (members major)."""
    return np.stack([features[name].ravel() for name in FEATURES], axis=1)


def training_rows(
    tables: CouponTables,
    index: ce.CouponIndex,
    campaign_ids: Iterable[str],
    labels_before: pd.Timestamp,
) -> TrainingRows:
    """Rows of the household × campaign pairs of `campaign_ids` with a redemption dated before
    `labels_before` (only those queries can teach a ranking)."""
    features, labels, queries = [], [], []
    for campaign_id in sorted(campaign_ids):
        task = ce.campaign_task(tables, index, campaign_id, labels_before=labels_before)
        keep = task.labels.any(axis=1)
        if not keep.any():
            continue
        values = coupon_features(tables, index, task)
        features.append(stacked({n: v[keep] for n, v in values.items()}))
        labels.append(task.labels[keep].ravel())
        coupons = task.labels.shape[1]
        queries.append(np.repeat([f"{campaign_id}/{m}" for m in task.members[keep]], coupons))
    return TrainingRows(
        np.vstack(features), np.concatenate(labels).astype(np.float64), np.concatenate(queries)
    )


def predict(ranker: LinearRanker, features: Mapping[str, np.ndarray]) -> np.ndarray:
    """The ranker's scores (members × coupons) from `coupon_features`' arrays."""
    shape = features[ranker.feature_names[0]].shape
    columns = np.stack([features[name].ravel() for name in ranker.feature_names], axis=1)
    return ranker.predict(columns).reshape(shape)


def fit(rows: TrainingRows, *, folds: int = FOLDS, seed: int = 0) -> LinearRanker:
    """A logistic ranker on the features `select_features` keeps, fitted on all `rows`."""
    with threadpool_limits(1, "blas"):  # hundreds of small fits: BLAS threads only contend
        names = select_features(rows, folds=folds, seed=seed)
        columns = [FEATURES.index(name) for name in names]
        return fit_linear(rows.features[:, columns], rows.labels, names)


def select_features(rows: TrainingRows, *, folds: int = FOLDS, seed: int = 0) -> tuple[str, ...]:
    """Greedy forward selection: add the feature that most raises the household-fold
    cross-validated NDCG@10 (`cross_validated_ndcg`); stop when none raises it."""
    fold_of = household_folds(rows.households, folds, seed)
    chosen: tuple[str, ...] = ()
    best = -np.inf
    while len(chosen) < len(FEATURES):
        scores = {
            name: cross_validated_ndcg(rows, (*chosen, name), fold_of)
            for name in FEATURES
            if name not in chosen
        }
        name = max(scores, key=lambda candidate: scores[candidate])
        if scores[name] <= best:
            break
        chosen, best = (*chosen, name), scores[name]
    return chosen


def household_folds(households: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """A fold in `range(folds)` per row, the same for every row of a household (seeded)."""
    unique, inverse = np.unique(households, return_inverse=True)
    return np.random.default_rng(seed).integers(0, folds, len(unique))[inverse]


def cross_validated_ndcg(rows: TrainingRows, names: Sequence[str], fold_of: np.ndarray) -> float:
    """Mean NDCG@10 over the queries of out-of-fold scores of `fit_linear` on `names`."""
    columns = [FEATURES.index(name) for name in names]
    scores = np.empty(len(rows.labels))
    for fold in np.unique(fold_of):
        held = fold_of == fold
        model = fit_linear(rows.features[~held][:, columns], rows.labels[~held], names)
        scores[held] = model.predict(rows.features[held][:, columns])
    padded_scores, padded_labels = query_matrices(scores, rows.labels > 0, rows.query_ids)
    return float(ce.ranking_metrics(padded_scores, padded_labels)["ndcg@10"].mean())


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
