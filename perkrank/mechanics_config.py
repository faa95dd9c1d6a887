"""The loyalty program's own mechanics: region time zones, channels (list sizes, quiet hours),
occasion offers (birthday, welcome, win-back, tier upgrade) and how long a shown decision is
remembered. `mechanics` in configs/serve.yaml; every key has a default, so older configs load
unchanged."""

from __future__ import annotations

import functools
from datetime import time
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

ChannelName = Literal["store", "app", "web", "push", "sms", "email"]
MAX_DAYS = 36_600


class MechanicsSection(BaseModel):
    """A nested block of a config file; unknown keys are errors (as `config.Section`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class QuietHours(MechanicsSection):
    """Local times (the member's region's time zone) from `start` up to `end`, across midnight
    when `end` is not after `start`; a request then gets no offers."""

    start: time
    end: time


class ChannelSettings(MechanicsSection):
    """One channel's list size and quiet hours."""

    max_offers: int | None = Field(None, gt=0, le=1000)
    """The most offers one list on this channel holds (None: `max_limit`)."""
    quiet_hours: QuietHours | None = None


class Occasions(MechanicsSection):
    """When occasion offers are eligible, and how much they are boosted."""

    birthday_days_before: int = Field(3, ge=0, le=180)
    birthday_days_after: int = Field(7, ge=0, le=180)
    """A birthday offer is eligible from this many days before to this many after the
    member's birthday (local date of their region)."""
    welcome_days: int = Field(30, gt=0, le=MAX_DAYS)
    """A welcome offer is eligible while the member's tenure is below this many days."""
    winback_gap_factor: float = Field(3.0, gt=0, le=1000)
    """A win-back offer is eligible when the member bought nothing for longer than their
    usual (median) gap between purchase days × this factor."""
    tier_upgrade_share: float = Field(0.8, gt=0, lt=1)
    """A tier-upgrade offer is eligible when the member's spend over the last
    `tier_upgrade_days` reaches this share of the median spend of the next tier's members,
    but not all of it."""
    tier_upgrade_days: int = Field(365, gt=0, le=MAX_DAYS)
    boost: float = Field(1.0, ge=0, le=1000)
    """Added to an eligible occasion offer's score (model score units) in every order."""


def _default_channels() -> dict[str, ChannelSettings]:
    night = QuietHours(start=time(21), end=time(9))
    return {
        "push": ChannelSettings(max_offers=1, quiet_hours=night),
        "sms": ChannelSettings(max_offers=1, quiet_hours=night),
        "email": ChannelSettings(max_offers=6),
    }


SYNTHETIC_TIME_ZONES = {
    "capital": "Europe/Moscow",
    "north": "Europe/Moscow",
    "south": "Europe/Moscow",
    "volga": "Europe/Samara",
    "ural": "Asia/Yekaterinburg",
    "siberia": "Asia/Novosibirsk",
    "west": "Europe/Kaliningrad",
    "coast": "Asia/Vladivostok",
    "east": "Asia/Irkutsk",
    "far_east": "Asia/Kamchatka",
}
"""The synthetic program's regions (features/synthetic/program.py)."""


class ProgramMechanics(MechanicsSection):
    """`mechanics` in configs/serve.yaml."""

    time_zones: dict[str, str] = Field(default_factory=lambda: dict(SYNTHETIC_TIME_ZONES))
    """Region → IANA time zone; birthdays and quiet hours use the member's region's."""
    default_time_zone: str = "UTC"
    """The time zone of a region `time_zones` does not name."""
    channels: dict[ChannelName, ChannelSettings] = Field(default_factory=_default_channels)
    occasions: Occasions = Occasions()
    decision_ttl_seconds: int = Field(7 * 86_400, gt=0, le=366 * 86_400)
    """How long a shown decision is remembered: its re-show on another channel within it is
    not counted again against rules counting `served`."""

    @field_validator("time_zones")
    @classmethod
    def _known_zones(cls, zones: dict[str, str]) -> dict[str, str]:
        for region, zone in zones.items():
            _check_zone(zone, f"time_zones.{region}")
        return zones

    @field_validator("default_time_zone")
    @classmethod
    def _known_default(cls, zone: str) -> str:
        return _check_zone(zone, "default_time_zone")

    def time_zone(self, region: str) -> ZoneInfo:
        """The region's time zone (one ZoneInfo per zone, kept: zoneinfo's own cache keeps only
        8 strongly, and a zone dropped from it is read from disk again)."""
        return zone_info(self.time_zones.get(region, self.default_time_zone))


@functools.cache
def zone_info(zone: str) -> ZoneInfo:
    """The IANA time zone `zone`, loaded once per process."""
    return ZoneInfo(zone)


def _check_zone(zone: str, where: str) -> str:
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{where}: {zone!r} is not an IANA time zone") from None
    return zone
