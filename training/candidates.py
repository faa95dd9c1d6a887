"""First stage of the two-stage ranker: a candidate set per member of an evaluation window.

Sources (bit flags, several per candidate possible):
    OWN       offers whose item the member bought before the window (`window.bought_before`);
    CF        each CF model's `cf_top` best offers, scored by `models.scoring` as evaluation
              scores them (`model_scores`);
    POPULAR   the `popular_top` offers with the most purchases in the last 90 days (> 0);
    REGIONAL  the `regional_top` offers with the highest smoothed share in the member's region;
    NEW       the `new_top` best-selling offers (last 90 days) whose item first sold within
              `new_days` of the cutoff.
Only offers eligible for the member's group (`window.groups`) are candidates. Dense arrays
(members × window offers): the window is evaluation-sized; serving would build one row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from perkrank.features.ids import IdMap
from perkrank.features.ranker_features import WINDOWS_DAYS, PurchaseStats
from perkrank.models import scoring
from perkrank.models.factors import Factors
from perkrank.training.window import EvaluationWindow

OWN, CF, POPULAR, REGIONAL, NEW = 1, 2, 4, 8, 16
SOURCES = {"own": OWN, "cf": CF, "popular": POPULAR, "regional": REGIONAL, "new": NEW}
RECENT_COLUMN = 1 + WINDOWS_DAYS.index(90)
"""Column of `PurchaseStats.item_counts` holding the last 90 days."""


@dataclass(frozen=True)
class CandidateSizes:
    """How many offers each non-own source adds per member."""

    cf_top: int = 100
    popular_top: int = 50
    regional_top: int = 20
    new_top: int = 20
    new_days: int = 30


def stats_rows(stats: PurchaseStats, window: EvaluationWindow) -> tuple[np.ndarray, np.ndarray]:
    """Rows in `stats` of the window's members and of its offers' items (-1: unknown)."""
    return IdMap(stats.member_ids).rows(window.member_ids), IdMap(stats.item_ids).rows(
        window.offer_items
    )


def eligibility(window: EvaluationWindow) -> np.ndarray:
    """Bool (members × offers): the offer is a candidate of the member's group."""
    result = np.zeros((len(window.member_ids), len(window.offer_ids)), dtype=bool)
    for group in window.groups:
        result[np.ix_(group.member_rows, group.offer_rows)] = True
    return result


def model_scores(window: EvaluationWindow, factors: Factors) -> np.ndarray:
    """float32 (members × offers) scores of `factors` by `models.scoring`; -inf if ineligible."""
    members = scoring.member_vectors(factors, window.member_ids.tolist(), window.member_features)
    items = scoring.item_inputs(factors, window.offer_items, window.offer_item_features)
    repeat = None
    if scoring.has_repeat(factors):
        member_rows = factors.member_rows(window.member_ids)
        repeat = scoring.repeat_matrix(factors, member_rows, items.rows).toarray()
    scores = scoring.batch_scores(members, items.vectors, items.biases, repeat)
    return np.where(eligibility(window), scores, -np.inf).astype(np.float32)


def generate(
    window: EvaluationWindow,
    stats: PurchaseStats,
    cf_scores: Mapping[str, np.ndarray],
    sizes: CandidateSizes = CandidateSizes(),
) -> np.ndarray:
    """uint8 (members × offers): the OR of the sources that propose each offer (0: none)."""
    allowed = eligibility(window)
    sources = np.where(window.bought_before.toarray() & allowed, OWN, 0).astype(np.uint8)
    for scores in cf_scores.values():
        _add_top(sources, np.where(allowed, scores, -np.inf), sizes.cf_top, CF)
    member_rows, item_rows = stats_rows(stats, window)
    known = item_rows >= 0
    recent = np.where(known, stats.item_counts[np.maximum(item_rows, 0), RECENT_COLUMN], 0.0)
    popular = np.where(allowed & (recent > 0), recent[np.newaxis, :], -np.inf)
    _add_top(sources, popular, sizes.popular_top, POPULAR)
    first_age = np.where(known, stats.item_first_age[np.maximum(item_rows, 0)], np.inf)
    new = (first_age <= sizes.new_days) & (recent > 0)
    _add_top(sources, np.where(allowed & new, recent, -np.inf), sizes.new_top, NEW)
    regions = np.where(member_rows >= 0, stats.member_regions[np.maximum(member_rows, 0)], -1)
    for region in np.unique(regions[regions >= 0]):
        members = regions == region
        shares = np.where(known, stats.region_shares[region][np.maximum(item_rows, 0)], 0.0)
        regional = np.where(allowed[members] & known, shares[np.newaxis, :], -np.inf)
        block = sources[members]
        _add_top(block, regional, sizes.regional_top, REGIONAL)
        sources[members] = block
    return sources


def _add_top(sources: np.ndarray, scores: np.ndarray, k: int, flag: int) -> None:
    """Set `flag` on each row's k best finite scores (in place)."""
    if k <= 0 or scores.shape[1] == 0:
        return
    scores = np.broadcast_to(scores, sources.shape)
    top = scoring.top_k(np.ascontiguousarray(scores), k)
    finite = np.isfinite(np.take_along_axis(scores, top, axis=1))
    rows = np.broadcast_to(np.arange(len(sources))[:, np.newaxis], top.shape)
    sources[rows[finite], top[finite]] |= flag


def candidate_recall(window: EvaluationWindow, sources: np.ndarray) -> dict[str, float]:
    """Share of relevant (member, offer) pairs that are candidates: overall, on repeat items
    and on new items, pooled over the window's members; and per source alone (overall)."""
    relevant = window.relevant.toarray()
    bought = window.bought_before.toarray()
    candidate = sources > 0
    result = {
        "overall": _share(candidate, relevant),
        "repeat_items": _share(candidate, relevant & bought),
        "new_items": _share(candidate, relevant & ~bought),
    }
    for name, flag in SOURCES.items():
        result[f"source={name}"] = _share((sources & flag) > 0, relevant)
    result["candidates_per_member"] = float(candidate.sum(axis=1).mean())
    return result


def _share(candidate: np.ndarray, relevant: np.ndarray) -> float:
    total = int(relevant.sum())
    return float((candidate & relevant).sum() / total) if total else float("nan")
