"""The serving bundle: the personalized ranker, the non-personalized fallback, and metadata.

Layout of a bundle directory: `ranker/` and `fallback/` (each a `Factors` directory),
`bundle.json` (model name, components, blend weights, evaluation summary) and, in bundles
that serve the learned second stage, `second_stage/` (`models.second_stage_files`); a bundle
without it serves the blend (`ranker/`) alone. A bundle for campaign coupons may hold
`coupon_stage/` (`models.coupon_stage`): the coupon ranker for the members it knows. A bundle
trained with events may hold `offer_rates.npz`, the offer-level response prior
(`models.offer_rates`), and a bundle trained since value-aware ranking `calibration.json`, the
Platt scaling of the ranker's scores to redemption probabilities (`models.value`; without it:
`value.IDENTITY`). This is what the training pipeline logs to MLflow and what serving loads;
neither implicit nor lightfm is needed to read it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perkrank.models.coupon_stage import CouponStage, load_coupon_stage, save_coupon_stage
from perkrank.models.factors import Factors
from perkrank.models.offer_rates import OfferRates
from perkrank.models.second_stage import SecondStage
from perkrank.models.second_stage_files import load_second_stage, save_second_stage
from perkrank.models.value import IDENTITY, Calibration

SECOND_STAGE_DIR = "second_stage"
COUPON_STAGE_DIR = "coupon_stage"
CALIBRATION_FILE = "calibration.json"


@dataclass
class Bundle:
    """A ranker (personalized: the blend), a fallback (regional popularity), free-form
    metadata and optionally the second stage that reorders warm members' candidates."""

    ranker: Factors
    fallback: Factors
    meta: dict[str, Any] = field(default_factory=dict)
    second_stage: SecondStage | None = None
    offer_rates: OfferRates | None = None
    """Smoothed redemptions per impression per offer (None: no prior)."""
    coupon_stage: CouponStage | None = None
    """The campaign coupon ranker (None: none)."""
    calibration: Calibration = IDENTITY
    """The ranker's scores → redemption probabilities (`IDENTITY`: none was fitted)."""

    def save(self, directory: Path | str) -> Path:
        """Write the bundle into `directory`."""
        directory = Path(directory)
        self.ranker.save(directory / "ranker")
        self.fallback.save(directory / "fallback")
        if self.second_stage is not None:
            save_second_stage(self.second_stage, directory / SECOND_STAGE_DIR)
        if self.offer_rates is not None:
            self.offer_rates.save(directory)
        if self.coupon_stage is not None:
            save_coupon_stage(self.coupon_stage, directory / COUPON_STAGE_DIR)
        if self.calibration != IDENTITY:
            calibration = json.dumps(self.calibration.to_dict(), indent=2, sort_keys=True)
            (directory / CALIBRATION_FILE).write_text(calibration + "\n")
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
            second_stage=load_second_stage(directory / SECOND_STAGE_DIR)
            if (directory / SECOND_STAGE_DIR).is_dir()
            else None,
            offer_rates=OfferRates.load(directory),
            coupon_stage=load_coupon_stage(directory / COUPON_STAGE_DIR)
            if (directory / COUPON_STAGE_DIR).is_dir()
            else None,
            calibration=_load_calibration(directory / CALIBRATION_FILE),
        )


def _load_calibration(path: Path) -> Calibration:
    """The calibration in `path`; `IDENTITY` when the bundle has none (ValueError naming the
    file when it cannot be read)."""
    if not path.is_file():
        return IDENTITY
    try:
        return Calibration.from_dict(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: not a calibration: {error}") from error
