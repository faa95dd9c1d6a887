"""The values ranking passes around: a request, a segment's shared orders, a member's
shortlist and the ranked result (`ranking.OfferRanker` computes them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from perkrank.serving.domain.catalog import Offer
from perkrank.serving.domain.decisions import DETERMINISTIC


@dataclass(frozen=True)
class OfferRequest:
    """What an app asked for; region and tier override the member's own (None: theirs)."""

    member_id: str
    channel: str
    limit: int
    region: str | None = None
    tier: str | None = None
    language: str | None = None
    """The reasons' language (None, or one without templates: the configured default)."""
    decision_id: str = ""
    """The decision shown (empty: none); one shown before is not counted again."""


@dataclass(frozen=True)
class Segment:
    """The offers eligible for one region, tier and day, and the orders all its members share
    (of one tenure bucket: the cold order depends on it).

    `vectors`, `biases` and `item_rows` are the ranker's arrays cut to the eligible rows, so
    a known member's scores cost one small matrix-vector product.
    """

    rows: np.ndarray
    vectors: np.ndarray
    biases: np.ndarray
    item_rows: np.ndarray
    cold: Order
    """The personalized order of a member the ranker never saw (of the segment's tenure)."""
    fallback: Order
    """Both orders: the best offers, then their local tail (`local_partners`)."""
    stage_items: np.ndarray | None = None
    """The eligible offers' item rows in the second stage's statistics (None: no stage)."""
    stage_flags: np.ndarray | None = None
    """The second stage's candidate flags shared by the segment (`segment_flags`)."""
    local: np.ndarray | None = None
    """By eligible row: its partner is local."""
    adjustments: np.ndarray | None = None
    """Each eligible offer's value term plus ln(lever multiplier) on the segment's day, added
    to the calibrated scores (`models.value.final_scores`); None: nothing to add."""


class Order(NamedTuple):
    """The best offer rows, best first, and the score behind each."""

    rows: list[int]
    scores: list[float]


@dataclass(frozen=True)
class Shortlist:
    """Each order's best eligible offers for one request."""

    personalized: Order
    fallback: Order
    known_member: bool
    """The ranker learned this member's vector (else it scored region, tier and tenure)."""
    repeat_rows: frozenset[int]
    """Offer rows of items the member bought before."""
    offset_rows: frozenset[int] = frozenset()
    """Personalized rows whose score carries `offset`: a second or coupon stage's candidates,
    ranked above the rest by it (a response shows their score without it)."""
    offset: float = 0.0


class RankedOffer(NamedTuple):
    """One served offer: its catalog entry, 1-based rank, score, reason and propensity."""

    offer: Offer
    rank: int
    score: float
    reason: str
    propensity: float = DETERMINISTIC
    """The probability the policy drew it where it did (`exploration`); 1.0 unexplored."""


class Ranking(NamedTuple):
    """The served offers, best first, and whether they follow the personalized order."""

    personalized: bool
    offers: list[RankedOffer]
    suppressed: dict[str, int]
    """Offers left out, by reason: `SUPPRESSION_REASONS` of the store, and `eligibility`
    (catalog offers not valid for the member's region, tier and day)."""
