"""What every model's `fit` receives: the member × item matrices and feature names."""

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class TrainingData:
    """Model input built from purchases strictly before `cutoff`.

    member_ids:      rows: members with at least one purchase before the cutoff.
    item_ids:        columns: `vocabulary.item_id(partner_id, category)` of every item bought
                     before the cutoff, plus every item an offer in the catalog maps onto.
    user_items:      CSR (members × items), confidence weights (see InteractionConfig).
    purchase_counts: CSR (members × items), recency-decayed purchase counts (repeat, popularity).
    purchase_totals: CSR (members × items), purchase counts without decay (own+pop baseline).
    member_features: feature names per member row (`vocabulary` names: region, tier, segment,
                     tenure, spend, top categories).
    item_features:   feature names per item column (partner, category, scope).
    member_segments: `vocabulary.segment_id(region, tier)` per member row.
    """

    member_ids: np.ndarray
    item_ids: np.ndarray
    user_items: sp.csr_matrix
    purchase_counts: sp.csr_matrix
    purchase_totals: sp.csr_matrix
    member_features: list[list[str]]
    item_features: list[list[str]]
    member_segments: np.ndarray
