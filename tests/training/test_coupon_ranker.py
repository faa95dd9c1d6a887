"""The coupon ranker: its extra features on hand-made raw files (exact values, only data before
the campaign start), its training rows, and feature selection and fitting on made-up rows."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from perkrank.features.complete_journey import coupon_tables, read_raw
from perkrank.training import coupon_evaluation as ce
from perkrank.training import coupon_ranker as cr
from tests.features.complete_journey_raw import write_raw


@pytest.fixture
def tables(tmp_path: Path) -> ce.CouponTables:
    return coupon_tables(read_raw(write_raw(tmp_path / "raw")))


def test_coupon_features_of_campaign_two(tables: ce.CouponTables) -> None:
    index = ce.coupon_index(tables)
    task = ce.campaign_task(tables, index, "2", labels_before=None)
    features = cr.coupon_features(tables, index, task)
    assert set(features) == set(cr.FEATURES)
    assert features["product_share"].tolist() == [[1 / 3, 0], [0, 0]]
    assert features["product_lines"].tolist() == [[1, 0], [0, 0]]
    snack_days, pretzel_days = 54 + 0.5 / 24, 8 + 14 / 24
    assert features["product_recent"] == pytest.approx(
        np.array([[2 ** (-snack_days / 30), 0], [0, 0]])
    )
    both = 2 ** (-snack_days / 30) + 2 ** (-pretzel_days / 30)
    assert features["category_recent"] == pytest.approx(np.array([[both, 0], [0, 0]]))
    assert features["same_coupon"].tolist() == [[1, 0], [0, 0]]
    assert features["redemption_rate"].tolist() == [[0.5, 0], [0.5, 0]]
    assert features["product_reach"].tolist() == [[1, 0], [1, 0]]


def test_campaign_one_features_see_nothing_later(tables: ce.CouponTables) -> None:
    index = ce.coupon_index(tables)
    task = ce.campaign_task(tables, index, "1", labels_before=None)
    features = cr.coupon_features(tables, index, task)
    assert features["same_coupon"].tolist() == [[0, 0], [0, 0]]
    assert features["redemption_rate"].tolist() == [[0, 0], [0, 0]]
    assert features["product_lines"].tolist() == [[1, 0], [0, 0]]
    assert features["product_reach"].tolist() == [[1, 0], [1, 0]]


def test_training_rows_keep_redeeming_pairs_only(tables: ce.CouponTables) -> None:
    index = ce.coupon_index(tables)
    rows = cr.training_rows(tables, index, ["1", "2"], pd.Timestamp("2017-03-01"))
    assert rows.query_ids.tolist() == ["1/H10", "1/H10"]
    assert rows.labels.tolist() == [1.0, 0.0]
    assert rows.features.shape == (2, len(cr.FEATURES))
    assert rows.households.tolist() == ["H10", "H10"]


def test_query_matrices_pad_short_queries() -> None:
    scores, labels = cr.query_matrices(
        np.array([3.0, 1.0, 2.0, 5.0, 4.0]),
        np.array([True, False, False, False, True]),
        np.array(["b", "b", "b", "a", "a"]),
    )
    assert scores.tolist() == [[5.0, 4.0, -np.inf], [3.0, 1.0, 2.0]]
    assert labels.tolist() == [[False, True, False], [True, False, False]]


def test_household_folds_keep_a_household_together() -> None:
    households = np.array(["H1", "H2", "H1", "H3", "H2", "H1"])
    folds = cr.household_folds(households, 2, seed=0)
    assert folds[0] == folds[2] == folds[5]
    assert folds[1] == folds[4]
    assert set(folds) <= {0, 1}


def made_up_rows(queries: int = 60, coupons: int = 6, seed: int = 0) -> cr.TrainingRows:
    """One redeemed coupon per query; product_lines is high exactly on it, the rest noise."""
    rng = np.random.default_rng(seed)
    features = rng.random((queries * coupons, len(cr.FEATURES)))
    labels = np.zeros(queries * coupons)
    labels[np.arange(queries) * coupons + rng.integers(0, coupons, queries)] = 1.0
    features[:, cr.FEATURES.index("product_lines")] += 3 * labels
    query_ids = np.repeat([f"1/H{query}" for query in range(queries)], coupons)
    return cr.TrainingRows(features, labels, query_ids)


def test_forward_selection_starts_with_the_informative_feature() -> None:
    assert cr.select_features(made_up_rows())[0] == "product_lines"


def test_fitted_ranker_puts_the_redeemed_coupon_first() -> None:
    ranker = cr.fit(made_up_rows())
    test = made_up_rows(queries=10, seed=1)
    features = {
        name: test.features[:, column].reshape(10, 6) for column, name in enumerate(cr.FEATURES)
    }
    scores = cr.predict(ranker, features)
    labels = test.labels.reshape(10, 6) > 0
    assert ce.ranking_metrics(scores, labels)["ndcg@10"].tolist() == [1.0] * 10
