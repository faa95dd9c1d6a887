"""Occasion offers: when each occasion applies to a member, as pure functions, and the member
facts they read (built once from the members and purchases tables).

An offer's optional `occasion` column names one of `OCCASIONS`; such an offer is eligible for a
member only while the occasion applies to them:

- `birthday`: the member's local date (their region's time zone) lies from `days_before` days
  before to `days_after` days after a birthday (29 February counts as 28 February in other
  years);
- `welcome`: the member's tenure (days since signup) is below `welcome_days`;
- `winback`: the member bought nothing for longer than their usual gap × `factor`; the usual
  gap is the median gap between the member's distinct purchase days (at least two of them);
- `tier_upgrade`: the member is near the next tier: their spend over the last `days` before
  the data's last purchase reaches `share` of the median spend of the next tier's members over
  the same days, but not all of it (tiers are the program's; the data has no thresholds, so
  the next tier's typical member stands in for one). Never for the top tier.
numpy only; `member_facts` takes the pandas frames of a validated data set.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

import numpy as np

from perkrank.features.columns import Columns
from perkrank.features.schema import OCCASIONS, TIERS

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["OCCASIONS", "MemberFacts", "member_facts"]
NO_BIRTHDAY = 0
"""`MemberFacts.birth_month_days` of a member whose birth date is not known."""
NO_GAP = np.nan
"""`MemberFacts.usual_gaps` of a member with fewer than two purchase days."""


def birthday_in(year: int, month: int, day: int) -> date:
    """The birthday of (`month`, `day`) in `year`; 29 February is the 28th in other years."""
    if month == 2 and day == 29 and not calendar.isleap(year):
        day = 28
    return date(year, month, day)


def is_birthday_time(
    local_day: date, month: int, day: int, days_before: int, days_after: int
) -> bool:
    """`local_day` lies within [birthday − days_before, birthday + days_after] of a birthday on
    (`month`, `day`) of the previous, same or next year."""
    for year in (local_day.year - 1, local_day.year, local_day.year + 1):
        birthday = birthday_in(year, month, day)
        if (
            birthday - timedelta(days=days_before)
            <= local_day
            <= birthday + timedelta(days=days_after)
        ):
            return True
    return False


def is_welcome_time(tenure_days: int | None, welcome_days: int) -> bool:
    """The member signed up fewer than `welcome_days` days ago (unknown signup: no)."""
    return tenure_days is not None and 0 <= tenure_days < welcome_days


def is_winback_time(
    day: int, last_purchase_day: int | None, usual_gap: float, factor: float
) -> bool:
    """No purchase for longer than `usual_gap` × `factor` days (no usual gap: no)."""
    if last_purchase_day is None or not np.isfinite(usual_gap):
        return False
    return day - last_purchase_day > usual_gap * factor


def is_near_next_tier(spend: float, next_tier_spend: float, share: float) -> bool:
    """`spend` reaches `share` of the next tier's typical spend, but not all of it."""
    return next_tier_spend > 0 and share * next_tier_spend <= spend < next_tier_spend


@dataclass(frozen=True)
class MemberFacts:
    """What occasions read of each member, by member row (`rows`: member id → row)."""

    rows: dict[str, int]
    birth_month_days: np.ndarray
    """month × 100 + day (int16), `NO_BIRTHDAY` when unknown."""
    signup_days: np.ndarray
    """Days since 1970-01-01 (int32)."""
    last_purchase_days: np.ndarray
    """Days since 1970-01-01 (int32), -1: never bought."""
    usual_gaps: np.ndarray
    """Median days between distinct purchase days (float32), `NO_GAP` when unknown."""
    near_next_tier: np.ndarray
    """bool: `is_near_next_tier` as of the data's last purchase day."""

    def occasions(
        self,
        member_id: str,
        day: int,
        local_day: date,
        *,
        birthday_days: tuple[int, int],
        welcome_days: int,
        winback_factor: float,
    ) -> frozenset[str]:
        """The occasions that apply to the member on `day` (days since 1970, UTC) and their
        `local_day`; none for a member the data does not list."""
        row = self.rows.get(member_id)
        if row is None:
            return frozenset()
        found = []
        month_day = int(self.birth_month_days[row])
        if month_day != NO_BIRTHDAY and is_birthday_time(
            local_day, month_day // 100, month_day % 100, *birthday_days
        ):
            found.append("birthday")
        if is_welcome_time(day - int(self.signup_days[row]), welcome_days):
            found.append("welcome")
        last = int(self.last_purchase_days[row])
        gap = float(self.usual_gaps[row])
        if is_winback_time(day, None if last < 0 else last, gap, winback_factor):
            found.append("winback")
        if self.near_next_tier[row]:
            found.append("tier_upgrade")
        return frozenset(found)


def member_facts(
    members: pd.DataFrame, purchases: pd.DataFrame, *, upgrade_share: float, upgrade_days: int
) -> MemberFacts:
    """The facts of every member of validated members and purchases tables."""
    import pandas as pd

    member_ids = members[Columns.member_id].tolist()
    rows = dict(zip(member_ids, range(len(member_ids)), strict=True))
    births = pd.to_datetime(members[Columns.birth_date])
    birth_month_days = np.where(
        births.isna(), NO_BIRTHDAY, births.dt.month.fillna(0) * 100 + births.dt.day.fillna(0)
    ).astype(np.int16)
    signup_days = _days(members[Columns.signup_date]).astype(np.int32)
    member_rows = np.fromiter(
        (rows.get(member_id, -1) for member_id in purchases[Columns.member_id].tolist()),
        dtype=np.int64,
        count=len(purchases),
    )
    purchase_days = _days(purchases[Columns.ts])
    known = member_rows >= 0
    last, gaps = _last_days_and_gaps(member_rows[known], purchase_days[known], len(member_ids))
    spend = np.zeros(len(member_ids))
    if known.any():
        recent = known & (purchase_days > purchase_days[known].max() - upgrade_days)
        amounts = purchases[Columns.amount].to_numpy(dtype=np.float64)
        np.add.at(spend, member_rows[recent], amounts[recent])
    tiers = members[Columns.tier].map({tier: rank for rank, tier in enumerate(TIERS)}).to_numpy()
    near = _near_next_tier(spend, tiers.astype(np.int64), upgrade_share)
    return MemberFacts(rows, birth_month_days, signup_days, last, gaps, near)


def _days(values: pd.Series) -> np.ndarray:
    """Dates or timestamps as days since 1970-01-01 (int64)."""
    return values.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]").astype(np.int64)


def _last_days_and_gaps(
    member_rows: np.ndarray, days: np.ndarray, count: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each member's last purchase day (-1: none) and median gap between distinct purchase
    days (NaN: fewer than two)."""
    last = np.full(count, -1, dtype=np.int32)
    gaps = np.full(count, NO_GAP, dtype=np.float32)
    if len(member_rows) == 0:
        return last, gaps
    first = int(days.min())
    span = int(days.max()) - first + 1
    pairs = np.unique(member_rows * span + (days - first))  # sorted by member, then day
    member_of, day_of = pairs // span, pairs % span + first
    starts = np.flatnonzero(np.r_[True, member_of[1:] != member_of[:-1]])
    ends = np.r_[starts[1:], len(pairs)]
    last[member_of[starts]] = day_of[ends - 1]
    same_member = member_of[1:] == member_of[:-1]
    steps, step_members = np.diff(day_of)[same_member], member_of[1:][same_member]
    order = np.lexsort((steps, step_members))
    steps, step_members = steps[order], step_members[order]
    firsts = np.flatnonzero(np.r_[True, step_members[1:] != step_members[:-1]])[: len(steps)]
    sizes = np.diff(np.r_[firsts, len(steps)])
    middle_low, middle_high = firsts + (sizes - 1) // 2, firsts + sizes // 2
    gaps[step_members[firsts]] = (steps[middle_low] + steps[middle_high]) / 2
    return last, gaps


def _near_next_tier(spend: np.ndarray, tiers: np.ndarray, share: float) -> np.ndarray:
    """bool per member: `is_near_next_tier` against the median spend of the next tier."""
    near = np.zeros(len(spend), dtype=bool)
    for rank in range(len(TIERS) - 1):
        above = spend[tiers == rank + 1]
        if len(above) == 0:
            continue
        typical = float(np.median(above))
        below = tiers == rank
        near[below] = (typical > 0) & (spend[below] >= share * typical) & (spend[below] < typical)
    return near
