"""The items each member bought before a cutoff, held as one sparse matrix.

A dict of one frozenset per member costs ~0.5 KiB a member (1M members: ~0.5 GiB per cutoff,
three cutoffs held at once in `perkrank train`); the CSR pattern of the cutoff's purchase
counts holds the same sets in a few bytes per (member, item) pair and is shared, not copied.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np
import scipy.sparse as sp

from perkrank.features.ids import IdMap


class BoughtItems(Mapping[str, frozenset[str]]):
    """Read-only mapping member id → item ids bought (members with at least one item only),
    over a members × items sparse matrix whose stored entries are the purchases."""

    __slots__ = ("item_ids", "matrix", "member_ids")

    def __init__(self, member_ids: np.ndarray, item_ids: np.ndarray, matrix: sp.csr_matrix) -> None:
        member_ids = np.asarray(member_ids, dtype=str)
        if matrix.shape != (len(member_ids), len(item_ids)):
            raise ValueError("the matrix must be members × items")
        if np.any(member_ids[1:] <= member_ids[:-1]):
            raise ValueError("the member ids must be unique and sorted")
        self.member_ids = member_ids
        """Rows of `matrix`, sorted (looked up by binary search: no per-member objects)."""
        self.item_ids = np.asarray(item_ids, dtype=str)
        self.matrix = matrix

    @classmethod
    def from_mapping(cls, bought: Mapping[str, frozenset[str]]) -> BoughtItems:
        """The same sets as `bought` (a `BoughtItems` is returned as it is)."""
        if isinstance(bought, BoughtItems):
            return bought
        members = sorted(member for member, items in bought.items() if items)
        items = IdMap(sorted({item for member in members for item in bought[member]}))
        lengths = [len(bought[member]) for member in members]
        columns = items.rows([item for member in members for item in bought[member]])
        rows = np.repeat(np.arange(len(members)), lengths)
        matrix = sp.csr_matrix(
            (np.ones(len(rows), dtype=bool), (rows, columns)), shape=(len(members), len(items))
        )
        return cls(np.asarray(members, dtype=str), items.external_ids, matrix)

    def member_rows(self, member_ids: np.ndarray) -> np.ndarray:
        """Row of each member id, -1 for a member who bought nothing (or is unknown)."""
        member_ids = np.asarray(member_ids, dtype=str)
        if len(self.member_ids) == 0:
            return np.full(len(member_ids), -1, dtype=np.int64)
        rows = np.searchsorted(self.member_ids, member_ids).astype(np.int64)
        rows = np.minimum(rows, len(self.member_ids) - 1)
        counts = np.diff(self.matrix.indptr)
        known = (self.member_ids[rows] == member_ids) & (counts[rows] > 0)
        return np.where(known, rows, -1)

    def __getitem__(self, member_id: str) -> frozenset[str]:
        row = int(self.member_rows(np.array([member_id]))[0])
        if row < 0:
            raise KeyError(member_id)
        start, end = self.matrix.indptr[row], self.matrix.indptr[row + 1]
        return frozenset(self.item_ids[self.matrix.indices[start:end]].tolist())

    def __iter__(self) -> Iterator[str]:
        counts = np.diff(self.matrix.indptr)
        return iter(self.member_ids[counts > 0].tolist())

    def __len__(self) -> int:
        return int(np.count_nonzero(np.diff(self.matrix.indptr)))
