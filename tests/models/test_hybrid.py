"""LightFM's exported factors score as LightFM predicts, for known and feature-built rows."""

from typing import get_args

import numpy as np
import pytest
import scipy.sparse as sp

from perkrank.config import LightFMConfig
from perkrank.models.hybrid import feature_matrix, lightfm_factors, train_lightfm
from perkrank.models.scoring import known_scores

CONFIG = LightFMConfig(no_components=4, epochs=10)


@pytest.fixture(scope="module")
def fitted(checkerboard):
    fit = train_lightfm(checkerboard.data, CONFIG, seed=5, threads=1)
    return fit, lightfm_factors(fit, checkerboard.data)


def feature_row(names: list[str], feature_ids: np.ndarray, identity_count: int) -> sp.csr_matrix:
    """A feature-matrix row holding only the known `names` (no identity column)."""
    columns = [
        identity_count + int(np.flatnonzero(feature_ids == n)[0]) for n in names if n in feature_ids
    ]
    return sp.csr_matrix(
        (np.ones(len(columns), dtype=np.float32), ([0] * len(columns), columns)),
        shape=(1, identity_count + len(feature_ids)),
    )


def test_feature_matrix_has_an_identity_column_per_row_then_one_per_feature_name():
    matrix, feature_ids = feature_matrix([["b", "a"], ["a"]])
    assert list(feature_ids) == ["a", "b"]
    np.testing.assert_array_equal(matrix.toarray(), [[1, 0, 1, 1], [0, 1, 1, 0]])


def test_feature_matrix_rows_without_features_and_repeated_names():
    matrix, feature_ids = feature_matrix([[], ["c", "a", "c"], []])
    assert list(feature_ids) == ["a", "c"]
    assert matrix.dtype == np.float32 and matrix.has_sorted_indices
    np.testing.assert_array_equal(
        matrix.toarray(), [[1, 0, 0, 0, 0], [0, 1, 0, 1, 2], [0, 0, 1, 0, 0]]
    )
    empty, no_ids = feature_matrix([])
    assert empty.shape == (0, 0) and no_ids.size == 0


def test_known_pairs_score_as_predict_less_the_member_bias(fitted):
    fit, factors = fitted
    member_count, item_count = len(factors.member_ids), len(factors.item_ids)
    member_rows = np.repeat(np.arange(member_count), item_count)
    item_rows = np.tile(np.arange(item_count), member_count)
    predicted = fit.model.predict(
        member_rows, item_rows, item_features=fit.item_features, user_features=fit.user_features
    ).reshape(member_count, item_count)
    member_biases, _ = fit.model.get_user_representations(fit.user_features)
    scores = known_scores(factors, np.arange(member_count), np.arange(item_count))
    np.testing.assert_allclose(scores, predicted - member_biases[:, None], rtol=1e-5, atol=1e-5)
    for member_row in range(member_count):
        assert np.all(np.diff(scores[member_row][np.argsort(-predicted[member_row])]) <= 1e-5)


def test_unseen_item_scores_as_predict_on_a_row_of_just_its_features(fitted, score):
    fit, factors = fitted
    names = ["partner=P77", "category=Travel", "scope=federal"]  # P77: a partner never seen
    item_count = len(factors.item_ids)
    item_features = sp.vstack(
        [fit.item_features, feature_row(names, fit.item_feature_ids, item_count)], format="csr"
    )
    member_count = len(factors.member_ids)
    predicted = fit.model.predict(
        np.arange(member_count),
        np.full(member_count, item_count),
        item_features=item_features,
        user_features=fit.user_features,
    )
    member_biases, _ = fit.model.get_user_representations(fit.user_features)
    for member_row, member_id in enumerate(factors.member_ids):
        scores = score(factors, member_id, [], ["P77|Travel"], [names])
        expected = predicted[member_row] - member_biases[member_row]
        np.testing.assert_allclose(scores, [expected], rtol=1e-5, atol=1e-5)


def test_unseen_member_scores_as_predict_on_a_row_of_just_its_features(fitted, checkerboard, score):
    fit, factors = fitted
    names = [*checkerboard.cold_member_features(1), "tenure=unknown-bucket"]
    member_count, item_count = len(factors.member_ids), len(factors.item_ids)
    cold_row = feature_row(names, fit.member_feature_ids, member_count)
    user_features = sp.vstack([fit.user_features, cold_row], format="csr")
    predicted = fit.model.predict(
        np.full(item_count, member_count),
        np.arange(item_count),
        item_features=fit.item_features,
        user_features=user_features,
    )
    cold_bias = fit.model.get_user_representations(cold_row)[0][0]
    items = list(factors.item_ids)
    scores = score(factors, "M999", names, items, checkerboard.data.item_features)
    np.testing.assert_allclose(scores, predicted - cold_bias, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("loss", get_args(LightFMConfig.model_fields["loss"].annotation))
def test_every_configurable_loss_fits(loss, checkerboard):
    config = LightFMConfig(no_components=2, loss=loss, epochs=1)
    factors = lightfm_factors(
        train_lightfm(checkerboard.data, config, seed=1, threads=1), checkerboard.data
    )
    assert np.isfinite(factors.item_vectors).all()


def test_on_epoch_sees_every_epoch_of_the_one_model_it_returns(checkerboard):
    seen = []

    def on_epoch(epoch, fit):
        seen.append((epoch, fit, fit.model.item_embeddings.copy()))

    fit = train_lightfm(
        checkerboard.data,
        LightFMConfig(no_components=2, epochs=3),
        seed=1,
        threads=1,
        on_epoch=on_epoch,
    )

    assert [epoch for epoch, _, _ in seen] == [1, 2, 3]
    assert all(kept is fit for _, kept, _ in seen)
    assert not np.array_equal(seen[0][2], seen[1][2])  # the model moved between epochs
    np.testing.assert_array_equal(seen[-1][2], fit.model.item_embeddings)
