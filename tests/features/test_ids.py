"""IdMap: external ids ↔ rows, one at a time and for whole arrays."""

import numpy as np
import pytest

from perkrank.features.ids import MISSING, IdMap


def test_ids_map_to_their_rows_and_back():
    ids = IdMap(["m3", "m1", "m2"])
    assert ids["m1"] == 1
    assert ids.get("m9") is None and ids.get("m9", -5) == -5
    assert "m2" in ids and "m9" not in ids
    assert list(ids) == ["m3", "m1", "m2"] and len(ids) == 3
    assert ids.rows(np.array(["m2", "m9", "m3"])).tolist() == [2, MISSING, 0]
    assert ids.external_ids[[2, 0]].tolist() == ["m2", "m3"]


def test_from_values_keeps_the_first_appearance_of_each_id():
    ids = IdMap.from_values(["b", "a", "b", "c", "a"])
    assert ids.external_ids.tolist() == ["b", "a", "c"]


def test_duplicate_ids_are_rejected():
    with pytest.raises(ValueError, match="unique"):
        IdMap(["a", "b", "a"])


def test_an_empty_map_finds_nothing():
    ids = IdMap([])
    assert len(ids) == 0
    assert ids.rows(["a"]).tolist() == [MISSING]
    assert ids.rows([]).dtype == np.int64
