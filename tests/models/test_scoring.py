"""The score formula: member and item vectors (learned or from features), repeats, top-k."""

import numpy as np
import pytest
import scipy.sparse as sp

from perkrank.models import scoring
from perkrank.models.factors import Factors


def small_factors(**overrides) -> Factors:
    """Two members, three items, dim 2, with member and item feature vectors and repeats."""
    values = {
        "member_ids": ["m1", "m2"],
        "member_vectors": [[1.0, 0.0], [0.5, 2.0]],
        "item_ids": ["i1", "i2", "i3"],
        "item_vectors": [[1.0, 1.0], [0.0, 2.0], [3.0, -1.0]],
        "item_biases": [0.1, 0.2, 0.3],
        "member_feature_ids": ["region=north", "tier=gold"],
        "member_feature_vectors": [[1.0, 2.0], [0.25, -1.0]],
        "item_feature_ids": ["partner=P1", "category=Food"],
        "item_feature_vectors": [[2.0, 0.0], [0.0, 1.0]],
        "item_feature_biases": [0.5, -0.25],
        "repeat": sp.csr_matrix([[3.0, 0.0, 0.0], [0.0, 0.0, 1.0]]),
        "repeat_weight": 0.5,
        "name": "test",
    }
    return Factors(**(values | overrides))


MEMBER_VECTORS = np.array([[1.0, 0.0], [0.5, 2.0]])
ITEM_VECTORS = np.array([[1.0, 1.0], [0.0, 2.0], [3.0, -1.0]])
REPEAT = np.array([[3.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
EXPECTED = MEMBER_VECTORS @ ITEM_VECTORS.T + [0.1, 0.2, 0.3] + 0.5 * np.log1p(REPEAT)


def test_known_scores_are_dot_product_plus_bias_plus_weighted_log_repeat():
    known = scoring.known_scores(small_factors(), np.arange(2), np.arange(3))
    np.testing.assert_allclose(known, EXPECTED, rtol=1e-6)


def test_single_member_and_batch_forms_agree_with_the_formula():
    factors = small_factors()
    items = scoring.item_inputs(factors, ["i1", "i2", "i3"], [[], [], []])
    members = scoring.member_vectors(factors, ["m1", "m2"], [[], []])
    repeat = scoring.repeat_matrix(factors, np.arange(2), items.rows).toarray()
    batch = scoring.batch_scores(members, items.vectors, items.biases, repeat)
    np.testing.assert_allclose(batch, EXPECTED, rtol=1e-6)
    for row, member_id in enumerate(["m1", "m2"]):
        one = scoring.scores(
            scoring.member_vector(factors, member_id, []),
            items.vectors,
            items.biases,
            scoring.repeat_scores(factors, row, items.rows),
        )
        np.testing.assert_allclose(one, EXPECTED[row], rtol=1e-6)


def test_unseen_member_is_the_sum_of_its_known_feature_vectors():
    factors = small_factors()
    vector = scoring.member_vector(factors, "new", ["region=north", "tier=gold", "segment=x"])
    np.testing.assert_allclose(vector, [1.25, 1.0])
    np.testing.assert_array_equal(scoring.member_vector(factors, None, ["nothing=known"]), [0, 0])


def test_known_member_keeps_its_learned_vector_whatever_its_features():
    vector = scoring.member_vector(small_factors(), "m2", ["region=north"])
    np.testing.assert_array_equal(vector, [0.5, 2.0])


def test_unseen_item_vector_and_bias_are_sums_over_its_known_features():
    items = scoring.item_inputs(
        small_factors(), ["i2", "new"], [["partner=P1"], ["partner=P1", "category=Food", "x=y"]]
    )
    np.testing.assert_allclose(items.vectors, [[0.0, 2.0], [2.0, 1.0]])
    np.testing.assert_allclose(items.biases, [0.2, 0.25])
    np.testing.assert_array_equal(items.rows, [1, -1])


def test_repeat_covers_only_known_members_and_known_items():
    factors = small_factors()
    np.testing.assert_allclose(
        scoring.repeat_scores(factors, 0, np.array([0, 1, -1])), [0.5 * np.log1p(3.0), 0.0, 0.0]
    )
    np.testing.assert_array_equal(scoring.repeat_scores(factors, None, np.array([0])), [0.0])
    block = scoring.repeat_matrix(factors, np.array([-1, 0]), np.array([0, -1, 2]))
    np.testing.assert_allclose(block.toarray(), [[0, 0, 0], [0.5 * np.log1p(3.0), 0, 0]])
    assert (
        scoring.repeat_matrix(small_factors(repeat_weight=0.0), np.arange(2), np.arange(3)) is None
    )


def test_repeat_given_with_duplicate_entries_counts_them_summed_everywhere():
    duplicated = sp.csr_matrix(
        (np.array([1.0, 2.0]), np.array([0, 0]), np.array([0, 2, 2])), shape=(2, 3)
    )
    factors = small_factors(repeat=duplicated)
    expected = 0.5 * np.log1p(3.0)
    assert scoring.repeat_scores(factors, 0, np.array([0]))[0] == pytest.approx(expected)
    known = scoring.known_scores(factors, np.array([0]), np.array([0]))[0, 0]
    assert known == pytest.approx(1.0 * 1.0 + 0.1 + expected)


def test_zero_dimensional_factors_score_their_biases():
    factors = Factors(
        member_ids=["m1"],
        member_vectors=np.zeros((1, 0)),
        item_ids=["i1", "i2"],
        item_vectors=np.zeros((2, 0)),
        item_biases=[0.0, 0.5],
    )
    np.testing.assert_array_equal(
        scoring.known_scores(factors, np.array([0]), np.arange(2)), [[0.0, 0.5]]
    )
    np.testing.assert_array_equal(scoring.member_vector(factors, None, ["a=b"]), np.zeros(0))


def test_top_k_breaks_ties_by_lower_column():
    assert scoring.top_k(np.array([[1.0, 3.0, 3.0, 3.0, 0.0]]), 2).tolist() == [[1, 2]]
    assert scoring.top_k(np.zeros((1, 4)), 3).tolist() == [[0, 1, 2]]


def test_top_k_equals_a_stable_full_sort_with_many_ties():
    scores = np.random.default_rng(3).integers(0, 4, size=(200, 30)).astype(np.float32)
    expected = np.argsort(-scores, axis=1, kind="stable")
    assert np.array_equal(scoring.top_k(scores, 7), expected[:, :7])
    for row in range(20):
        assert scoring.best(scores[row], 7).tolist() == expected[row, :7].tolist()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_top_k_equals_a_stable_full_sort_with_and_without_ties_at_the_kth(dtype):
    """Rows without a tie across the k-th score (one partition) and rows with one, signed
    zeros and infinities among them, in one matrix."""
    rng = np.random.default_rng(5)
    scores = rng.normal(size=(300, 40)).astype(dtype)
    scores[::3] = rng.integers(-2, 3, size=(100, 40))
    scores[1::9, :5] = [np.inf, -np.inf, 0.0, -0.0, 0.0]
    expected = np.argsort(-scores, axis=1, kind="stable")
    for k in (1, 6, 39):
        assert np.array_equal(scoring.top_k(scores, k), expected[:, :k])
        assert np.array_equal(scoring.top_k(scores[1::3], k), expected[1::3, :k])


def test_best_of_fewer_scores_than_asked_orders_them_all():
    assert scoring.best(np.array([0.2, 0.5, 0.2]), 10).tolist() == [1, 0, 2]
    assert scoring.best(np.array([], dtype=np.float32), 3).tolist() == []
