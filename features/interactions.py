"""Purchases before a cutoff → the member × item matrices and feature names models fit on."""

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import scipy.sparse as sp
from implicit.nearest_neighbours import bm25_weight, tfidf_weight

from perkrank.config import InteractionConfig
from perkrank.features.bought_items import BoughtItems
from perkrank.features.columns import Columns
from perkrank.features.dataset import Dataset
from perkrank.features.ids import IdMap
from perkrank.features.member_features import History, describe_members, history_at
from perkrank.features.offer_features import offer_items, partner_scopes
from perkrank.features.training_data import TrainingData
from perkrank.features.vocabulary import item_feature_names, segment_id

MIN_CONFIDENCE = 1e-6
"""bm25/tfidf give a member who bought (nearly) every item an idf ≤ 0; their weights are raised
to this, so every purchase stays a positive interaction."""


@dataclass(frozen=True)
class CutoffFeatures:
    """What fitting and evaluating need from the data before one cutoff, each built once
    from one `History`: the training matrices, every member's feature names
    (`describe_members`) and the item ids each member bought (buyers only: the pattern of
    `data.purchase_totals`, shared)."""

    data: TrainingData
    member_features: dict[str, list[str]]
    items_bought_before: BoughtItems


def cutoff_features(
    dataset: Dataset, cutoff: datetime, config: InteractionConfig
) -> CutoffFeatures:
    """`CutoffFeatures` of what was known before `cutoff`."""
    history = history_at(dataset, cutoff)
    member_features = describe_members(history, config.half_life_days)
    data = _training_data(dataset, history, member_features, config)
    return CutoffFeatures(
        data=data,
        member_features=member_features,
        items_bought_before=BoughtItems(data.member_ids, data.item_ids, data.purchase_totals),
    )


def build_training_data(
    dataset: Dataset, cutoff: datetime, config: InteractionConfig
) -> TrainingData:
    """Model input from what was known before `cutoff` (see `TrainingData`).

    Rows are the members who signed up and bought before `cutoff` (sorted); columns are the
    items bought before it plus every item of `dataset.offers` (sorted). Each purchase counts
    0.5 ** (age_days / half_life_days), its age taken at the cutoff; `user_items` turns these
    counts into confidence by `config.weighting`: "count" as they are, "amount" as
    log1p(recency-weighted amount), "bm25"/"tfidf" by implicit's weighting of the
    items × members matrix, as implicit does for ALS.
    """
    return cutoff_features(dataset, cutoff, config).data


def _training_data(
    dataset: Dataset,
    history: History,
    member_features: dict[str, list[str]],
    config: InteractionConfig,
) -> TrainingData:
    bought_any = np.bincount(history.member_rows, minlength=len(history.members)) > 0
    buyer_rows = np.flatnonzero(bought_any)
    matrix_rows = (np.cumsum(bought_any) - 1)[history.member_rows]
    offered = dataset.offers[[Columns.partner_id, Columns.category]].assign(
        item_id=offer_items(dataset.offers)
    )
    items = pd.concat([history.items, offered], ignore_index=True).drop_duplicates(Columns.item_id)
    items = items.sort_values(Columns.item_id, ignore_index=True)
    item_columns = IdMap(items[Columns.item_id]).rows(history.items[Columns.item_id])
    matrix_columns = item_columns[history.item_rows]

    shape = (len(buyer_rows), len(items))
    weights = history.recency_weights(config.half_life_days)
    purchase_counts = _sparse_sum(weights, matrix_rows, matrix_columns, shape)
    purchase_totals = _sparse_sum(np.ones(len(weights)), matrix_rows, matrix_columns, shape)
    if config.weighting == "amount":
        assert history.amounts is not None, "cutoff_features reads the amounts"
        spend = weights * history.amounts
        user_items = _sparse_sum(spend, matrix_rows, matrix_columns, shape)
        user_items.data = np.log1p(user_items.data)
    elif config.weighting in ("bm25", "tfidf"):
        user_items = _weigh_like_implicit(purchase_counts, config)
    else:
        user_items = purchase_counts

    buyers = history.members.iloc[buyer_rows]
    buyer_ids = buyers[Columns.member_id].tolist()
    scopes = partner_scopes(dataset.partners)
    return TrainingData(
        member_ids=np.array(buyer_ids, dtype=str),
        item_ids=items[Columns.item_id].to_numpy(dtype=str),
        user_items=_canonical(user_items),
        purchase_counts=_canonical(purchase_counts),
        purchase_totals=_canonical(purchase_totals),
        member_features=[member_features[member_id] for member_id in buyer_ids],
        item_features=[
            item_feature_names(partner_id, category, scopes[partner_id])
            for partner_id, category in zip(
                items[Columns.partner_id], items[Columns.category], strict=True
            )
        ],
        member_segments=np.array(
            [
                segment_id(region, tier)
                for region, tier in zip(
                    buyers[Columns.region].tolist(), buyers[Columns.tier].tolist(), strict=True
                )
            ],
            dtype=str,
        ),
    )


def _sparse_sum(
    values: np.ndarray, rows: np.ndarray, columns: np.ndarray, shape: tuple[int, int]
) -> sp.csr_matrix:
    """CSR matrix of `values` summed per (row, column)."""
    return sp.csr_matrix((values, (rows, columns)), shape=shape, dtype=np.float64)


def _weigh_like_implicit(counts: sp.csr_matrix, config: InteractionConfig) -> sp.csr_matrix:
    """bm25 or tfidf weights of `counts`, computed on items × members as implicit's ALS example."""
    items_members = counts.T.tocsr()
    if config.weighting == "bm25":
        weighted = bm25_weight(items_members, K1=config.bm25_k1, B=config.bm25_b)
    else:
        weighted = tfidf_weight(items_members)
    user_items = sp.csr_matrix(weighted.T)
    user_items.data = np.maximum(user_items.data, MIN_CONFIDENCE)
    return user_items


def _canonical(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """float32 CSR with sorted indices, no duplicates and no explicit zeros."""
    matrix = sp.csr_matrix(matrix, dtype=np.float32)
    matrix.sum_duplicates()
    matrix.eliminate_zeros()
    matrix.sort_indices()
    return matrix
