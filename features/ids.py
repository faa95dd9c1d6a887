"""External ids ↔ row numbers: the one id map of features, models, evaluation and serving.

An `IdMap` holds unique external ids (member ids, item ids, feature names, offer ids) in row
order and answers both ways: id → row (a read-only mapping, so `get`, `in` and `[]` work as
on a dict, and `rows` for whole arrays) and row → id (`external_ids[rows]`). numpy only.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

import numpy as np

MISSING = -1
"""The row `IdMap.rows` gives an id the map does not hold."""


class IdMap(Mapping[str, int]):
    """Unique external ids and their rows 0..n-1, in the order given."""

    __slots__ = ("_rows", "external_ids")

    def __init__(self, external_ids: Iterable[str]) -> None:
        ids = np.asarray(
            external_ids if isinstance(external_ids, np.ndarray) else list(external_ids),
            dtype=str,
        )
        names = ids.tolist()  # plain str keys: built fast, hashed fast
        self._rows = dict(zip(names, range(len(names)), strict=True))
        if len(self._rows) != len(names):
            raise ValueError("an IdMap's ids must be unique")
        self.external_ids = ids
        """The ids in row order (a numpy str array)."""

    @classmethod
    def from_values(cls, values: Iterable[str]) -> IdMap:
        """The distinct `values`, rows in order of first appearance."""
        return cls(dict.fromkeys(values))

    def __getitem__(self, external_id: str) -> int:
        return self._rows[external_id]

    def get(self, external_id: str, default: int | None = None) -> int | None:
        """The row of `external_id`, `default` when the map does not hold it."""
        return self._rows.get(external_id, default)

    def __contains__(self, external_id: object) -> bool:
        return external_id in self._rows

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def rows(self, external_ids: Iterable[str]) -> np.ndarray:
        """int64 row of each id, `MISSING` (-1) for ids the map does not hold."""
        get = self._rows.get
        values = external_ids.tolist() if hasattr(external_ids, "tolist") else external_ids
        return np.fromiter((get(value, MISSING) for value in values), dtype=np.int64)
