"""Factors: the score formula, feature-built rows for the unseen, and saving."""

import json

import numpy as np
import pytest
import scipy.sparse as sp

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


def test_known_scores_are_dot_product_plus_bias_plus_weighted_log_repeat():
    factors = small_factors()
    member_vectors = np.array([[1.0, 0.0], [0.5, 2.0]])
    item_vectors = np.array([[1.0, 1.0], [0.0, 2.0], [3.0, -1.0]])
    repeat = np.array([[3.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    expected = member_vectors @ item_vectors.T + [0.1, 0.2, 0.3] + 0.5 * np.log1p(repeat)
    np.testing.assert_allclose(factors.score_known(np.arange(2), np.arange(3)), expected, rtol=1e-6)


def test_unseen_member_is_the_sum_of_its_known_feature_vectors():
    factors = small_factors()
    vector = factors.member_vector("new", ["region=north", "tier=gold", "segment=unknown"])
    np.testing.assert_allclose(vector, [1.25, 1.0])
    np.testing.assert_array_equal(factors.member_vector(None, ["nothing=known"]), [0.0, 0.0])


def test_known_member_keeps_its_learned_vector_whatever_its_features():
    np.testing.assert_array_equal(small_factors().member_vector("m2", ["region=north"]), [0.5, 2.0])


def test_unseen_item_vector_and_bias_are_sums_over_its_known_features():
    vectors, biases = small_factors().item_vectors_for(
        ["i2", "new"], [["partner=P1"], ["partner=P1", "category=Food", "scope=local"]]
    )
    np.testing.assert_allclose(vectors, [[0.0, 2.0], [2.0, 1.0]])
    np.testing.assert_allclose(biases, [0.2, 0.25])


def test_repeat_scores_cover_only_known_members_and_known_items():
    factors = small_factors()
    np.testing.assert_allclose(
        factors.repeat_scores("m1", np.array([0, 1, -1])), [0.5 * np.log1p(3.0), 0.0, 0.0]
    )
    np.testing.assert_array_equal(factors.repeat_scores("new", np.array([0, 2])), [0.0, 0.0])
    np.testing.assert_array_equal(factors.repeat_scores(None, np.array([0])), [0.0])


def test_save_then_load_restores_every_array_and_setting(tmp_path):
    factors = small_factors()
    loaded = Factors.load(factors.save(tmp_path / "factors"))
    for name in (
        "member_ids",
        "member_vectors",
        "item_ids",
        "item_vectors",
        "item_biases",
        "member_feature_ids",
        "member_feature_vectors",
        "item_feature_ids",
        "item_feature_vectors",
        "item_feature_biases",
    ):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(factors, name), err_msg=name)
    np.testing.assert_array_equal(loaded.repeat.toarray(), factors.repeat.toarray())
    assert (loaded.repeat_weight, loaded.name, loaded.dim) == (0.5, "test", 2)


def test_zero_dimensional_factors_without_features_survive_saving(tmp_path):
    factors = Factors(
        member_ids=["m1"],
        member_vectors=np.zeros((1, 0)),
        item_ids=["i1", "i2"],
        item_vectors=np.zeros((2, 0)),
        item_biases=[0.0, 0.0],
    )
    loaded = Factors.load(factors.save(tmp_path / "empty"))
    assert loaded.dim == 0 and loaded.repeat is None
    np.testing.assert_array_equal(loaded.score_known(np.array([0]), np.arange(2)), [[0.0, 0.0]])
    np.testing.assert_array_equal(loaded.member_vector(None, ["region=north"]), np.zeros(0))


def test_saved_arrays_load_without_pickles(tmp_path):
    directory = small_factors().save(tmp_path / "factors")
    with np.load(directory / "arrays.npz", allow_pickle=False) as arrays:
        assert arrays["member_ids"].dtype.kind == "U"


def test_loading_another_format_version_fails_naming_the_directory(tmp_path):
    directory = small_factors().save(tmp_path / "factors")
    meta = json.loads((directory / "factors.json").read_text())
    (directory / "factors.json").write_text(json.dumps(meta | {"format_version": 99}))
    with pytest.raises(ValueError, match="unsupported factors format 99"):
        Factors.load(directory)


@pytest.mark.parametrize(
    "overrides",
    [
        {"item_vectors": [[1.0, 1.0], [0.0, 2.0]]},
        {"item_biases": [0.1, 0.2]},
        {"member_feature_vectors": [[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]},
        {"item_feature_biases": [0.5]},
        {"repeat": sp.csr_matrix(np.zeros((2, 2)))},
    ],
)
def test_inconsistent_shapes_are_rejected(overrides):
    with pytest.raises(ValueError):
        small_factors(**overrides)


def test_repeat_given_with_duplicate_entries_counts_them_summed_everywhere():
    duplicated = sp.csr_matrix(
        (np.array([1.0, 2.0]), np.array([0, 0]), np.array([0, 2, 2])), shape=(2, 3)
    )
    factors = small_factors(repeat=duplicated)
    expected = 0.5 * np.log1p(3.0)
    assert factors.repeat_scores("m1", np.array([0]))[0] == pytest.approx(expected)
    known = factors.score_known(np.array([0]), np.array([0]))[0, 0]
    assert known == pytest.approx(1.0 * 1.0 + 0.1 + expected)


def test_numpy_repeat_weight_is_saved_as_a_plain_number(tmp_path):
    factors = small_factors(repeat_weight=np.float32(0.25))
    assert Factors.load(factors.save(tmp_path / "factors")).repeat_weight == 0.25
