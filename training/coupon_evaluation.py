"""Rank a campaign's coupons for each household that received it, and score the ranking
against the coupons the household redeemed (the Complete Journey benchmark's machinery).

Everything a campaign's scores use is dated before the campaign starts (the features:
`models.coupon_stage`, as of the start). Per exposed household the coupons are ranked by score,
ties to the lower coupon UPC (`scoring.top_k`). Metrics, per household × campaign with at
least one redemption: NDCG@10, recall@5, recall@10 (`training.metrics`) and AUC (the share of
redeemed × not-redeemed pairs ordered right, ties half; NaN when every coupon was redeemed).

Baselines (`BASELINES`): single features of `models.coupon_stage`, the household's purchase
shares in the coupon's categories and exact products, its past redemptions of coupons sharing
a category, the coupon's popularity and its size (products covered; not personal).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.stats import rankdata

from perkrank.features.columns import Columns
from perkrank.features.complete_journey import CouponTables
from perkrank.features.ids import IdMap
from perkrank.models import scoring
from perkrank.models.factors import Factors
from perkrank.training.metrics import ndcg_at_k, recall_at_k

BASELINES = (
    "coupon_popularity", "category_share", "product_share", "past_redemptions", "coupon_size",
)  # fmt: skip
METRICS = ("ndcg@10", "recall@5", "recall@10", "auc")
RANKED = 10
"""The ranks the metrics read (AUC reads every score)."""


@dataclass(frozen=True)
class CouponIndex:
    """Every coupon ("<campaign>-<upc>"), item, product, manufacturer and product type as
    rows, and which of each a coupon covers (binary CSR matrices); `product_manufacturers` /
    `product_types`: the manufacturer / type row of each product row."""

    coupons: IdMap
    items: IdMap
    products: IdMap
    coupon_items: sp.csr_matrix
    coupon_products: sp.csr_matrix
    manufacturers: IdMap
    types: IdMap
    product_manufacturers: np.ndarray
    product_types: np.ndarray

    @property
    def coupon_manufacturers(self) -> sp.csr_matrix:
        return _covers(self.coupon_products, self.product_manufacturers, len(self.manufacturers))

    @property
    def coupon_types(self) -> sp.csr_matrix:
        return _covers(self.coupon_products, self.product_types, len(self.types))


@dataclass(frozen=True)
class Campaign:
    """One campaign's ranking task: exposed members × its coupons, and who redeemed what."""

    campaign_id: str
    campaign_type: str
    start: pd.Timestamp
    members: np.ndarray
    coupon_rows: np.ndarray
    """Rows in `CouponIndex.coupons`, sorted by UPC."""
    coupon_upcs: np.ndarray
    labels: np.ndarray
    """bool (members × coupons): the member redeemed the coupon."""


def coupon_key(campaign_id: pd.Series, coupon_upc: pd.Series) -> pd.Series:
    """The coupon id of a campaign's UPC."""
    return campaign_id + "-" + coupon_upc


def coupon_index(tables: CouponTables) -> CouponIndex:
    """The `CouponIndex` of every coupon, item and product in the tables."""
    keys = coupon_key(tables.coupons["campaign_id"], tables.coupons["coupon_upc"])
    coupons = IdMap(sorted(set(keys)))
    items = IdMap(sorted(set(tables.coupons[Columns.item_id]) | set(tables.purchases.item_id)))
    products = IdMap(sorted(set(tables.coupons.product_id) | set(tables.purchases.product_id)))
    rows = coupons.rows(keys)
    known = tables.products.set_index("product_id").reindex(products.external_ids)
    makers = known["manufacturer"].fillna("").to_numpy(str)
    kinds = known["product_type"].fillna("").to_numpy(str)
    manufacturers, types = IdMap(sorted(set(makers))), IdMap(sorted(set(kinds)))
    return CouponIndex(
        coupons=coupons,
        items=items,
        products=products,
        coupon_items=_binary(rows, items.rows(tables.coupons[Columns.item_id]), (coupons, items)),
        coupon_products=_binary(
            rows, products.rows(tables.coupons.product_id), (coupons, products)
        ),
        manufacturers=manufacturers,
        types=types,
        product_manufacturers=manufacturers.rows(makers),
        product_types=types.rows(kinds),
    )


def _covers(coupon_products: sp.csr_matrix, groups: np.ndarray, width: int) -> sp.csr_matrix:
    """Coupons × groups: 1 where the coupon covers a product of the group."""
    coo = coupon_products.tocoo()
    matrix = sp.csr_matrix((np.ones(len(coo.row)), (coo.row, groups[coo.col])),
                           shape=(coupon_products.shape[0], width))  # fmt: skip
    matrix.data[:] = 1.0
    return matrix


def _binary(rows: np.ndarray, columns: np.ndarray, maps: tuple[IdMap, IdMap]) -> sp.csr_matrix:
    matrix = sp.csr_matrix(
        (np.ones(len(rows)), (rows, columns)), shape=(len(maps[0]), len(maps[1]))
    )
    matrix.data[:] = 1.0
    return matrix


def campaign_task(
    tables: CouponTables, index: CouponIndex, campaign_id: str, labels_before: pd.Timestamp | None
) -> Campaign:
    """The task of one campaign; only redemptions dated before `labels_before` count (None: all)."""
    described = tables.campaigns.set_index("campaign_id").loc[campaign_id]
    coupons = tables.coupons[tables.coupons["campaign_id"] == campaign_id]
    upcs = np.array(sorted(set(coupons["coupon_upc"])), dtype=str)
    members = np.array(
        sorted(tables.exposures.loc[tables.exposures["campaign_id"] == campaign_id].member_id),
        dtype=str,
    )
    redeemed = tables.redemptions[tables.redemptions["campaign_id"] == campaign_id]
    if labels_before is not None:
        redeemed = redeemed[redeemed["redemption_date"] < labels_before]
    member_rows, upc_rows = (
        IdMap(members).rows(redeemed.member_id),
        IdMap(upcs).rows(redeemed.coupon_upc),
    )
    labels = np.zeros((len(members), len(upcs)), dtype=bool)
    known = (member_rows >= 0) & (upc_rows >= 0)
    labels[member_rows[known], upc_rows[known]] = True
    keys = [f"{campaign_id}-{upc}" for upc in upcs]
    return Campaign(
        campaign_id=campaign_id,
        campaign_type=str(described["campaign_type"]),
        start=pd.Timestamp(described["start_date"]),
        members=members,
        coupon_rows=index.coupons.rows(keys),
        coupon_upcs=upcs,
        labels=labels,
    )


def item_scores(
    factors: Factors,
    member_ids: Sequence[str],
    member_features: Mapping[str, Sequence[str]],
    item_ids: Sequence[str],
    item_features: Mapping[str, Sequence[str]],
) -> np.ndarray:
    """`models.scoring`'s score of each member (rows) for each item (columns)."""
    members = scoring.member_vectors(
        factors, member_ids, [member_features.get(member, []) for member in member_ids]
    )
    items = scoring.item_inputs(factors, item_ids, [item_features.get(i, []) for i in item_ids])
    repeat = scoring.repeat_matrix(factors, factors.member_rows(member_ids), items.rows)
    dense = None if repeat is None else repeat.toarray()
    return scoring.batch_scores(members, items.vectors, items.biases, dense)


def coupon_scores(scores: np.ndarray, coupon_items: sp.csr_matrix, how: str) -> np.ndarray:
    """Members × coupons from members × items scores: the max or mean over a coupon's items."""
    if how == "mean":
        counts = np.maximum(np.asarray(coupon_items.sum(axis=1)).ravel(), 1)
        return (coupon_items @ scores.T).T / counts
    result = np.empty((scores.shape[0], coupon_items.shape[0]))
    for row in range(coupon_items.shape[0]):
        columns = coupon_items.indices[coupon_items.indptr[row] : coupon_items.indptr[row + 1]]
        result[:, row] = scores[:, columns].max(axis=1) if len(columns) else -np.inf
    return result


def ranking_metrics(scores: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """`METRICS` per row of `labels` with at least one redemption (rows without are left out)."""
    keep = labels.any(axis=1)
    scores, labels = np.asarray(scores, dtype=np.float64)[keep], labels[keep]
    hits, relevant = _ranked_hits(scores, labels)
    return {
        "ndcg@10": ndcg_at_k(hits, relevant, 10),
        "recall@5": recall_at_k(hits, relevant, 5),
        "recall@10": recall_at_k(hits, relevant, 10),
        "auc": auc(scores, labels),
    }


def ndcg(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """`ranking_metrics`' NDCG@10 alone (rows of `labels` with a redemption)."""
    keep = labels.any(axis=1)
    hits, relevant = _ranked_hits(np.asarray(scores, dtype=np.float64)[keep], labels[keep])
    return ndcg_at_k(hits, relevant, 10)


def _ranked_hits(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the labels of the `RANKED` best scores (ties to the lower column), best first,
    and the row's count of labels."""
    order = scoring.top_k(scores, RANKED)
    return np.take_along_axis(labels, order, axis=1).astype(np.float64), labels.sum(axis=1)


def auc(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per row: P(redeemed coupon scores above a not-redeemed one), ties half; NaN if a class
    is empty."""
    ranks = rankdata(scores, axis=1)
    positives = labels.sum(axis=1)
    negatives = labels.shape[1] - positives
    rank_sum = (ranks * labels).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        value = (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)
    return np.where((positives > 0) & (negatives > 0), value, np.nan)
