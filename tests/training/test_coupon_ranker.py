"""The coupon ranker's training side: features of a campaign as of its start (exact values on
hand-made raw files, only earlier data), training rows, forward selection on a validation
split, and the penalty grid."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from perkrank.features.complete_journey import coupon_tables, read_raw
from perkrank.models.coupon_stage import FEATURES
from perkrank.training import coupon_evaluation as ce
from perkrank.training import coupon_ranker as cr
from tests.features.complete_journey_raw import write_raw


@pytest.fixture
def tables(tmp_path: Path) -> ce.CouponTables:
    return coupon_tables(read_raw(write_raw(tmp_path / "raw")))


def named(tables: ce.CouponTables, campaign_id: str) -> dict[str, list[list[float]]]:
    """Each feature of a campaign (members × coupons) as nested lists."""
    index = ce.coupon_index(tables)
    task = ce.campaign_task(tables, index, campaign_id, labels_before=None)
    values = cr.campaign_features(tables, index, task)
    return {name: values[:, :, column] for column, name in enumerate(FEATURES)}


def test_features_of_campaign_two_use_only_earlier_data(tables: ce.CouponTables) -> None:
    features = named(tables, "2")
    assert features["coupon_popularity"].tolist() == [[1, 0], [1, 0]]
    assert features["category_share"].tolist() == [[2 / 3, 0], [0, 0]]
    assert features["product_share"].tolist() == [[1 / 3, 0], [0, 0]]
    assert features["past_redemptions"].tolist() == [[1, 0], [0, 0]]
    assert features["coupon_size"].tolist() == [[1, 1], [1, 1]]
    assert features["product_lines"].tolist() == [[1, 0], [0, 0]]
    snack_days, pretzel_days = 54 + 0.5 / 24, 8 + 14 / 24
    assert features["product_recent"] == pytest.approx(
        np.array([[2 ** (-snack_days / 30), 0], [0, 0]])
    )
    both = 2 ** (-snack_days / 30) + 2 ** (-pretzel_days / 30)
    assert features["category_recent"] == pytest.approx(np.array([[both, 0], [0, 0]]))
    assert features["same_coupon"].tolist() == [[1, 0], [0, 0]]
    assert features["redemption_rate"].tolist() == [[0.5, 0], [0.5, 0]]


def test_campaign_one_features_see_nothing_later(tables: ce.CouponTables) -> None:
    features = named(tables, "1")
    assert features["category_share"].tolist() == [[1.0, 0.0], [0.0, 0.0]]
    assert features["coupon_popularity"].tolist() == [[0, 0], [0, 0]]
    assert features["coupon_size"].tolist() == [[2, 1], [2, 1]]
    assert features["same_coupon"].tolist() == [[0, 0], [0, 0]]
    assert features["past_redemptions"].tolist() == [[0, 0], [0, 0]]
    assert features["redemption_rate"].tolist() == [[0, 0], [0, 0]]
    assert features["product_lines"].tolist() == [[1, 0], [0, 0]]


def test_training_rows_keep_redeeming_pairs_only(tables: ce.CouponTables) -> None:
    index = ce.coupon_index(tables)
    rows = cr.training_rows(tables, index, ["1", "2"], pd.Timestamp("2017-03-01"))
    assert rows.query_ids.tolist() == ["1/H10", "1/H10"]
    assert rows.labels.tolist() == [1.0, 0.0]
    assert rows.types.tolist() == ["Type B", "Type B"]
    assert rows.features.shape == (2, len(FEATURES))
    every = cr.training_rows(
        tables, index, ["1", "2"], pd.Timestamp("2017-03-01"), redeeming_only=False
    )
    pairs = ["1/H10", "1/H20", "2/H10", "2/H30"]
    assert every.query_ids.tolist() == [pair for pair in pairs for _ in range(2)]


def test_training_rows_refuse_campaigns_without_redemptions(tables: ce.CouponTables) -> None:
    with pytest.raises(ValueError, match="no household redeemed"):
        cr.training_rows(tables, ce.coupon_index(tables), ["2"], pd.Timestamp("2017-03-01"))


def test_query_matrices_pad_short_queries() -> None:
    scores, labels = cr.query_matrices(
        np.array([3.0, 1.0, 2.0, 5.0, 4.0]),
        np.array([True, False, False, False, True]),
        np.array(["b", "b", "b", "a", "a"]),
    )
    assert scores.tolist() == [[5.0, 4.0, -np.inf], [3.0, 1.0, 2.0]]
    assert labels.tolist() == [[False, True, False], [True, False, False]]


def made_up_rows(queries: int = 60, coupons: int = 6, seed: int = 0) -> cr.TrainingRows:
    """One redeemed coupon per query; product_lines is high exactly on it, the rest noise;
    the first half of the queries Type A, the rest Type B."""
    rng = np.random.default_rng(seed)
    features = rng.random((queries * coupons, len(FEATURES)))
    labels = np.zeros(queries * coupons)
    labels[np.arange(queries) * coupons + rng.integers(0, coupons, queries)] = 1.0
    features[:, FEATURES.index("product_lines")] += 3 * labels
    query_ids = np.repeat([f"1/H{query:03d}" for query in range(queries)], coupons)
    types = np.where(np.arange(queries * coupons) < queries * coupons // 2, "Type A", "Type B")
    return cr.TrainingRows(features, labels, query_ids, types)


def test_forward_selection_starts_with_the_informative_feature() -> None:
    choice = cr.choose(made_up_rows(), made_up_rows(seed=1))
    assert choice.features[0] == "product_lines"
    assert set(choice.per_l2) == set(cr.L2_GRID)
    assert choice.score == max(score for _, score in choice.per_l2.values()) == 1.0


def test_group_ndcg_scores_each_type_group_apart() -> None:
    rows = made_up_rows(queries=4)
    perfect = rows.labels.copy()
    perfect[rows.types == "Type B"] *= -1  # Type B's redeemed coupons ranked last
    ndcg = cr.group_ndcg(perfect, rows)
    assert ndcg["Type A"] == 1.0
    assert ndcg["Type B/C"] == pytest.approx(1 / np.log2(7))
    assert cr.group_score(perfect, rows) == pytest.approx((1 + 1 / np.log2(7)) / 2)


def test_fitted_ranker_puts_the_redeemed_coupon_first() -> None:
    ranker = cr.fit(made_up_rows(), ("product_lines",), 1.0)
    test = made_up_rows(queries=10, seed=1)
    scores = ranker.predict(test.features[:, [FEATURES.index("product_lines")]])
    labels = test.labels.reshape(10, 6) > 0
    assert ce.ranking_metrics(scores.reshape(10, 6), labels)["ndcg@10"].tolist() == [1.0] * 10
