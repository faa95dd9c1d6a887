"""`BoughtItems`: the items each member bought, as a sparse matrix read like a dict of sets;
and the evaluation window's bought-before pairs built from it, against a member-by-member
reference over the plain dict."""

from datetime import date, datetime

import numpy as np
import pytest
import scipy.sparse as sp

from perkrank.config import InteractionConfig
from perkrank.features.bought_items import BoughtItems
from perkrank.features.interactions import cutoff_features
from perkrank.features.loader import load_dataset
from perkrank.features.offer_features import item_feature_table, offer_regions
from perkrank.features.synthetic import generate
from perkrank.training.window import prepare_window

BOUGHT = {"m3": frozenset({"b", "a"}), "m1": frozenset({"c"}), "m2": frozenset()}


def test_reads_as_the_mapping_it_was_built_from():
    bought = BoughtItems.from_mapping(BOUGHT)
    assert bought == {"m1": frozenset({"c"}), "m3": frozenset({"a", "b"})}
    assert list(bought) == ["m1", "m3"]
    assert len(bought) == 2
    assert bought.get("m2") is None
    assert "m2" not in bought
    assert bought.member_rows(np.array(["m3", "m2", "m9", "m1"])).tolist() == [1, -1, -1, 0]


def test_a_row_without_items_is_no_member():
    matrix = sp.csr_matrix(np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 2.0]], dtype=np.float32))
    bought = BoughtItems(np.array(["a", "b", "c"]), np.array(["i1", "i2"]), matrix)
    assert dict(bought) == {"a": frozenset({"i1"}), "c": frozenset({"i2"})}
    assert bought.member_rows(np.array(["b", "c"])).tolist() == [-1, 2]


def test_member_ids_must_be_sorted_and_unique():
    matrix = sp.csr_matrix((2, 1), dtype=np.float32)
    with pytest.raises(ValueError, match="sorted"):
        BoughtItems(np.array(["b", "a"]), np.array(["i"]), matrix)
    with pytest.raises(ValueError, match="sorted"):
        BoughtItems(np.array(["a", "a"]), np.array(["i"]), matrix)


def test_window_bought_before_equals_a_member_by_member_reference(tmp_path):
    generate(tmp_path, members=400, months=3, seed=3, start=date(2025, 1, 1))
    dataset = load_dataset(tmp_path)
    start, end = date(2025, 3, 1), date(2025, 4, 1)
    features = cutoff_features(
        dataset, datetime.combine(start, datetime.min.time()), InteractionConfig()
    )
    bought = features.items_bought_before
    assert isinstance(bought, BoughtItems)
    window = prepare_window(
        dataset,
        start,
        end,
        member_features=features.member_features,
        items_bought_before=bought,
        offer_regions=offer_regions(dataset),
        item_features=item_feature_table(dataset),
    )
    plain = dict(bought)  # frozensets of item ids, looked up member by member
    expected = {
        (int(member), int(offer))
        for group in window.groups
        for member in group.member_rows
        for offer in group.offer_rows
        if window.offer_items[offer] in plain.get(str(window.member_ids[member]), frozenset())
    }
    pairs = window.bought_before.tocoo()
    assert set(zip(pairs.row.tolist(), pairs.col.tolist(), strict=True)) == expected
    assert len(expected) > 10
    assert window.member_is_warm.tolist() == [m in plain for m in window.member_ids.tolist()]
    assert 0 < window.member_is_warm.sum() < len(window.member_ids)
