"""The serving bundle: the personalized ranker, the non-personalized fallback, and metadata.

Layout of a bundle directory: `ranker/` and `fallback/` (each a `Factors` directory) and
`bundle.json` (model name, components, blend weights, evaluation summary). This is what the
training pipeline logs to MLflow and what serving loads; neither implicit nor lightfm is needed
to read it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perkrank.models.factors import Factors


@dataclass
class Bundle:
    """A ranker (personalized), a fallback (regional popularity) and free-form metadata."""

    ranker: Factors
    fallback: Factors
    meta: dict[str, Any] = field(default_factory=dict)

    def save(self, directory: Path | str) -> Path:
        """Write the bundle into `directory`."""
        directory = Path(directory)
        self.ranker.save(directory / "ranker")
        self.fallback.save(directory / "fallback")
        (directory / "bundle.json").write_text(
            json.dumps(self.meta, indent=2, sort_keys=True) + "\n"
        )
        return directory

    @classmethod
    def load(cls, directory: Path | str) -> Bundle:
        """Read a bundle written by `save`."""
        directory = Path(directory)
        if not (directory / "bundle.json").is_file():
            raise FileNotFoundError(f"{directory}: not a perkrank bundle (no bundle.json)")
        return cls(
            ranker=Factors.load(directory / "ranker"),
            fallback=Factors.load(directory / "fallback"),
            meta=json.loads((directory / "bundle.json").read_text()),
        )
