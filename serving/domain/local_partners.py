"""The list rules that live with the caps: the local floor and the per-partner limit.

A region's local floor (`CapsConfig.local_floor`) asks that a list of `limit` offers hold at
least `ceil(share × limit)` offers of local partners: the store's walk (`rules.select_offers`)
takes that many local candidates first, by the same rules as every other candidate. So that
local candidates reach the store at all, each order is kept with a tail: its best `count`
offers, then the best `count` local offers of the rest (`best_with_locals`), and a request
with `slots` local slots hands the store its pool plus up to `pool_size(slots)` local offers of
that tail (`with_local_tail`): the same slack for skipped offers as the list itself has.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np

from perkrank.config import CapsConfig
from perkrank.models import scoring

Item = TypeVar("Item")


def local_slots(caps: CapsConfig, region: str, limit: int) -> int:
    """How many of a `limit`-offer list the region's local floor asks for (0: no floor)."""
    floor = caps.local_floor
    if floor is None:
        return 0
    # Shares like 0.3 × 10 land a hair above 3 in floating point: round that away first.
    return min(limit, math.ceil(round(floor.share(region) * limit, 9)))


def max_per_partner(caps: CapsConfig, configured: int) -> int:
    """The per-partner limit in force: the caps' when set, else serve.yaml's."""
    return configured if caps.max_per_partner is None else caps.max_per_partner


def best_with_locals(
    scores: np.ndarray, count: int, local: np.ndarray | None, tail: int
) -> np.ndarray:
    """Positions of the `count` best `scores`, best first (`scoring.best`), then of the
    `tail` best local ones (`local`: aligned with `scores`; None: none) among the rest,
    best first."""
    best = scoring.best(scores, count)
    if local is None or tail == 0:
        return best
    rest = local.copy()
    rest[best] = False
    local_positions = np.flatnonzero(rest)
    if local_positions.size == 0:
        return best
    return np.concatenate([best, local_positions[scoring.best(scores[local_positions], tail)]])


def with_local_tail(
    order: Sequence[Item], pool: int, tail: int, is_local: Callable[[Item], bool]
) -> list[Item]:
    """The first `pool` of `order`, then up to `tail` local items of the rest, in order."""
    return list(order[:pool]) + [item for item in order[pool:] if is_local(item)][:tail]


def rows_with_local_tail(rows: list[int], pool: int, tail: int, local: np.ndarray) -> list[int]:
    """`with_local_tail` of offer rows, `local` by row (one numpy pass: it runs per request)."""
    if tail == 0 or len(rows) <= pool:
        return rows[:pool]
    rest = np.asarray(rows[pool:])
    return rows[:pool] + rest[local[rest]][:tail].tolist()
