"""Which levers are in force on a day and what they multiply each offer's odds by (pure)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from perkrank.features.eligibility import day_number
from perkrank.lever_config import Lever
from perkrank.serving.domain.catalog import Offer


def in_force(lever: Lever, day: int) -> bool:
    """Whether `lever` applies on `day` (days since 1970-01-01): start inclusive, end
    exclusive."""
    if lever.start is not None and day < day_number(lever.start):
        return False
    return lever.end is None or day < day_number(lever.end)


def lever_log_multipliers(
    levers: Sequence[Lever],
    day: int,
    partner_ids: Sequence[str],
    categories: Sequence[str],
    offer_ids: Sequence[str],
) -> np.ndarray:
    """ln of the product of the multipliers of the levers in force on `day` that match each
    offer (its partner, category or id); 0 for an offer no lever matches."""
    result = np.zeros(len(offer_ids), dtype=np.float64)
    for lever in levers:
        if not in_force(lever, day):
            continue
        keys = {"partner": partner_ids, "category": categories, "offer": offer_ids}[lever.target]
        matches = np.fromiter((key == lever.value for key in keys), dtype=bool, count=len(keys))
        result[matches] += np.log(lever.multiplier)
    return result


def adjustments_of(
    value_terms: np.ndarray,
    levers: Sequence[Lever],
    offers: Sequence[Offer],
    rows: np.ndarray,
    day: int,
) -> np.ndarray | None:
    """What ranking adds to the calibrated scores of `rows` on `day`: each offer's value term
    plus the ln of its lever multipliers; None when all are 0 (scores rank as the model gives
    them)."""
    terms = value_terms[rows]
    if levers:
        chosen = [offers[row] for row in rows.tolist()]
        terms = terms + lever_log_multipliers(
            levers,
            day,
            [offer.partner_id for offer in chosen],
            [offer.category for offer in chosen],
            [offer.offer_id for offer in chosen],
        )
    return terms if terms.any() else None
