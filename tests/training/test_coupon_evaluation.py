"""Coupon ranking for the Complete Journey benchmark: tasks, coupon scores
from item scores, and the per-household metrics, on hand-made data with exact values."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from perkrank.features.complete_journey import coupon_tables, read_raw
from perkrank.training import coupon_evaluation as ce
from tests.features.complete_journey_raw import write_raw


@pytest.fixture
def tables(tmp_path: Path) -> ce.CouponTables:
    return coupon_tables(read_raw(write_raw(tmp_path / "raw")))


def test_campaign_task_labels_the_redemptions(tables: ce.CouponTables) -> None:
    index = ce.coupon_index(tables)
    task = ce.campaign_task(tables, index, "2", labels_before=None)
    assert task.campaign_type == "Type A"
    assert task.start == pd.Timestamp("2017-03-01")
    assert task.members.tolist() == ["H10", "H30"]
    assert task.coupon_upcs.tolist() == ["111", "333"]
    assert index.coupons.external_ids[task.coupon_rows].tolist() == ["2-111", "2-333"]
    assert task.labels.tolist() == [[False, False], [False, True]]


def test_labels_before_drops_later_redemptions(tables: ce.CouponTables) -> None:
    index = ce.coupon_index(tables)
    kept = ce.campaign_task(tables, index, "1", labels_before=pd.Timestamp("2017-01-21"))
    assert kept.labels.tolist() == [[True, False], [False, False]]
    dropped = ce.campaign_task(tables, index, "1", labels_before=pd.Timestamp("2017-01-20"))
    assert not dropped.labels.any()


def test_coupon_scores_max_and_mean_over_items() -> None:
    items = np.array([[1.0, 5.0, 3.0]])
    coupon_items = sp.csr_matrix(np.array([[1, 0, 1], [0, 1, 0], [0, 0, 0]], dtype=float))
    assert ce.coupon_scores(items, coupon_items, "max").tolist() == [[3.0, 5.0, -np.inf]]
    assert ce.coupon_scores(items, coupon_items, "mean").tolist() == [[2.0, 5.0, 0.0]]


def test_ranking_metrics_score_redeeming_rows_only() -> None:
    scores = np.array([[0.1, 0.9, 0.5], [1.0, 1.0, 0.0], [3.0, 2.0, 1.0], [0.0, 0.0, 0.0]])
    labels = np.array(
        [[True, False, False], [False, True, False], [False, False, False], [True, True, True]]
    )
    metrics = ce.ranking_metrics(scores, labels)
    assert metrics["ndcg@10"] == pytest.approx([0.5, 1 / np.log2(3), 1.0])
    assert metrics["recall@5"].tolist() == [1.0, 1.0, 1.0]
    assert metrics["recall@10"].tolist() == [1.0, 1.0, 1.0]
    assert metrics["auc"][:2].tolist() == [0.0, 0.75]
    assert np.isnan(metrics["auc"][2])
