"""Cap windows as pure functions: which bucket `now` falls in and how long that bucket lasts.

Calendar windows are UTC: `day` (midnight to midnight), `week` (ISO week, Monday 00:00 to
Monday 00:00), `month` (the 1st to the 1st). `total` is one bucket that never ends. A number
of seconds cuts time into fixed buckets counted from the Unix epoch: bucket floor(now / seconds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

TOTAL_LABEL = "total"
DAY_SECONDS = 86400
EPOCH = date(1970, 1, 1)


@dataclass(frozen=True)
class Bucket:
    """One window bucket: its label (part of counter keys) and seconds until it ends."""

    label: str
    ttl_seconds: int | None
    """Whole seconds until the bucket ends, rounded up (at least 1); None: it never ends."""


def current_bucket(window: str | int, now: float) -> Bucket:
    """The bucket of `window` that `now` (Unix seconds) falls in."""
    if window == "total":
        return Bucket(TOTAL_LABEL, None)
    if isinstance(window, int):
        index = math.floor(now / window)
        return Bucket(f"{window}s-{index}", _seconds_left(now, (index + 1) * window))
    day = math.floor(now / DAY_SECONDS)
    today = EPOCH + timedelta(days=day)
    if window == "day":
        return Bucket(today.isoformat(), _seconds_left(now, (day + 1) * DAY_SECONDS))
    if window == "week":
        iso_year, iso_week, iso_weekday = today.isocalendar()
        next_monday = day + 8 - iso_weekday
        return Bucket(f"{iso_year}-W{iso_week:02d}", _seconds_left(now, next_monday * DAY_SECONDS))
    if window == "month":
        next_year, next_month = divmod(today.year * 12 + today.month, 12)
        next_first = (date(next_year, next_month + 1, 1) - EPOCH).days
        return Bucket(f"{today:%Y-%m}", _seconds_left(now, next_first * DAY_SECONDS))
    raise ValueError(f"unknown window {window!r}")


def _seconds_left(now: float, end: float) -> int:
    return max(1, math.ceil(end - now))
