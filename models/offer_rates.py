"""Offer-level response rates: each offer's redemptions per impression, shrunk to the global
rate, as a prior on the ranking score.

From an offer's impressions n and redemptions r and the global rate g = Σ r / Σ n, the
smoothed rate is the posterior mean under a Beta prior of mean g and strength m impressions:

    rate = (r + m · g) / (n + m)

with m fitted by the method of moments (empirical Bayes): the spread of the raw rates r / n
beyond what binomial noise explains is the prior's variance τ², and m = g (1 − g) / τ² − 1
(kept within `STRENGTH_BOUNDS`). An offer with few impressions stays near g.

Applied by `models.scoring.offer_prior` as an additive term on the score,
weight · log(rate / g): the score of an offer twice as likely to be redeemed as the average
rises by weight · log 2. An offer without events (or a bundle without rates) adds 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

FILE = "offer_rates.npz"
STRENGTH_BOUNDS = (1.0, 1e6)
"""The prior's strength in impressions: at least 1, at most a million (no spread: all g)."""


@dataclass(frozen=True)
class OfferRates:
    """Smoothed redemptions per impression per offer, and the weight of their prior."""

    offer_ids: np.ndarray
    """str, one per offer seen in the events."""
    rates: np.ndarray
    global_rate: float
    strength: float
    """m: the impressions' worth of g each offer starts from."""
    weight: float

    @classmethod
    def fit(
        cls,
        offer_ids: np.ndarray,
        impressions: np.ndarray,
        redemptions: np.ndarray,
        weight: float,
    ) -> OfferRates | None:
        """Smoothed rates of offers with `impressions` and `redemptions` (aligned); None when
        nothing was shown or nothing redeemed (no prior to apply)."""
        shown = np.asarray(impressions, float)
        redeemed = np.minimum(np.asarray(redemptions, float), shown)
        if shown.sum() <= 0 or redeemed.sum() <= 0:
            return None
        g = float(redeemed.sum() / shown.sum())
        strength = shrinkage_strength(shown, redeemed, g)
        rates = (redeemed + strength * g) / (shown + strength)
        return cls(np.asarray(offer_ids, dtype=str), rates, g, strength, float(weight))

    def log_lift(self) -> np.ndarray:
        """weight · log(rate / g) of each offer."""
        return self.weight * np.log(self.rates / self.global_rate)

    def save(self, directory: Path) -> None:
        """Write `FILE` into `directory`."""
        np.savez(
            directory / FILE,
            offer_ids=self.offer_ids,
            rates=self.rates,
            scalars=np.array([self.global_rate, self.strength, self.weight]),
        )

    @classmethod
    def load(cls, directory: Path) -> OfferRates | None:
        """The rates `save` wrote into `directory`; None when it has none."""
        if not (directory / FILE).is_file():
            return None
        with np.load(directory / FILE) as stored:
            global_rate, strength, weight = stored["scalars"].tolist()
            return cls(stored["offer_ids"], stored["rates"], global_rate, strength, weight)


def shrinkage_strength(shown: np.ndarray, redeemed: np.ndarray, g: float) -> float:
    """m of the method of moments (module docstring), within `STRENGTH_BOUNDS`."""
    seen = shown > 0
    raw = redeemed[seen] / shown[seen]
    noise = float(np.mean(g * (1 - g) / shown[seen]))
    spread = float(np.var(raw)) - noise
    if spread <= 0:
        return STRENGTH_BOUNDS[1]
    return float(np.clip(g * (1 - g) / spread - 1, *STRENGTH_BOUNDS))
