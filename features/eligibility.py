"""Which offers a member may be shown: the one rule serving and evaluation both apply.

An offer is eligible for a member of region r and tier t over the days [first_day, last_day]
(day numbers, days since 1970-01-01) when it runs in r (its regions include r, or it has
none: everywhere), its required tier ranks at most t's (`schema.TIERS` order; the higher of
its `min_tier` and its optional `exclusive_tier`: `required_tier_rank`) and it is valid
on one of those days (valid_from ≤ last_day and valid_to ≥ first_day). Serving asks for one
day, evaluation for a whole window. numpy only.
"""

from collections.abc import Sequence
from datetime import date

import numpy as np

from perkrank.features.schema import tier_rank

EPOCH = date(1970, 1, 1)


def day_number(day: date) -> int:
    """Days since 1970-01-01, the unit of validity."""
    return (day - EPOCH).days


def required_tier_rank(min_tier: str, exclusive_tier: str | None) -> int:
    """The lowest tier rank an offer is open to: its `min_tier`, raised to its
    `exclusive_tier` when it has one (None or empty: none). An exclusive offer is never
    shown to a lower tier."""
    rank = tier_rank(min_tier)
    return max(rank, tier_rank(exclusive_tier)) if exclusive_tier else rank


def region_mask(offer_regions: Sequence[frozenset[str] | None], region: str) -> np.ndarray:
    """Bool per offer: it runs in `region` (regions None: everywhere)."""
    return np.fromiter(
        (regions is None or region in regions for regions in offer_regions),
        dtype=bool,
        count=len(offer_regions),
    )


def eligible(
    in_region: np.ndarray,
    min_tier_ranks: np.ndarray,
    valid_from_days: np.ndarray,
    valid_to_days: np.ndarray,
    *,
    tier: str,
    first_day: int,
    last_day: int,
) -> np.ndarray:
    """Bool per offer: eligible in the region of `in_region` (`region_mask`), for `tier`,
    on some day of [first_day, last_day]; the arrays are aligned per offer."""
    mask = in_region & (min_tier_ranks <= tier_rank(tier))
    mask &= valid_between(valid_from_days, valid_to_days, first_day, last_day)
    return mask


def valid_between(
    valid_from_days: np.ndarray, valid_to_days: np.ndarray, first_day: int, last_day: int
) -> np.ndarray:
    """Bool per offer: valid on some day of [first_day, last_day]."""
    return (valid_from_days <= last_day) & (valid_to_days >= first_day)
