"""A campaign chunk's members decided together, by catalog row (`decide_rows`).

`batch_ranking.rank_many` walks each member through the ranker's own steps and builds a
`Ranking` of offer objects per member, which `campaign` then turns into a decision and a line.
For the members that need nothing member-specific beyond their scores (`rows_apply`: no
exploration, no second or coupon stage, no local floor), this module does the same work per
chunk instead: the known members of a segment are one score matrix and one top-k
(`batch_ranking.segment_orders`), the cold and popular members share their segment's orders,
the store gets one `RowBatch` (lists as rows, `row_selection`), and what is written per
offer (its fields and reason, as JSON) is encoded once per offer and reason (`OfferPieces`).
The decisions are those of `rank_many` (tests/serving/campaign/test_campaign_rows.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from operator import itemgetter
from typing import NamedTuple

import numpy as np
import orjson

from perkrank.config import CapRule, CapsConfig
from perkrank.serving.domain.batch_ranking import RankItem, segment_orders
from perkrank.serving.domain.decisions import DETERMINISTIC, DecidedOffer
from perkrank.serving.domain.local_partners import local_slots, max_per_partner
from perkrank.serving.domain.ranking import NEW, PERSONALIZED, OfferRanker
from perkrank.serving.domain.ranking_values import Order, Segment
from perkrank.serving.domain.row_selection import (
    CHOSEN,
    RowBatch,
    RowMember,
    SelectReply,
    select_rows,
)
from perkrank.serving.domain.selection import SUPPRESSION_REASONS, BatchSelector

NO_ROWS: frozenset[int] = frozenset()


class RowDecision(NamedTuple):
    """One member's answer: whether it follows the personalized order, the offers shown
    (`DecidedOffer`s), their JSON array as a decision line writes it, the non-zero
    suppression counts (`Ranking.suppressed`'s, eligibility last)."""

    personalized: bool
    offers: tuple[DecidedOffer, ...]
    offers_json: bytes
    suppressed: dict[str, int]


class OfferPieces:
    """Each shown offer's JSON object around its rank and score, by ranker, catalog row and
    what its reason depends on (`OfferRanker.reason`), encoded once: `{"offer_id":…,
    "partner_id":…,"title":…,"reward":…,"rank":` and `,"reason":…}`."""

    def __init__(self) -> None:
        self._rankers: dict[int, OfferRanker] = {}  # keeps each ranker (and its id) alive
        self._pieces: dict[int, dict[int, tuple[str, bytes, bytes]]] = {}

    def pieces(self, ranker: OfferRanker, keys: Sequence[int]) -> list[tuple[str, bytes, bytes]]:
        """The offer id, the object's head (up to `"rank":`) and its tail (from the reason) of
        each key: catalog row × 16 + personalized × 8 + known member × 4 + purchase reasons
        × 2 + repeated."""
        found = self._pieces.get(id(ranker))
        if found is None:
            self._rankers[id(ranker)] = ranker
            found = self._pieces[id(ranker)] = {}
        for key in set(keys).difference(found):
            found[key] = _piece(ranker, key)
        return list(map(found.__getitem__, keys))


def _piece(ranker: OfferRanker, key: int) -> tuple[str, bytes, bytes]:
    """`OfferPieces.pieces` of one key."""
    row, flags = divmod(key, 16)
    offer = ranker.catalog.offers[row]
    reason = ranker.reason(
        row,
        None,
        personalized=bool(flags & 8),
        known_member=bool(flags & 4),
        repeated=bool(flags & 1),
        purchase_reasons=bool(flags & 2),
    )
    fields = {
        "offer_id": offer.offer_id,
        "partner_id": offer.partner_id,
        "title": offer.title,
        "reward": offer.reward,
    }
    head = orjson.dumps(fields)[:-1] + b',"rank":'
    return offer.offer_id, head, b',"reason":%b}' % orjson.dumps(reason)


def rows_apply(ranker: OfferRanker, caps: CapsConfig, items: Sequence[RankItem]) -> bool:
    """Whether `decide_rows` decides `items` as `rank_many` would: no second or coupon stage,
    no exploring arm, no local floor in their regions, one list length."""
    bundle = ranker.bundle
    if bundle.second_stage is not None or bundle.coupon_stage is not None:
        return False
    limits = {item.request.limit for item in items}
    regions = {item.profile[0] if item.profile else None for item in items}
    return (
        len(limits) <= 1
        and None not in regions
        and all(item.exploration is None for item in items)
        and not any(local_slots(caps, region, limit) for region in regions for limit in limits)
    )


async def decide_rows(
    ranker: OfferRanker,
    store: BatchSelector,
    items: Sequence[RankItem],
    rules: Sequence[CapRule],
    now: float,
    caps: CapsConfig,
    pieces: OfferPieces,
) -> list[RowDecision]:
    """Each item's decision as `rank_many` makes it (`rows_apply` holds), in order, with one
    `select_rows` for all of them."""
    if not items:
        return []
    limit, channel = items[0].request.limit, items[0].request.channel
    pool, day = ranker.pool_size(limit), ranker.day(now)
    factors = ranker.bundle.ranker
    segments: list[Segment] = []
    orders: list[Order | None] = []
    groups: dict[int, tuple[list[int], list[int]]] = {}
    for index, item in enumerate(items):
        member_id = item.request.member_id
        region, tier = item.profile  # type: ignore[misc]  # rows_apply: every item has one
        exclusive, occasions = ranker.member_mechanics(member_id, region, tier, day, now)
        tenure = ranker.tenure_days(member_id, day)
        segment = ranker.segment(region, tier, day, tenure, exclusive, occasions)
        segments.append(segment)
        row = factors.member_row(member_id) if item.policy == PERSONALIZED else None
        if row is None:
            orders.append(segment.fallback if item.policy != PERSONALIZED else segment.cold)
            continue
        orders.append(None)
        indexes, rows = groups.setdefault(id(segment), ([], []))
        indexes.append(index)
        rows.append(row)
    known = [order is None for order in orders]
    repeats = [NO_ROWS] * len(items)
    for indexes, rows in groups.values():
        found, bought = segment_orders(ranker, segments[indexes[0]], np.array(rows), pool)
        for index, order, repeated in zip(indexes, found, bought, strict=True):
            orders[index], repeats[index] = order, repeated
    heads: dict[int, list[int]] = {}  # the first `pool` rows of each shared order, by id
    members = []
    for item, segment, order, is_known in zip(items, segments, orders, known, strict=True):
        assert order is not None
        fallback = _head(heads, segment.fallback, pool)
        personalized = order.rows if is_known else _head(heads, order, pool)
        members.append(
            RowMember(item.request.member_id, item.request.decision_id, personalized, fallback)
        )
    batch = RowBatch(
        candidates=ranker.catalog.candidates,
        channel=channel,
        now=now,
        limit=limit,
        max_per_partner=max_per_partner(caps, ranker.settings.max_offers_per_partner),
        rules=rules,
        sensitive=ranker.sensitive,
        decision_ttl_seconds=ranker.settings.mechanics.decision_ttl_seconds,
        members=members,
    )
    replies = await select_rows(store, batch)
    return _decisions(ranker, pieces, items, segments, orders, known, repeats, replies)


def _decisions(
    ranker: OfferRanker,
    pieces: OfferPieces,
    items: Sequence[RankItem],
    segments: Sequence[Segment],
    orders: Sequence[Order | None],
    known: Sequence[bool],
    repeats: Sequence[frozenset[int]],
    replies: Sequence[SelectReply],
) -> list[RowDecision]:
    """The members' decisions from their orders and the store's replies: what is per offer
    (rows, scores, pieces, JSON objects) is done over the whole chunk's offers at once."""
    rows: list[int] = []
    scores: list[float] = []
    repeated: list[bool] = []
    flags, counts = [], []
    for item, segment, order, is_known, bought, reply in zip(
        items, segments, orders, known, repeats, replies, strict=True
    ):
        assert order is not None
        walked = reply[0] == 1
        personalized = walked and item.policy == PERSONALIZED
        order_rows, order_scores = order if walked else segment.fallback
        chosen = reply[CHOSEN:]
        picked = list(map(order_rows.__getitem__, chosen))
        rows += picked
        scores += map(order_scores.__getitem__, chosen)
        if bought:
            repeated += map(bought.__contains__, picked)
        else:
            repeated += [False] * len(picked)
        flags.append(personalized * 4 + is_known * 2 + (reply[1] == 1))
        counts.append(len(chosen))
    keys = (
        np.asarray(rows, dtype=np.int64) * 16
        + np.repeat(np.asarray(flags, dtype=np.int64) * 2, counts)
        + np.asarray(repeated, dtype=np.int64)
    ).tolist()
    shown = pieces.pieces(ranker, keys)
    ends = np.cumsum(counts)
    ranks = (np.arange(len(rows)) - np.repeat(ends - counts, counts) + 1).tolist()
    texts = orjson.dumps(rounded(scores))[1:-1].split(b",") if rows else []
    objects = [
        b'%b%d,"score":%b%b' % (piece[1], rank, text, piece[2])
        for piece, rank, text in zip(shown, ranks, texts, strict=True)
    ]
    offer_ids = map(itemgetter(0), shown)
    offers = list(
        map(NEW, repeat(DecidedOffer), zip(offer_ids, ranks, scores, repeat(DETERMINISTIC)))
    )
    offers_count, decided, start = len(ranker.catalog.offers), [], 0
    for segment, reply, end, flag in zip(segments, replies, ends.tolist(), flags, strict=True):
        suppressed = {
            reason: count
            for reason, count in zip(SUPPRESSION_REASONS, reply[2:CHOSEN], strict=True)
            if count
        }
        ineligible = offers_count - len(segment.rows)
        if ineligible:
            suppressed["eligibility"] = ineligible
        listed = b"[%b]" % b",".join(objects[start:end])
        decided.append(RowDecision(flag >= 4, tuple(offers[start:end]), listed, suppressed))
        start = end
    return decided


def rounded(scores: Sequence[float]) -> list[float]:
    """`round(score, 6)` of each score, exactly: where score × 10⁶ is below 10⁹ and more
    than 10⁻⁶ from a half, the nearest integer over 10⁶ in numpy (the product's error is
    below 1.2·10⁻⁷, so it rounds to the integer the exact product does, and one division is
    the float nearest that decimal, as `round`'s is); `round` itself for the others."""
    scaled = np.asarray(scores, dtype=np.float64) * 1e6
    nearest = np.rint(scaled)
    found = (nearest / 1e6).tolist()
    with np.errstate(invalid="ignore"):  # infinities: `round`'s
        unsure = ~((0.5 - np.abs(scaled - nearest) > 1e-6) & (np.abs(scaled) < 1e9))
    for index in np.flatnonzero(unsure).tolist():
        found[index] = round(float(scores[index]), 6)
    return found


def _head(heads: dict[int, list[int]], order: Order, pool: int) -> list[int]:
    """`order`'s first `pool` rows, one list per order (members sharing an order share it)."""
    found = heads.get(id(order))
    if found is None:
        found = heads[id(order)] = order.rows[:pool]
    return found
