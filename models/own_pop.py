"""own+pop: the buy-again baseline any learned ranker has to beat.

A member's items ranked by how many times the member bought each (no recency decay); ties,
and the rest of the list, go by global popularity (undecayed purchase counts). Written as
`Factors` so `models.scoring` ranks it like every other model: the own counts are the repeat
term (`log1p(count)`, weight 1) and popularity is an item bias scaled below the smallest gap
between two different own-count terms, so it can only order items the member bought equally
often (never) and the items the member never bought.
"""

import numpy as np

from perkrank.features.training_data import TrainingData
from perkrank.models.factors import Factors

NAME = "own_pop"
TIE_BREAK_SHARE = 0.5
"""The largest popularity bias, as a share of the smallest gap between two own-count terms."""


def fit_own_pop(data: TrainingData) -> Factors:
    """Factors scoring `log1p(own purchases) + popularity bias` (see the module docstring)."""
    totals = data.purchase_totals.tocsr()
    popularity = np.asarray(totals.sum(axis=0), dtype=np.float64).ravel()
    most_bought = float(totals.max()) if totals.nnz else 0.0
    biases = np.zeros(len(data.item_ids), dtype=np.float64)
    if popularity.max(initial=0.0) > 0:
        biases = popularity / popularity.max() * TIE_BREAK_SHARE * smallest_gap(most_bought)
    return Factors(
        member_ids=data.member_ids,
        member_vectors=np.zeros((len(data.member_ids), 0), dtype=np.float32),
        item_ids=data.item_ids,
        item_vectors=np.zeros((len(data.item_ids), 0), dtype=np.float32),
        item_biases=biases.astype(np.float32),
        repeat=totals,
        repeat_weight=1.0,
        name=NAME,
    )


def smallest_gap(most_bought: float) -> float:
    """The smallest difference between `log1p` of two different whole counts ≤ `most_bought`
    (and 0, never bought): log1p(n) − log1p(n − 1) for n = `most_bought`."""
    top = max(1.0, np.ceil(most_bought))
    return float(np.log1p(top) - np.log1p(top - 1))
