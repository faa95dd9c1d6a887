"""Ranking metrics from ranked relevance flags."""

import math

import numpy as np
import pytest

from perkrank.training.metrics import (
    average_precision_at_k,
    catalog_coverage,
    hit_rate_at_k,
    local_share_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
)

HITS = np.array([[True, False, True, False, False]])


def test_precision_divides_hits_in_top_k_by_k():
    assert precision_at_k(HITS, 5)[0] == pytest.approx(2 / 5)
    assert precision_at_k(HITS, 2)[0] == pytest.approx(1 / 2)


def test_recall_divides_hits_in_top_k_by_all_relevant():
    assert recall_at_k(HITS, np.array([3]), 5)[0] == pytest.approx(2 / 3)
    assert recall_at_k(HITS, np.array([3]), 2)[0] == pytest.approx(1 / 3)


def test_ndcg_discounts_by_position_against_ideal_ranking():
    dcg = 1 + 1 / math.log2(4)
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(HITS, np.array([3]), 5)[0] == pytest.approx(dcg / ideal)
    assert ndcg_at_k(HITS, np.array([3]), 2)[0] == pytest.approx(1 / (1 + 1 / math.log2(3)))


def test_average_precision_sums_precision_at_relevant_positions():
    assert average_precision_at_k(HITS, np.array([3]), 5)[0] == pytest.approx((1 + 2 / 3) / 3)
    assert average_precision_at_k(HITS, np.array([3]), 2)[0] == pytest.approx(1 / 2)


def test_ndcg_and_map_normalize_by_k_when_more_offers_are_relevant_than_k():
    hits = np.array([[True, True, False]])
    assert ndcg_at_k(hits, np.array([10]), 2)[0] == pytest.approx(1.0)
    assert average_precision_at_k(hits, np.array([10]), 2)[0] == pytest.approx(1.0)
    assert recall_at_k(hits, np.array([10]), 2)[0] == pytest.approx(0.2)


def test_hit_rate_is_one_only_when_a_relevant_offer_is_in_top_k():
    hits = np.array([[False, True], [False, False]])
    assert hit_rate_at_k(hits, 2).tolist() == [1.0, 0.0]
    assert hit_rate_at_k(hits, 1).tolist() == [0.0, 0.0]


def test_metrics_count_missing_positions_as_misses_when_fewer_candidates_than_k():
    hits = np.array([[True]])
    assert precision_at_k(hits, 5)[0] == pytest.approx(1 / 5)
    assert ndcg_at_k(hits, np.array([1]), 5)[0] == pytest.approx(1.0)


def test_catalog_coverage_counts_distinct_shown_offers_over_candidates():
    top_offer_rows = np.array([[0, 1, -1], [1, 2, -1]])
    assert catalog_coverage(top_offer_rows, 2, 6) == pytest.approx(3 / 6)
    assert catalog_coverage(top_offer_rows, 1, 6) == pytest.approx(2 / 6)
    assert catalog_coverage(top_offer_rows, 3, 6) == pytest.approx(3 / 6)


def test_local_share_is_local_offers_over_offers_shown():
    top_offer_rows = np.array([[0, 1, 2], [1, -1, -1], [-1, -1, -1]])
    is_local = np.array([True, False, True])
    assert local_share_at_k(top_offer_rows, 3, is_local).tolist() == pytest.approx([2 / 3, 0, 0])
    assert local_share_at_k(top_offer_rows, 1, is_local).tolist() == [1.0, 0.0, 0.0]
