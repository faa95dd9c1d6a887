"""Purchases before a cutoff become exact, point-in-time member × item matrices."""

import math
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from perkrank.config import InteractionConfig
from perkrank.features.dataset import Dataset
from perkrank.features.interactions import build_training_data, cutoff_features
from perkrank.features.member_features import describe_members, history_at
from perkrank.features.training_data import TrainingData

CUTOFF = datetime(2025, 7, 1)

PARTNERS = [
    ("P1", "federal", (), ("Grocery", "Fuel")),
    ("P2", "local", ("north",), ("Beauty",)),
    ("P3", "federal", (), ("Travel",)),
]
MEMBERS = [
    ("m1", "north", "gold", "2024-01-01"),
    ("m2", "south", "base", "2025-03-01"),
    ("m3", "north", "silver", "2025-06-01"),
]
PURCHASES = [
    ("m1", "2025-06-01", "P1", "Grocery", 10.0),  # 30 days before the cutoff
    ("m1", "2025-03-03", "P1", "Grocery", 20.0),  # 120 days
    ("m1", "2025-06-30 12:00", "P2", "Beauty", 5.0),  # half a day
    ("m2", "2025-05-02", "P1", "Fuel", 40.0),  # 60 days
    ("m2", "2025-07-03", "P3", "Travel", 99.0),  # after the cutoff
]
OFFERS = [("O1", "P3", "Travel"), ("O2", "P1", "Grocery")]
ITEMS = ["P1|Fuel", "P1|Grocery", "P2|Beauty", "P3|Travel"]


def make_dataset(members=MEMBERS, purchases=PURCHASES, partners=PARTNERS, offers=OFFERS):
    """A validated Dataset from short rows (dtypes as features/dataset.py describes)."""
    member_ids, regions, tiers, signups = zip(*members, strict=True)
    buyer_ids, times, partner_ids, categories, amounts = zip(*purchases, strict=True)
    return Dataset(
        members=pd.DataFrame(
            {
                "member_id": member_ids,
                "region": regions,
                "tier": tiers,
                "birth_date": pd.to_datetime([None] * len(members)),
                "signup_date": pd.to_datetime(signups),
            }
        ),
        purchases=pd.DataFrame(
            {
                "member_id": buyer_ids,
                "ts": pd.to_datetime(times, format="ISO8601"),
                "partner_id": partner_ids,
                "category": categories,
                "amount": np.array(amounts, dtype=float),
                "channel": "app",
            }
        ),
        partners=pd.DataFrame(
            {
                "partner_id": [row[0] for row in partners],
                "name": [f"Partner {row[0]}" for row in partners],
                "scope": [row[1] for row in partners],
                "regions": [row[2] for row in partners],
                "categories": [row[3] for row in partners],
            }
        ),
        offers=pd.DataFrame(
            {
                "offer_id": [row[0] for row in offers],
                "partner_id": [row[1] for row in offers],
                "category": [row[2] for row in offers],
                "title": "Offer",
                "regions": [()] * len(offers),
                "min_tier": "base",
                "valid_from": pd.to_datetime(["2025-07-01"] * len(offers)),
                "valid_to": pd.to_datetime(["2025-07-31"] * len(offers)),
                "budget": pd.array([None] * len(offers), dtype="Int64"),
                "reward": "10%",
            }
        ),
    )


def build(weighting="count", half_life_days=None, dataset=None):
    config = InteractionConfig(weighting=weighting, half_life_days=half_life_days)
    return build_training_data(dataset or make_dataset(), CUTOFF, config)


def assert_same_training_data(left: TrainingData, right: TrainingData):
    np.testing.assert_array_equal(left.member_ids, right.member_ids)
    np.testing.assert_array_equal(left.item_ids, right.item_ids)
    for name in ("user_items", "purchase_counts"):
        np.testing.assert_array_equal(getattr(left, name).indptr, getattr(right, name).indptr)
        np.testing.assert_array_equal(getattr(left, name).indices, getattr(right, name).indices)
        np.testing.assert_array_equal(getattr(left, name).data, getattr(right, name).data)
    assert left.member_features == right.member_features
    assert left.item_features == right.item_features
    np.testing.assert_array_equal(left.member_segments, right.member_segments)


def test_rows_are_members_who_bought_before_the_cutoff_and_columns_include_offer_items():
    data = build()

    assert data.member_ids.tolist() == ["m1", "m2"]
    assert data.item_ids.tolist() == ITEMS
    assert data.user_items.shape == (2, 4)
    assert data.purchase_counts[:, ITEMS.index("P3|Travel")].nnz == 0


def test_plain_counts_sum_purchases_per_member_and_item():
    data = build("count", half_life_days=None)

    expected = [[0, 2, 1, 0], [1, 0, 0, 0]]
    np.testing.assert_array_equal(data.purchase_counts.toarray(), expected)
    np.testing.assert_array_equal(data.user_items.toarray(), expected)


def test_counts_halve_every_half_life_before_the_cutoff():
    data = build("count", half_life_days=120)

    grocery = 2 ** (-30 / 120) + 0.5
    beauty = 2 ** (-0.5 / 120)
    fuel = 2 ** (-60 / 120)
    expected = [[0, grocery, beauty, 0], [fuel, 0, 0, 0]]
    np.testing.assert_allclose(data.purchase_counts.toarray(), expected, rtol=1e-6)


def test_amount_weighting_is_log1p_of_recency_weighted_spend():
    data = build("amount", half_life_days=120)

    grocery = math.log1p(10 * 2 ** (-30 / 120) + 20 * 0.5)
    beauty = math.log1p(5 * 2 ** (-0.5 / 120))
    fuel = math.log1p(40 * 2 ** (-60 / 120))
    expected = [[0, grocery, beauty, 0], [fuel, 0, 0, 0]]
    np.testing.assert_allclose(data.user_items.toarray(), expected, rtol=1e-6)


def test_bm25_weights_items_by_members_as_implicit_does_for_als():
    config = InteractionConfig(weighting="bm25", half_life_days=None, bm25_k1=100, bm25_b=0.8)
    data = build_training_data(make_dataset(), CUTOFF, config)

    # items × members: idf per member (4 items, m1 bought 2, m2 bought 1), length per item.
    idf = {"m1": math.log(4) - math.log(3), "m2": math.log(4) - math.log(2)}
    item_totals = [1, 2, 1, 0]
    average = sum(item_totals) / 4

    def bm25(count, member_id, item):
        length_norm = 0.2 + 0.8 * item_totals[item] / average
        return count * 101 / (100 * length_norm + count) * idf[member_id]

    expected = [[0, bm25(2, "m1", 1), bm25(1, "m1", 2), 0], [bm25(1, "m2", 0), 0, 0, 0]]
    np.testing.assert_allclose(data.user_items.toarray(), expected, rtol=1e-6)


@pytest.mark.parametrize("weighting", ["bm25", "tfidf"])
def test_reweighting_keeps_the_sparsity_pattern_of_the_counts(weighting):
    data = build(weighting, half_life_days=120)

    np.testing.assert_array_equal(data.user_items.indptr, data.purchase_counts.indptr)
    np.testing.assert_array_equal(data.user_items.indices, data.purchase_counts.indices)
    assert (data.user_items.data > 0).all()


@pytest.mark.parametrize("weighting", ["bm25", "tfidf"])
def test_member_who_bought_every_item_keeps_positive_weights(weighting):
    # implicit's idf for a member who bought all 4 items is log(4) - log(5) < 0.
    purchases = [("m1", "2025-06-01", "P1", category, 1.0) for category in ("Grocery", "Fuel")]
    purchases += [
        ("m1", "2025-06-01", "P2", "Beauty", 1.0),
        ("m1", "2025-06-01", "P3", "Travel", 1.0),
    ]

    data = build(weighting, dataset=make_dataset(purchases=purchases))

    assert data.user_items.nnz == 4
    assert (data.user_items.data > 0).all()


@pytest.mark.parametrize("weighting", ["count", "amount", "bm25", "tfidf"])
def test_matrices_are_canonical_float32_csr(weighting):
    data = build(weighting, half_life_days=120)

    for matrix in (data.user_items, data.purchase_counts):
        assert matrix.format == "csr"
        assert matrix.dtype == np.float32
        assert matrix.has_canonical_format
        assert (matrix.data != 0).all()


def test_member_and_item_features_and_segments_follow_rows_and_columns():
    data = build(half_life_days=120)
    table = describe_members(history_at(make_dataset(), CUTOFF), half_life_days=120)

    assert data.member_features == [table["m1"], table["m2"]]
    assert data.item_features[ITEMS.index("P3|Travel")] == [
        "partner=P3",
        "category=Travel",
        "scope=federal",
    ]
    assert data.item_features[ITEMS.index("P2|Beauty")][2] == "scope=local"
    assert data.member_segments.tolist() == ["north|gold", "south|base"]


def test_nothing_at_or_after_the_cutoff_changes_the_output():
    changed = make_dataset(
        members=[
            *MEMBERS,
            ("m4", "east", "vip", "2025-07-01"),  # signs up at the cutoff
            ("m5", "east", "vip", "2025-08-01"),
        ],
        purchases=[
            *PURCHASES[:-1],
            ("m2", "2025-07-03", "P3", "Travel", 1.0),  # a later purchase, changed
            ("m1", "2025-07-01", "P1", "Fuel", 50.0),  # exactly at the cutoff
            ("m3", "2025-09-01", "P1", "Pets", 7.0),  # a new item, later
            ("m4", "2025-06-15", "P1", "Grocery", 3.0),  # before its own signup
            ("m5", "2025-08-02", "P2", "Beauty", 3.0),
        ],
    )
    for weighting in ("count", "amount", "bm25", "tfidf"):
        config = InteractionConfig(weighting=weighting, half_life_days=120)
        assert_same_training_data(
            build_training_data(make_dataset(), CUTOFF, config),
            build_training_data(changed, CUTOFF, config),
        )
    assert cutoff_features(changed, CUTOFF, InteractionConfig()).member_features == (
        cutoff_features(make_dataset(), CUTOFF, InteractionConfig()).member_features
    )
    assert items_bought_before(changed, CUTOFF) == items_bought_before(make_dataset(), CUTOFF)


def items_bought_before(dataset, cutoff):
    return cutoff_features(dataset, cutoff, InteractionConfig()).items_bought_before


def test_cutoff_features_share_one_history():
    config = InteractionConfig(half_life_days=120)
    features = cutoff_features(make_dataset(), CUTOFF, config)
    assert features.member_features == describe_members(history_at(make_dataset(), CUTOFF), 120)
    assert_same_training_data(features.data, build_training_data(make_dataset(), CUTOFF, config))


def test_items_bought_before_lists_each_members_items():
    assert items_bought_before(make_dataset(), CUTOFF) == {
        "m1": frozenset({"P1|Grocery", "P2|Beauty"}),
        "m2": frozenset({"P1|Fuel"}),
    }


def test_cutoff_before_every_purchase_gives_no_rows_but_keeps_offer_items():
    config = InteractionConfig(weighting="count")
    data = build_training_data(make_dataset(), datetime(2023, 1, 1), config)

    assert data.member_ids.tolist() == []
    assert data.item_ids.tolist() == ["P1|Grocery", "P3|Travel"]
    assert data.user_items.shape == (0, 2)
    assert items_bought_before(make_dataset(), datetime(2023, 1, 1)) == {}
