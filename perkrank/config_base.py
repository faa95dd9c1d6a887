"""The base of every config section, shared by `perkrank.config` and the modules it draws on."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

MAX_COUNT = 1_000_000_000
"""The upper bound of counts and sizes (cap limits, events kept, members sampled)."""


class Section(BaseModel):
    """A nested block of a config file; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)
