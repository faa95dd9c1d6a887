"""Many members' offers at once (a campaign's chunk): `OfferRanker.rank`'s steps, batched.

Each member goes through the ranker's own steps (profile, occasions and exclusive tier,
tenure, the cached segment, exploration, the store's select, explain), so a member gets the
offers `rank` would give them. Two things are batched: the scores of the known members of
one segment are one matrix product (`scoring.batch_scores`, `scoring.top_k`) instead of one
product per member, and the selects go to the store together (`select_many`: pipelined on
Redis, one write per primary on Cluster), each counted atomically on its own. A bundle with a
second or coupon stage, or a region with a local floor, scores its members one by one
(`OfferRanker.shortlist`); every selection request is `OfferRanker.selection_request`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from perkrank.config import CapRule, CapsConfig
from perkrank.experiment_config import Exploration
from perkrank.models import scoring, value
from perkrank.serving.domain.exploration import explored_shortlist
from perkrank.serving.domain.ranking import NO_OFFERS, PERSONALIZED, OfferRanker
from perkrank.serving.domain.ranking_values import (
    OfferRequest,
    Order,
    Ranking,
    Segment,
    Shortlist,
)
from perkrank.serving.domain.selection import BatchSelector


@dataclass(frozen=True)
class RankItem:
    """One member's request in a batch, with the policy answering it (`rank`'s arguments)."""

    request: OfferRequest
    policy: str = PERSONALIZED
    exploration: Exploration | None = None
    seed: int = 0
    profile: tuple[str, str] | None = None
    """The member's (region, tier) as `ranker.profile` gives it, when the caller has it."""


class _Planned:
    """A member's region, segment, pool and local tail, then their shortlist (filled in by
    `_shortlists`)."""

    __slots__ = ("item", "pool", "region", "segment", "shortlist", "tail")

    def __init__(self, item: RankItem, region: str, segment: Segment, pool: int, tail: int):
        self.item, self.region, self.segment = item, region, segment
        self.pool, self.tail = pool, tail
        self.shortlist: Shortlist | None = None


async def rank_many(
    ranker: OfferRanker,
    store: BatchSelector,
    items: Sequence[RankItem],
    rules: Sequence[CapRule],
    now: float,
    caps: CapsConfig | None = None,
) -> list[Ranking]:
    """`ranker.rank(store, item.request, rules, now, item.policy, item.exploration,
    item.seed, caps)` of each item, in order, with one `store.select_many` for all of them."""
    caps = caps or CapsConfig()
    day = ranker.day(now)
    planned: list[_Planned | None] = []
    for item in items:
        if item.policy == NO_OFFERS:
            planned.append(None)
            continue
        member_id = item.request.member_id
        region, tier = item.profile or ranker.profile(item.request)
        exclusive, occasions = ranker.member_mechanics(member_id, region, tier, day, now)
        tenure = ranker.tenure_days(member_id, day)
        segment = ranker.segment(region, tier, day, tenure, exclusive, occasions)
        limit = item.request.limit
        tail = ranker.local_tail(caps, region, limit)
        planned.append(_Planned(item, region, segment, ranker.pool_size(limit), tail))
    _shortlists(ranker, [plan for plan in planned if plan is not None])
    requests, propensities = [], []
    for plan in planned:
        if plan is None:
            continue
        shortlist, explored = _explore(plan)
        plan.shortlist = shortlist
        propensities.append(explored)
        requests.append(
            ranker.selection_request(plan.item.request, shortlist, plan.region, rules, now, caps)
        )
    selections = iter(await store.select_many(requests))
    explored_rows = iter(propensities)
    rankings = []
    for plan in planned:
        if plan is None:
            rankings.append(Ranking(False, [], {}))
            continue
        selection, chosen_propensities = next(selections), next(explored_rows)
        if not selection.personalized:  # the member's fallback order: nothing sampled
            chosen_propensities = {}
        if plan.item.policy != PERSONALIZED:
            selection = replace(selection, personalized=False)
        assert plan.shortlist is not None
        ranking = ranker.explain(
            plan.shortlist, selection, chosen_propensities, plan.item.request.language
        )
        ranking.suppressed["eligibility"] = len(ranker.catalog.offers) - len(plan.segment.rows)
        rankings.append(ranking)
    return rankings


def _explore(plan: _Planned) -> tuple[Shortlist, dict[int, float]]:
    """The plan's shortlist, sampled when its arm explores, and the propensities by row."""
    assert plan.shortlist is not None
    if plan.item.exploration is None:
        return plan.shortlist, {}
    return explored_shortlist(plan.shortlist, plan.pool, plan.item.exploration, plan.item.seed)


def _shortlists(ranker: OfferRanker, plans: Sequence[_Planned]) -> None:
    """Fill in each plan's shortlist: the fallback order for `popular`, else `shortlist`'s,
    the known members of one segment and pool scored in one matrix product (one by one where
    a second or coupon stage scores, or a local floor asks for a tail of local offers)."""
    factors = ranker.bundle.ranker
    alone = ranker.bundle.second_stage is not None or ranker.bundle.coupon_stage is not None
    groups: dict[tuple[int, int], list[tuple[_Planned, int]]] = {}
    for plan in plans:
        segment = plan.segment
        if plan.item.policy != PERSONALIZED:
            plan.shortlist = Shortlist(segment.fallback, segment.fallback, False, frozenset())
            continue
        row = factors.member_row(plan.item.request.member_id)
        if row is None or alone or plan.tail:
            member_id = plan.item.request.member_id
            plan.shortlist = ranker.shortlist(member_id, segment, plan.pool, plan.tail)
            continue
        groups.setdefault((id(segment), plan.pool), []).append((plan, row))
    for members in groups.values():
        segment, pool = members[0][0].segment, members[0][0].pool
        rows = np.fromiter((row for _, row in members), dtype=np.int64, count=len(members))
        orders, bought = segment_orders(ranker, segment, rows, pool)
        fallback = segment.fallback
        for (plan, _), order, repeated in zip(members, orders, bought, strict=True):
            plan.shortlist = Shortlist(order, fallback, True, repeated)


def segment_orders(
    ranker: OfferRanker, segment: Segment, rows: np.ndarray, pool: int
) -> tuple[list[Order], list[frozenset[int]]]:
    """The personalized order (best `pool` of `segment`'s offers) of each known member of
    `rows` (the ranker's member rows) and the offer rows they bought before: one matrix
    product for all (`scoring.batch_scores`, `scoring.top_k`), as `OfferRanker.shortlist`
    scores one member (without a second or coupon stage, or a local tail)."""
    factors = ranker.bundle.ranker
    repeat = scoring.repeat_matrix(factors, rows, segment.item_rows)
    dense = None if repeat is None else repeat.toarray()
    scores = value.final_scores(
        scoring.batch_scores(factors.member_vectors[rows], segment.vectors, segment.biases, dense),
        ranker.bundle.calibration,
        segment.adjustments,
    )
    best = scoring.top_k(scores, pool)
    best_scores = np.take_along_axis(scores, best, axis=1).tolist()
    best_rows = segment.rows[best].tolist()
    orders = [Order(r, s) for r, s in zip(best_rows, best_scores, strict=True)]
    return orders, repeat_rows(dense, segment.rows, len(rows))


def repeat_rows(dense: np.ndarray | None, rows: np.ndarray, count: int) -> list[frozenset[int]]:
    """For each of `count` members (the rows of `dense`: their repeat term over the offers of
    `rows`), the offer rows where their term is not zero; none when `dense` is None."""
    if dense is None:
        return [frozenset()] * count
    members, columns = np.nonzero(dense)
    ends = np.cumsum(np.bincount(members, minlength=count)).tolist()
    bought = rows[columns].tolist()
    return [frozenset(bought[start:end]) for start, end in zip([0, *ends[:-1]], ends, strict=True)]
