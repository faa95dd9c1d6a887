"""The one artifact every model produces and serving loads: vectors, biases and id maps.

The score these arrays define (`models.scoring`):

    score(member, item) = member_vector · item_vector + item_bias
                          + repeat_weight · log1p(repeat[member, item])

Members and items the model never saw get vectors from their feature names (the sum of the
feature vectors it learned, see `features.vocabulary`), so brand-new offers and new members
are scored by the same dot product. Saved as one `.npy` file per array under `arrays/`
(`models.array_files`: memory-mapped when loaded, each checked against the sha256 that
`factors.json` records); factors saved as `arrays.npz` (format 1) still load.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from perkrank.features.ids import IdMap
from perkrank.models.array_files import load_arrays, save_arrays

FORMAT_VERSION = 2
NPZ_FORMAT_VERSION = 1
"""Factors saved as one `arrays.npz` (read whole, not mapped)."""
ARRAYS_DIR = "arrays"


@dataclass
class Factors:
    """Member and item vectors of one model (or of a blend of models).

    Parameters
    ----------
    member_ids, item_ids:
        External ids of the rows of `member_vectors` and `item_vectors`.
    member_vectors, item_vectors:
        float32 arrays of shape (n_members, dim) and (n_items, dim).
    item_biases:
        float32 (n_items,), added to every member's score of the item.
    member_feature_ids, member_feature_vectors:
        Feature names (e.g. "region=north") and their vectors; a member without a row
        is the sum of the vectors of its features.
    item_feature_ids, item_feature_vectors, item_feature_biases:
        The same for items (e.g. "partner=P0001", "category=Beauty").
    repeat:
        Optional CSR (n_members, n_items) of the member's own recent purchase weight,
        added as `repeat_weight · log1p(repeat)`.
    name:
        What produced these factors ("als", "blend", ...).
    """

    member_ids: np.ndarray
    member_vectors: np.ndarray
    item_ids: np.ndarray
    item_vectors: np.ndarray
    item_biases: np.ndarray
    member_feature_ids: np.ndarray = field(default_factory=lambda: np.array([], dtype=str))
    member_feature_vectors: np.ndarray | None = None
    item_feature_ids: np.ndarray = field(default_factory=lambda: np.array([], dtype=str))
    item_feature_vectors: np.ndarray | None = None
    item_feature_biases: np.ndarray | None = None
    repeat: sp.csr_matrix | None = None
    repeat_weight: float = 0.0
    name: str = "model"

    def __post_init__(self) -> None:
        dim = self.dim
        self.member_ids = np.asarray(self.member_ids, dtype=str)
        self.item_ids = np.asarray(self.item_ids, dtype=str)
        self.member_vectors = _matrix(self.member_vectors, len(self.member_ids), dim)
        self.item_vectors = _matrix(self.item_vectors, len(self.item_ids), dim)
        self.item_biases = np.asarray(self.item_biases, dtype=np.float32).reshape(-1)
        self.member_feature_ids = np.asarray(self.member_feature_ids, dtype=str)
        self.item_feature_ids = np.asarray(self.item_feature_ids, dtype=str)
        self.member_feature_vectors = _matrix(
            self.member_feature_vectors, len(self.member_feature_ids), dim
        )
        self.item_feature_vectors = _matrix(
            self.item_feature_vectors, len(self.item_feature_ids), dim
        )
        if self.item_feature_biases is None:
            self.item_feature_biases = np.zeros(len(self.item_feature_ids), dtype=np.float32)
        self.item_feature_biases = np.asarray(self.item_feature_biases, dtype=np.float32)
        if len(self.item_biases) != len(self.item_ids):
            raise ValueError("item_biases must have one value per item")
        if self.item_feature_biases.shape != (len(self.item_feature_ids),):
            raise ValueError("item_feature_biases must have one value per item feature")
        if self.repeat is not None:
            self.repeat = sp.csr_matrix(self.repeat, dtype=np.float32, copy=True)
            self.repeat.sum_duplicates()  # scoring reads one entry per cell
            if self.repeat.shape != (len(self.member_ids), len(self.item_ids)):
                raise ValueError("repeat must have shape (n_members, n_items)")
        self.repeat_weight = float(self.repeat_weight)
        self._members = IdMap(self.member_ids)
        self._items = IdMap(self.item_ids)
        self._member_features = IdMap(self.member_feature_ids)
        self._item_features = IdMap(self.item_feature_ids)

    @property
    def dim(self) -> int:
        if np.ndim(self.member_vectors) != 2:
            return 0
        return int(np.asarray(self.member_vectors).shape[1])

    def member_row(self, member_id: str) -> int | None:
        """Row of a known member, None for one the model never saw."""
        return self._members.get(member_id)

    def item_row(self, item: str) -> int | None:
        """Row of a known item, None for one the model never saw."""
        return self._items.get(item)

    def member_rows(self, member_ids: Sequence[str] | np.ndarray) -> np.ndarray:
        """Row of each member, -1 for members the model never saw."""
        return self._members.rows(member_ids)

    def member_feature_rows(self, names: Sequence[str]) -> list[int]:
        """Rows of the member feature names the factors know (others are left out)."""
        index = self._member_features
        return [index[name] for name in names if name in index]

    def item_feature_rows(self, names: Sequence[str]) -> list[int]:
        """Rows of the item feature names the factors know (others are left out)."""
        index = self._item_features
        return [index[name] for name in names if name in index]

    def save(self, directory: Path | str) -> Path:
        """Write `arrays/*.npy` and `factors.json` into `directory` (created if missing)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        arrays = {
            "member_ids": self.member_ids,
            "member_vectors": self.member_vectors,
            "item_ids": self.item_ids,
            "item_vectors": self.item_vectors,
            "item_biases": self.item_biases,
            "member_feature_ids": self.member_feature_ids,
            "member_feature_vectors": self.member_feature_vectors,
            "item_feature_ids": self.item_feature_ids,
            "item_feature_vectors": self.item_feature_vectors,
            "item_feature_biases": self.item_feature_biases,
        }
        if self.repeat is not None:
            arrays |= {
                "repeat_data": self.repeat.data,
                "repeat_indices": self.repeat.indices,
                "repeat_indptr": self.repeat.indptr,
            }
        meta = {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "dim": self.dim,
            "repeat_weight": self.repeat_weight,
            "sha256": save_arrays(directory / ARRAYS_DIR, arrays),
        }
        (directory / "factors.json").write_text(json.dumps(meta, indent=2) + "\n")
        return directory

    @classmethod
    def load(cls, directory: Path | str) -> Factors:
        """Read factors written by `save`."""
        directory = Path(directory)
        meta = json.loads((directory / "factors.json").read_text())
        version = meta.get("format_version")
        if version == FORMAT_VERSION:
            arrays = load_arrays(directory / ARRAYS_DIR, meta["sha256"])
        elif version == NPZ_FORMAT_VERSION:
            with np.load(directory / "arrays.npz", allow_pickle=False) as npz:
                arrays = {key: npz[key] for key in npz.files}
        else:
            raise ValueError(f"{directory}: unsupported factors format {version}")
        repeat = None
        if "repeat_data" in arrays:
            shape = (len(arrays["member_ids"]), len(arrays["item_ids"]))
            parts = (arrays.pop("repeat_data"), arrays.pop("repeat_indices"))
            repeat = sp.csr_matrix((*parts, arrays.pop("repeat_indptr")), shape=shape)
        return cls(**arrays, repeat=repeat, repeat_weight=meta["repeat_weight"], name=meta["name"])


def _matrix(values: np.ndarray | None, rows: int, dim: int) -> np.ndarray:
    if values is None:
        return np.zeros((rows, dim), dtype=np.float32)
    matrix = np.asarray(values, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape != (rows, dim):
        raise ValueError(f"expected a ({rows}, {dim}) matrix, got shape {matrix.shape}")
    return np.ascontiguousarray(matrix)


def only_members(factors: Factors, member_ids: np.ndarray) -> Factors:
    """`factors` with member rows only for `member_ids` (items and features unchanged)."""
    keep = np.isin(factors.member_ids, member_ids)
    repeat = None if factors.repeat is None else factors.repeat[keep]
    return replace(
        factors,
        member_ids=factors.member_ids[keep],
        member_vectors=factors.member_vectors[keep],
        repeat=repeat,
    )
