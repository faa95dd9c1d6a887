"""own+pop: own purchase counts first, global popularity only breaks ties and fills."""

import numpy as np
import scipy.sparse as sp

from perkrank.features.training_data import TrainingData
from perkrank.models.own_pop import fit_own_pop, smallest_gap
from perkrank.models.scoring import known_scores, top_k

ITEMS = ["A", "B", "C", "D", "E", "F"]


def training_data(totals: list[list[float]], decayed: list[list[float]]) -> TrainingData:
    members = [f"m{row}" for row in range(len(totals))]
    return TrainingData(
        member_ids=np.array(members),
        item_ids=np.array(ITEMS),
        user_items=sp.csr_matrix(np.array(decayed, dtype=np.float32)),
        purchase_counts=sp.csr_matrix(np.array(decayed, dtype=np.float32)),
        purchase_totals=sp.csr_matrix(np.array(totals, dtype=np.float32)),
        member_features=[[] for _ in members],
        item_features=[[] for _ in ITEMS],
        member_segments=np.array(["all"] * len(members)),
    )


def ranked(data: TrainingData) -> list[list[str]]:
    factors = fit_own_pop(data)
    scores = known_scores(factors, np.arange(len(data.member_ids)), np.arange(len(ITEMS)))
    return [[ITEMS[column] for column in row] for row in top_k(scores, len(ITEMS))]


def test_own_counts_first_then_popularity_breaks_ties_and_fills():
    # Popularity (column totals): A 3, B 1, C 2, D 1000, E 20, F 0.
    totals = [
        [3, 1, 1, 0, 0, 0],  # m0: A three times, B and C once each
        [0, 0, 1, 0, 0, 0],  # m1: C once
        [0, 0, 0, 1000, 20, 0],  # the crowd that makes D and E popular
    ]
    # Recency decay would put B first for m0: own+pop must ignore it.
    decayed = [[0.1, 5.0, 0.1, 0, 0, 0], [0, 0, 1, 0, 0, 0], [0, 0, 0, 1, 1, 0]]
    rankings = ranked(training_data(totals, decayed))
    assert rankings[0] == ["A", "C", "B", "D", "E", "F"]
    assert rankings[1] == ["C", "D", "E", "A", "B", "F"]


def test_one_more_purchase_beats_any_popularity_even_for_large_counts():
    totals = [
        [1000, 999, 0, 0, 0, 0],  # m0: A one purchase more than B
        [0, 5000, 0, 0, 0, 0],  # B is far more popular than A
    ]
    rankings = ranked(training_data(totals, totals))
    assert rankings[0][:2] == ["A", "B"]


def test_popularity_bias_stays_below_the_smallest_count_gap():
    totals = [[7, 0, 0, 0, 0, 0], [0, 9, 1, 0, 0, 0]]
    factors = fit_own_pop(training_data(totals, totals))
    assert factors.item_biases.max() < smallest_gap(9)
    assert factors.item_biases[1] > factors.item_biases[0] > factors.item_biases[2] > 0
    assert smallest_gap(1) == np.log(2)
    assert np.isclose(smallest_gap(9), np.log(10 / 9))
