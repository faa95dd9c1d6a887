"""Marketer levers: boost or bury a partner's, a category's or one offer's scores for a while
(validated like every config; stored, versioned and audited as a live setting like caps)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from perkrank.config_base import Section
from perkrank.features.schema import ID_MAX_LENGTH

LEVER_TARGETS = ("partner", "category", "offer")
MAX_MULTIPLIER = 100.0


class Lever(Section):
    """Multiply the odds of every offer of `partner`, `category` or `offer` `value` by
    `multiplier` (> 1 boosts, < 1 buries) from `start` (inclusive, UTC day) until `end`
    (exclusive); no `start`: from now on, no `end`: until removed."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9_]{1,64}$")]
    target: Literal["partner", "category", "offer"]
    value: str = Field(min_length=1, max_length=ID_MAX_LENGTH)
    """The partner id, category or offer id the lever applies to."""
    multiplier: float = Field(ge=1 / MAX_MULTIPLIER, le=MAX_MULTIPLIER)
    start: date | None = None
    end: date | None = None

    @model_validator(mode="after")
    def _ordered_dates(self) -> Lever:
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError(f"end {self.end} must come after start {self.start}")
        return self


class LeversConfig(Section):
    """A lever set: a `PUT /v1/levers` body or `perkrank levers set FILE` (YAML or JSON). No
    environment overrides: the levers in force live in the state store."""

    levers: tuple[Lever, ...] = ()

    @field_validator("levers")
    @classmethod
    def _unique_names(cls, levers: tuple[Lever, ...]) -> tuple[Lever, ...]:
        names = [lever.name for lever in levers]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"duplicate lever names: {', '.join(duplicates)}")
        return levers
