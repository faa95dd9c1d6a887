"""The list rules that live with the caps: the local floor and the per-partner limit.

A region's local floor (`CapsConfig.local_floor`) asks that a list of `limit` offers hold at
least `ceil(share × limit)` offers of local partners: the store's walk (`rules.select_offers`)
takes that many local candidates first, by the same rules as every other candidate. So that
local candidates reach the store at all, each order is kept with a tail: its best `count`
offers, then the best `count` local offers of the rest (`best_with_locals`), and a request
with a floor hands the store its pool plus up to a pool of that tail (`with_local_tail`).
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


def best_with_locals(scores: np.ndarray, count: int, local: np.ndarray) -> np.ndarray:
    """Positions of the `count` best `scores`, best first (`scoring.best`), then of the
    `count` best local ones (`local`: aligned with `scores`) among the rest, best first."""
    best = scoring.best(scores, count)
    rest = local.copy()
    rest[best] = False
    local_positions = np.flatnonzero(rest)
    if local_positions.size == 0:
        return best
    tail = local_positions[scoring.best(scores[local_positions], count)]
    return np.concatenate([best, tail])


def with_local_tail(
    order: Sequence[Item], pool: int, slots: int, is_local: Callable[[Item], bool]
) -> list[Item]:
    """The first `pool` of `order`, then (with local `slots` to fill) up to `pool` local items
    of the rest, in order."""
    head = list(order[:pool])
    if slots == 0:
        return head
    tail = [item for item in order[pool:] if is_local(item)]
    return head + tail[:pool]
