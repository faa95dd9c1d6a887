"""BPR's exported factors score exactly as implicit's own model does."""

import numpy as np

from perkrank.config import BprConfig
from perkrank.models.bpr import bpr_factors, train_bpr
from perkrank.models.scoring import known_scores


def test_factors_reproduce_implicits_recommend_scores_and_ranking(checkerboard):
    data = checkerboard.data
    model = train_bpr(data, BprConfig(factors=4, iterations=30), seed=3, threads=1)
    factors = bpr_factors(model, data)
    every_item = np.arange(len(data.item_ids))
    for member_row in range(len(data.member_ids)):
        item_rows, implicit_scores = model.recommend(
            member_row,
            data.user_items[member_row],
            N=len(data.item_ids),
            filter_already_liked_items=False,
        )
        scores = known_scores(factors, np.array([member_row]), every_item)[0]
        np.testing.assert_allclose(scores[item_rows], implicit_scores, rtol=1e-5, atol=1e-6)
        assert np.all(np.diff(scores[item_rows]) <= 1e-6)


def test_unseen_member_scores_items_by_their_bias(checkerboard, score):
    data = checkerboard.data
    factors = bpr_factors(train_bpr(data, BprConfig(factors=4), seed=3, threads=1), data)
    items = list(data.item_ids)
    scores = score(factors, None, checkerboard.cold_member_features(0), items, data.item_features)
    np.testing.assert_array_equal(scores, factors.item_biases)
