"""Per request program mechanics that ranking reads: the member's occasions, the tier their
exclusive offers are checked against, and the boost of occasion offers. Pure: `now` is passed.
"""

from __future__ import annotations

from datetime import date

import numpy as np

from perkrank.features.eligibility import EPOCH
from perkrank.features.schema import TIERS, tier_rank
from perkrank.mechanics_config import ProgramMechanics
from perkrank.serving.domain.catalog import Catalog
from perkrank.serving.domain.channels import local_time


def member_occasions(
    catalog: Catalog,
    member_id: str,
    region: str,
    day: int,
    now: float,
    mechanics: ProgramMechanics,
    fixed_day: bool = False,
) -> frozenset[str]:
    """The occasions that apply to the member on `day` (UTC day number). Birthdays use the
    local date of `now` in `region`'s time zone, or `day` itself when `fixed_day` (a
    configured catalog date). None when the catalog has no occasion offer."""
    facts = catalog.member_facts
    if facts is None or not catalog.has_occasions:
        return frozenset()
    if fixed_day:
        local_day = date.fromordinal(EPOCH.toordinal() + day)
    else:
        local_day = local_time(now, mechanics.time_zone(region)).date()
    occasions = mechanics.occasions
    return facts.occasions(
        member_id,
        day,
        local_day,
        birthday_days=(occasions.birthday_days_before, occasions.birthday_days_after),
        welcome_days=occasions.welcome_days,
        winback_factor=occasions.winback_gap_factor,
    )


def exclusive_tier(catalog: Catalog, member_id: str, tier: str) -> str:
    """The tier exclusive offers are checked against: the lower of the tier ranked for and
    the member's own (a `tier` override never opens another tier's exclusive offers)."""
    member = catalog.member(member_id)
    if member is None:
        return tier
    return TIERS[min(tier_rank(tier), tier_rank(member.tier))]


def occasion_boosts(
    catalog: Catalog, rows: np.ndarray, boost: float, dtype: np.dtype
) -> np.ndarray:
    """`boost` for each occasion offer of `rows`, 0 for the others (added to its bias), as
    `dtype`."""
    return np.where(catalog.occasion_codes[rows] >= 0, boost, 0.0).astype(dtype)
