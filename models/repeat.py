"""Repeat buying: a member's own recent purchases of an item, no learned vectors."""

import numpy as np

from perkrank.features.training_data import TrainingData
from perkrank.models.factors import Factors


def fit_repeat(data: TrainingData) -> Factors:
    """Factors scoring `log1p(purchase_counts[member, item])`: members rebuy what they buy.

    Parameters
    ----------
    data:
        Training members × items; only `purchase_counts` (recency-decayed) is used.

    Returns
    -------
    Zero-dimensional Factors with `repeat = data.purchase_counts`, `repeat_weight = 1`;
    members and items it never saw score 0.
    """
    return Factors(
        member_ids=data.member_ids,
        member_vectors=np.zeros((len(data.member_ids), 0), dtype=np.float32),
        item_ids=data.item_ids,
        item_vectors=np.zeros((len(data.item_ids), 0), dtype=np.float32),
        item_biases=np.zeros(len(data.item_ids), dtype=np.float32),
        repeat=data.purchase_counts,
        repeat_weight=1.0,
        name="repeat",
    )
