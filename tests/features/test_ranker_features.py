"""Ranker features of hand-made purchases: exact values, and nothing after the cutoff counts.

Cutoff 2025-07-01 (midnight). Ages in days at the cutoff:
  m1 (north, signed up 2025-01-01): A on 30 Jun (age 1), twice on 20 Jun (11), 1 Apr (91);
     B on 2 May (60).
  m2 (south, signed up 2025-03-01): A on 1 Jun (30) and 11 Jun (20).
  after the cutoff: m1 buys B, m2 buys C (an item nobody bought before).
  m3 signs up after the cutoff.
A = P1|food, B = P2|toys, C = P3|food.
"""

from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from perkrank.features import ranker_features
from perkrank.features.dataset import Dataset
from perkrank.features.ids import IdMap
from perkrank.features.member_features import history_at
from perkrank.features.ranker_features import FEATURE_NAMES, pair_features, purchase_stats
from perkrank.features.vocabulary import item_id

CUTOFF = datetime(2025, 7, 1)
A, B, C = item_id("P1", "food"), item_id("P2", "toys"), item_id("P3", "food")
BEFORE = [
    ("m1", "2025-06-30 10:00", "P1", "food"),
    ("m1", "2025-06-20 09:00", "P1", "food"),
    ("m1", "2025-06-20 15:00", "P1", "food"),
    ("m1", "2025-04-01 12:00", "P1", "food"),
    ("m1", "2025-05-02 12:00", "P2", "toys"),
    ("m2", "2025-06-01 12:00", "P1", "food"),
    ("m2", "2025-06-11 12:00", "P1", "food"),
]
AFTER = [
    ("m1", "2025-07-02 12:00", "P2", "toys"),
    ("m2", "2025-07-05 12:00", "P3", "food"),
    ("m3", "2025-07-05 12:00", "P1", "food"),
]


def make_dataset(purchase_rows) -> Dataset:
    members = pd.DataFrame(
        {
            "member_id": ["m1", "m2", "m3"],
            "region": ["north", "south", "north"],
            "tier": "base",
            "birth_date": pd.to_datetime([None] * 3),
            "signup_date": pd.to_datetime(["2025-01-01", "2025-03-01", "2025-07-03"]),
        }
    )
    purchases = pd.DataFrame(purchase_rows, columns=["member_id", "ts", "partner_id", "category"])
    purchases["ts"] = pd.to_datetime(purchases["ts"])
    purchases["amount"] = 1.0
    purchases["channel"] = "web"
    return Dataset(members=members, purchases=purchases, partners=None, offers=None)


def features_of(purchase_rows, pairs, cutoff=CUTOFF) -> list[dict[str, float]]:
    """Features of (member id, item id) pairs as dicts; unknown ids become row -1."""
    stats = purchase_stats(history_at(make_dataset(purchase_rows), cutoff))
    members = IdMap(stats.member_ids).rows([member for member, _ in pairs])
    items = IdMap(stats.item_ids).rows([item for _, item in pairs])
    values = pair_features(stats, members, items)
    return [dict(zip(FEATURE_NAMES, row.tolist(), strict=True)) for row in values]


def assert_features(actual: dict[str, float], expected: dict[str, float]) -> None:
    for name, value in expected.items():
        if np.isnan(value):
            assert np.isnan(actual[name]), name
        else:
            assert actual[name] == pytest.approx(value), name


M1 = {
    "member_purchases": 5,
    "member_days": 4,
    "member_items": 2,
    "member_tenure_days": 181,
    "member_gap": 90 / 3,
    "days_since_visit": 1,
    "since_visit_over_member_gap": 1 / 30,
}
ITEM_A = {
    "item_count": 6,
    "item_count_30d": 5,
    "item_count_90d": 5,
    "item_count_365d": 6,
    "item_trend": np.log(6 / (5 / 3 + 1)),
    "item_buyers": 2,
    "item_repurchase_rate": 1.0,
    "item_gap": (45 + 10) / 2,
    "item_age_days": 91,
}


def test_a_repeat_pair_gets_its_own_counts_recency_and_gaps():
    (m1_a,) = features_of(BEFORE + AFTER, [("m1", A)])
    expected = {
        "own_count": 4,
        "own_count_30d": 3,
        "own_count_90d": 3,
        "own_count_365d": 4,
        "own_days": 3,
        "own_share": 4 / 5,
        "days_since_own": 1,
        "since_own_over_own_gap": 1 / 45,
        "since_own_over_member_gap": 1 / 30,
        "since_own_over_item_gap": 1 / 27.5,
        "own_category_share": 4 / 5,
        "regional_share": (4 + 20 * 6 / 7) / (5 + 20),
    }
    assert_features(m1_a, {**expected, **M1, **ITEM_A})


def test_an_item_the_member_never_bought_has_zero_counts_and_undefined_recency():
    (m2_b,) = features_of(BEFORE + AFTER, [("m2", B)])
    expected = {
        "own_count": 0,
        "own_count_30d": 0,
        "own_days": 0,
        "own_share": 0.0,
        "days_since_own": np.nan,
        "since_own_over_own_gap": np.nan,
        "since_own_over_item_gap": np.nan,
        "own_category_share": 0.0,
        "item_count": 1,
        "item_count_30d": 0,
        "item_count_90d": 1,
        "item_trend": np.log(1 / (1 / 3 + 1)),
        "item_buyers": 1,
        "item_repurchase_rate": 0.0,
        "item_gap": np.nan,
        "item_age_days": 60,
        "regional_share": (0 + 20 * 1 / 7) / (2 + 20),
        "member_purchases": 2,
        "member_days": 2,
        "member_tenure_days": 122,
        "member_gap": 10,
        "days_since_visit": 20,
        "since_visit_over_member_gap": 2.0,
    }
    assert_features(m2_b, expected)


def test_unknown_items_and_members_get_zero_counts_and_nan_descriptions():
    unknown_item, unknown_member = features_of(BEFORE + AFTER, [("m1", C), ("m3", A)])
    assert_features(
        unknown_item,
        {
            "own_count": 0,
            "item_count": 0,
            "item_trend": 0.0,
            "item_buyers": 0,
            "item_repurchase_rate": np.nan,
            "item_age_days": np.nan,
            "regional_share": 0.0,
            "own_category_share": np.nan,
            **M1,
        },
    )
    assert_features(
        unknown_member,
        {
            "own_count": 0,
            "own_share": np.nan,
            "member_purchases": np.nan,
            "member_gap": np.nan,
            "regional_share": 0.0,
            **ITEM_A,
        },
    )


def test_purchases_after_the_cutoff_change_nothing():
    pairs = [("m1", A), ("m1", B), ("m2", A), ("m2", B)]
    with_future = np.array([list(row.values()) for row in features_of(BEFORE + AFTER, pairs)])
    without = np.array([list(row.values()) for row in features_of(BEFORE, pairs)])
    np.testing.assert_array_equal(with_future, without)


def test_a_later_cutoff_sees_the_later_purchases():
    (m1_b,) = features_of(BEFORE + AFTER, [("m1", B)], cutoff=datetime(2025, 7, 3))
    assert m1_b["own_count"] == 2
    assert m1_b["days_since_own"] == 1
    assert m1_b["own_count_30d"] == 1


@pytest.mark.parametrize(
    ("rows", "columns", "n_rows", "n_columns"),
    [
        ([0, 0, 2, 1, 2, 2], [1, 1, 0, 2, 0, 1], 3, 3),  # 9 cells > 6 pairs: sparse
        ([0, 0, 2, 1, 2, 2], [1, 1, 0, 0, 0, 1], 3, 2),  # 6 cells = 6 pairs: dense
        ([1, 1], [0, 0], 4, 1),  # trailing rows without pairs
        ([], [], 2, 0),
    ],
)
def test_count_matrix_counts_each_pair_densely_or_sparsely(rows, columns, n_rows, n_columns):
    rows, columns = np.asarray(rows, dtype=np.int64), np.asarray(columns, dtype=np.int64)
    counted = ranker_features._count_matrix(rows, columns, n_rows, n_columns)
    expected = np.zeros((n_rows, n_columns))
    np.add.at(expected, (rows, columns), 1.0)
    assert counted.shape == (n_rows, n_columns) and counted.dtype == np.float64
    np.testing.assert_array_equal(counted.toarray(), expected)
