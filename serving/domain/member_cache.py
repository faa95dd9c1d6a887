"""Known members' pre-selection work, kept for their next request of the same segment.

A known member's shortlist (first-stage scores, repeat term, second stage, both orders' best
rows) and the personalized order's candidates for the store depend only on the ranker (its
bundle, catalog and levers: a publish, model swap or lever change builds a new ranker with an
empty cache), the member, their segment (region, tier, day, tenure bucket, exclusive tier and
occasions: a new day or occasion is another segment) and the pool and local tail (the list
length). Opt-outs, consents, caps, budgets and the partner limit are applied by the store at
request time, so they never enter it. Bounded: the least recently used entry goes first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from perkrank.serving.domain.local_partners import rows_with_local_tail
from perkrank.serving.domain.ranking_values import Order, Segment, Shortlist
from perkrank.serving.domain.selection import Candidate

MAX_CACHED_ORDERS = 4096
"""Shared orders' candidate lists (by order, pool and tail) kept before starting over."""


class MemberWork(NamedTuple):
    """What a known member's request computes before the store call."""

    segment: Segment
    """The segment it was computed for (an entry of another segment object is not used)."""
    shortlist: Shortlist
    personalized: list[Candidate]
    """The personalized order's candidates with their local tail, as the store gets them."""


MemberKey = tuple[str, int, int, int]
"""Member id, pool, local tail, id() of the segment (checked against `MemberWork.segment`)."""


class MemberCache:
    """An LRU of `MemberWork` of at most `size` members' requests (0: keeps nothing)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[MemberKey, MemberWork] = OrderedDict()
        self.hits = self.misses = 0

    def get(self, member_id: str, segment: Segment, pool: int, tail: int) -> MemberWork | None:
        """The work kept for these, None if none (or it was of another segment object)."""
        key = (member_id, pool, tail, id(segment))
        work = self._entries.get(key)
        if work is None or work.segment is not segment:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return work

    def put(self, member_id: str, pool: int, tail: int, work: MemberWork) -> None:
        """Keep `work`, dropping the least recently used entry beyond `size`."""
        if self.size <= 0:
            return
        self._entries[(member_id, pool, tail, id(work.segment))] = work
        self._entries.move_to_end((member_id, pool, tail, id(work.segment)))
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class CandidateLists:
    """The store's candidates of an order's best rows and local tail, by catalog row."""

    def __init__(self, candidates: Sequence[Candidate], local: np.ndarray) -> None:
        self._candidates = candidates
        self._local = local
        self._orders: dict[tuple[int, int, int], tuple[Order, list[Candidate]]] = {}

    def of_rows(self, rows: list[int], pool: int, tail: int) -> list[Candidate]:
        """The candidates of `rows`' best `pool` and their local tail (`rows_with_local_tail`)."""
        rows = rows_with_local_tail(rows, pool, tail, self._local)
        return list(map(self._candidates.__getitem__, rows))

    def of_order(self, order: Order, pool: int, tail: int) -> list[Candidate]:
        """`of_rows` of a shared order, kept by order: the requests of a segment share its
        fallback and cold orders (a campaign's chunk, the lists too)."""
        key = (id(order), pool, tail)
        kept = self._orders.get(key)
        if kept is None or kept[0] is not order:
            if len(self._orders) >= MAX_CACHED_ORDERS:
                self._orders.clear()
            kept = self._orders[key] = (order, self.of_rows(order.rows, pool, tail))
        return kept[1]
