"""Frequency caps and list rules (configs/caps.yaml, `PUT /v1/caps`), validated like every
config; `perkrank.config` re-exports them."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, WithJsonSchema, field_validator

from perkrank.config_base import MAX_COUNT, Section

MAX_WINDOW_SECONDS = 366 * 24 * 3600
"""The longest cap window in seconds (a leap year): its counters must expire."""
WINDOW_NAMES = ("day", "week", "month", "total")
WINDOW_SCHEMA = {
    "anyOf": [
        {"enum": list(WINDOW_NAMES)},
        {"type": "integer", "minimum": 1, "maximum": MAX_WINDOW_SECONDS},
        {"type": "string", "pattern": "^0*[1-9][0-9]*$"},
    ]
}
"""What CapRule.window accepts, as JSON Schema (for the OpenAPI page of PUT /v1/caps)."""
CAP_SCOPES = ("member_offer", "member_partner", "member_channel", "offer_total")
CAP_COUNTS = ("served", "impression", "click", "redemption")


class CapRule(Section):
    """One frequency cap: at most `limit` per `scope` key within `window`."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9_]{1,64}$")]
    scope: Literal["member_offer", "member_partner", "member_channel", "offer_total"]
    limit: int = Field(ge=0, le=MAX_COUNT)
    window: Annotated[str | int, WithJsonSchema(WINDOW_SCHEMA)]
    """`day`, `week`, `month` (calendar, UTC), `total` (never resets) or a number of seconds
    (at most 366 days)."""
    counts: Literal["served", "impression", "click", "redemption"] = "served"

    @field_validator("window")
    @classmethod
    def _known_window(cls, window: str | int) -> str | int:
        if isinstance(window, int) or re.fullmatch(r"\d+", str(window)):
            if not 0 < int(window) <= MAX_WINDOW_SECONDS:
                raise ValueError(
                    f"a window in seconds must be positive and at most {MAX_WINDOW_SECONDS} "
                    "(366 days)"
                )
            return int(window)
        if window not in WINDOW_NAMES:
            raise ValueError(f"unknown window {window!r}; use {', '.join(WINDOW_NAMES)} or seconds")
        return window


class LocalFloor(Section):
    """The least share of a served list that goes to local partners' offers, by region.

    A list of `limit` offers holds at least `ceil(share × limit)` local offers whenever that
    many local candidates pass the member's opt-outs, budgets, caps and the per-partner limit
    (else every one that passes)."""

    default: float = Field(0.0, ge=0, le=1)
    """The share in every region `regions` does not name."""
    regions: dict[str, Annotated[float, Field(ge=0, le=1)]] = {}  # noqa: RUF012 (pydantic copies it)

    def share(self, region: str) -> float:
        """The floor in force for `region`."""
        return self.regions.get(region, self.default)


class CapsConfig(Section):
    """A frequency-cap rule set: configs/caps.yaml (the initial version) or a `PUT /v1/caps`
    body. No environment overrides: the rules in force live in the state store.

    Beside the caps, two list rules live (and are versioned and audited) with them, both
    optional so that older rule sets load unchanged: `local_floor` (None: no floor) and
    `max_per_partner` (None: `ServeConfig.max_offers_per_partner`)."""

    rules: tuple[CapRule, ...] = ()
    local_floor: LocalFloor | None = None
    max_per_partner: int | None = Field(None, gt=0, le=1000)
    """At most this many offers of one partner in a list (partner diversity)."""

    @field_validator("rules")
    @classmethod
    def _unique_names(cls, rules: tuple[CapRule, ...]) -> tuple[CapRule, ...]:
        names = [rule.name for rule in rules]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"duplicate rule names: {', '.join(duplicates)}")
        return rules
