"""Second-stage rankers learn an ordering from features and reload from their files alone."""

import numpy as np

from perkrank.models.ranker import (
    LinearRanker,
    fit_lambdarank,
    fit_linear,
    load_booster,
    save_booster,
)

NAMES = ("signal", "noise")


def ranking_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """40 queries of 10 rows; the label is 1 where `signal` is among a query's 3 largest."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(400, 2))
    features[rng.random(400) < 0.1, 1] = np.nan
    ranks = np.argsort(np.argsort(-features[:, 0].reshape(40, 10), axis=1), axis=1)
    return features, (ranks < 3).ravel().astype(float), np.full(40, 10)


def top3_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    top = np.argsort(-scores.reshape(40, 10), axis=1)[:, :3]
    return float(np.take_along_axis(labels.reshape(40, 10), top, axis=1).mean())


def test_lambdarank_learns_the_signal_and_reloads_from_text(tmp_path):
    features, labels, groups = ranking_data()
    small_leaves = {"min_data_in_leaf": 5}  # the default needs far more rows than these 400
    booster = fit_lambdarank(
        features, labels, groups, NAMES, rounds=100, seed=1, params=small_leaves
    )
    test_features, test_labels, _ = ranking_data(seed=1)
    assert top3_precision(booster.predict(test_features), test_labels) > 0.8  # random: 0.3
    loaded = load_booster(save_booster(booster, tmp_path / "model.txt"))
    np.testing.assert_array_equal(loaded.predict(test_features), booster.predict(test_features))


def test_linear_ranker_learns_the_signal_and_round_trips_through_json():
    features, labels, _ = ranking_data()
    linear = fit_linear(features, labels, NAMES, l2=1.0)
    assert linear.missing_columns == (1,)
    assert linear.weights[0] > 0
    test_features, test_labels, _ = ranking_data(seed=1)
    assert top3_precision(linear.predict(test_features), test_labels) > 0.9
    loaded = LinearRanker.from_json(linear.to_json())
    np.testing.assert_allclose(loaded.predict(test_features), linear.predict(test_features))


def test_linear_row_weights_scale_the_loss_against_the_penalty():
    """Weight 2 on every row is the same fit as the penalty halved; weight 0 drops a row."""
    features, labels, _ = ranking_data()
    doubled = fit_linear(features, labels, NAMES, l2=2.0, weights=np.full(len(labels), 2.0))
    halved = fit_linear(features, labels, NAMES, l2=1.0)
    np.testing.assert_allclose(doubled.predict(features), halved.predict(features), atol=1e-4)
    flipped = labels.copy()
    flipped[:200] = 1 - flipped[:200]  # the first 20 queries' labels turned upside down
    ignored = fit_linear(features, flipped, NAMES, weights=np.r_[np.zeros(200), np.ones(200)])
    test_features, test_labels, _ = ranking_data(seed=1)
    assert top3_precision(ignored.predict(test_features), test_labels) > 0.9
    unweighted = fit_linear(features, flipped, NAMES)
    assert top3_precision(unweighted.predict(test_features), test_labels) < 0.5
