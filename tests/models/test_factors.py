"""Factors: shapes, lookups and saving (the score formula is tested in test_scoring)."""

import json

import numpy as np
import pytest
import scipy.sparse as sp

from perkrank.models.factors import Factors


def small_factors(**overrides) -> Factors:
    """Two members, three items, dim 2, with member and item feature vectors and repeats."""
    values = {
        "member_ids": ["m1", "m2"],
        "member_vectors": [[1.0, 0.0], [0.5, 2.0]],
        "item_ids": ["i1", "i2", "i3"],
        "item_vectors": [[1.0, 1.0], [0.0, 2.0], [3.0, -1.0]],
        "item_biases": [0.1, 0.2, 0.3],
        "member_feature_ids": ["region=north", "tier=gold"],
        "member_feature_vectors": [[1.0, 2.0], [0.25, -1.0]],
        "item_feature_ids": ["partner=P1", "category=Food"],
        "item_feature_vectors": [[2.0, 0.0], [0.0, 1.0]],
        "item_feature_biases": [0.5, -0.25],
        "repeat": sp.csr_matrix([[3.0, 0.0, 0.0], [0.0, 0.0, 1.0]]),
        "repeat_weight": 0.5,
        "name": "test",
    }
    return Factors(**(values | overrides))


def test_save_then_load_restores_every_array_and_setting(tmp_path):
    factors = small_factors()
    loaded = Factors.load(factors.save(tmp_path / "factors"))
    for name in (
        "member_ids",
        "member_vectors",
        "item_ids",
        "item_vectors",
        "item_biases",
        "member_feature_ids",
        "member_feature_vectors",
        "item_feature_ids",
        "item_feature_vectors",
        "item_feature_biases",
    ):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(factors, name), err_msg=name)
    np.testing.assert_array_equal(loaded.repeat.toarray(), factors.repeat.toarray())
    assert (loaded.repeat_weight, loaded.name, loaded.dim) == (0.5, "test", 2)


def test_zero_dimensional_factors_without_features_survive_saving(tmp_path):
    factors = Factors(
        member_ids=["m1"],
        member_vectors=np.zeros((1, 0)),
        item_ids=["i1", "i2"],
        item_vectors=np.zeros((2, 0)),
        item_biases=[0.0, 0.0],
    )
    loaded = Factors.load(factors.save(tmp_path / "empty"))
    assert loaded.dim == 0 and loaded.repeat is None
    assert loaded.member_vectors.shape == (1, 0) and loaded.item_vectors.shape == (2, 0)


def test_saved_arrays_load_without_pickles(tmp_path):
    directory = small_factors().save(tmp_path / "factors")
    member_ids = np.load(directory / "arrays" / "member_ids.npy", allow_pickle=False)
    assert member_ids.dtype.kind == "U"


def test_loaded_vectors_are_memory_mapped_not_copied(tmp_path):
    loaded = Factors.load(small_factors().save(tmp_path / "factors"))
    assert isinstance(loaded.item_vectors.base, np.memmap) or isinstance(
        loaded.item_vectors, np.memmap
    )
    assert not loaded.item_vectors.flags.writeable


def test_a_changed_array_file_fails_naming_it(tmp_path):
    directory = small_factors().save(tmp_path / "factors")
    path = directory / "arrays" / "item_biases.npy"
    payload = bytearray(path.read_bytes())
    payload[-1] ^= 0xFF
    path.write_bytes(bytes(payload))
    with pytest.raises(ValueError, match=r"item_biases\.npy: checksum mismatch"):
        Factors.load(directory)


def test_factors_saved_as_one_npz_still_load(tmp_path):
    factors = small_factors()
    directory = tmp_path / "old"
    directory.mkdir()
    arrays = {
        "member_ids": factors.member_ids,
        "member_vectors": factors.member_vectors,
        "item_ids": factors.item_ids,
        "item_vectors": factors.item_vectors,
        "item_biases": factors.item_biases,
    }
    np.savez(directory / "arrays.npz", **arrays)
    meta = {"format_version": 1, "name": "old", "dim": factors.dim, "repeat_weight": 0.0}
    (directory / "factors.json").write_text(json.dumps(meta))
    loaded = Factors.load(directory)
    assert loaded.name == "old"
    np.testing.assert_array_equal(loaded.item_vectors, factors.item_vectors)
    assert list(loaded.member_ids) == list(factors.member_ids)


def test_loading_another_format_version_fails_naming_the_directory(tmp_path):
    directory = small_factors().save(tmp_path / "factors")
    meta = json.loads((directory / "factors.json").read_text())
    (directory / "factors.json").write_text(json.dumps(meta | {"format_version": 99}))
    with pytest.raises(ValueError, match="unsupported factors format 99"):
        Factors.load(directory)


@pytest.mark.parametrize(
    "overrides",
    [
        {"item_vectors": [[1.0, 1.0], [0.0, 2.0]]},
        {"item_biases": [0.1, 0.2]},
        {"member_feature_vectors": [[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]},
        {"item_feature_biases": [0.5]},
        {"repeat": sp.csr_matrix(np.zeros((2, 2)))},
    ],
)
def test_inconsistent_shapes_are_rejected(overrides):
    with pytest.raises(ValueError):
        small_factors(**overrides)


def test_numpy_repeat_weight_is_saved_as_a_plain_number(tmp_path):
    factors = small_factors(repeat_weight=np.float32(0.25))
    assert Factors.load(factors.save(tmp_path / "factors")).repeat_weight == 0.25


def test_lookups_find_known_ids_and_feature_names_only():
    factors = small_factors()
    assert (factors.member_row("m2"), factors.member_row("new")) == (1, None)
    assert (factors.item_row("i3"), factors.item_row("new")) == (2, None)
    assert factors.member_feature_rows(["tier=gold", "x=y", "region=north"]) == [1, 0]
    assert factors.item_feature_rows(["category=Food", "scope=local"]) == [1]
