"""Channel rules, pure: how many offers a list on a channel holds, and whether a request falls
in the channel's quiet hours in the member's local time (push and SMS by default)."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

from perkrank.mechanics_config import ChannelSettings, QuietHours

QUIET_HOURS = "quiet_hours"
"""The reason an offers response is empty because of quiet hours."""


def list_size(limit: int, settings: ChannelSettings | None) -> int:
    """The request's `limit`, at most the channel's `max_offers` (None settings: `limit`)."""
    if settings is None or settings.max_offers is None:
        return limit
    return min(limit, settings.max_offers)


def local_time(now: float, zone: ZoneInfo) -> datetime:
    """Unix seconds `now` as the wall-clock time in `zone`."""
    return datetime.fromtimestamp(now, zone)


def in_quiet_hours(now: float, zone: ZoneInfo, settings: ChannelSettings | None) -> bool:
    """The local time of `now` in `zone` falls in the channel's quiet hours."""
    if settings is None or settings.quiet_hours is None:
        return False
    return quiet_at(local_time(now, zone).time(), settings.quiet_hours)


def quiet_at(clock: time, quiet: QuietHours) -> bool:
    """`clock` is in [start, end), a span that crosses midnight when end ≤ start (start ==
    end: all day)."""
    if quiet.start < quiet.end:
        return quiet.start <= clock < quiet.end
    return clock >= quiet.start or clock < quiet.end
