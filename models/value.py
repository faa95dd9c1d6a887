"""Value-aware scores, written once: serving's orders and evaluation's rankings both call this.

    z      = slope · score + intercept            calibrated log-odds of redemption
    v̂      = (partner_funding − reward_cost) / s  net value to the program, s = max |net| > 0
    final  = z + value_weight · v̂ + ln(lever)     the ranking key

that is, odds(final) = odds(p) · exp(value_weight · v̂) · lever with p = sigmoid(z); for the
small redemption probabilities offers have, odds ≈ p, so the final score is
p · exp(value_weight · v̂) · lever on a log scale. `value_weight` 0 ranks by relevance alone;
a lever's multiplier above 1 boosts, below 1 buries. Calibration is a Platt scaling (a logistic
regression of the outcome on the score), fitted by damped Newton steps: two parameters, strictly
increasing in the score (slope > 0), so it never reorders a list by itself and it needs neither
scikit-learn nor pickles. A bundle without calibration uses `IDENTITY` (slope 1, intercept 0:
the score is read as log-odds). numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

NEWTON_STEPS = 50
RIDGE = 1e-6
"""Added to the Hessian's diagonal so that separable or constant scores still fit."""
MAX_HALVINGS = 40
"""Step halvings a Newton step may take before the fit stops where it is."""
MIN_SLOPE = 1e-6
"""A fitted slope is kept above this: calibration must keep the model's order."""


@dataclass(frozen=True)
class Calibration:
    """Platt scaling of a model's scores: p = sigmoid(slope · score + intercept)."""

    slope: float = 1.0
    intercept: float = 0.0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.slope) and np.isfinite(self.intercept)) or self.slope <= 0:
            raise ValueError(
                f"calibration needs a finite slope > 0 and a finite intercept, got "
                f"slope {self.slope}, intercept {self.intercept}"
            )

    def log_odds(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated log-odds of `scores` (the input's dtype)."""
        scores = np.asarray(scores)
        if self.slope == 1.0 and self.intercept == 0.0:
            return scores
        return (scores * self.slope + self.intercept).astype(scores.dtype, copy=False)

    def probabilities(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated redemption probabilities of `scores` (float64)."""
        return sigmoid(self.log_odds(np.asarray(scores, dtype=np.float64)))

    def to_dict(self) -> dict[str, Any]:
        return {"method": "platt", "slope": self.slope, "intercept": self.intercept}

    @classmethod
    def from_dict(cls, fields: dict[str, Any]) -> Calibration:
        """The calibration `to_dict` wrote (ValueError naming what is wrong)."""
        if fields.get("method") != "platt":
            raise ValueError(f"unknown calibration method {fields.get('method')!r}")
        return cls(float(fields["slope"]), float(fields["intercept"]))


IDENTITY = Calibration()
"""What serves a bundle without calibration: the score is read as log-odds."""


def sigmoid(values: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-values)) without overflow."""
    values = np.asarray(values, dtype=np.float64)
    return np.exp(-np.logaddexp(0.0, -values))


def fit_platt(scores: np.ndarray, outcomes: np.ndarray) -> Calibration:
    """The Platt scaling that maximizes the likelihood of `outcomes` (0/1) given `scores`.

    ValueError when there are no scores or the outcomes are all alike (nothing to fit)."""
    x = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(outcomes, dtype=np.float64).ravel()
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"calibration needs as many outcomes as scores, got {len(x)}, {len(y)}")
    positives = y.sum()
    if positives == 0 or positives == len(y):
        raise ValueError("calibration needs both outcomes in the validation window")
    center, spread = x.mean(), x.std() or 1.0
    standard = (x - center) / spread
    design = np.column_stack([standard, np.ones_like(standard)])
    weights = np.array([0.0, np.log(positives / (len(y) - positives))])
    likelihood = _log_likelihood(design, y, weights)
    for _ in range(NEWTON_STEPS):
        p = sigmoid(design @ weights)
        gradient = design.T @ (y - p)
        hessian = (design * (p * (1 - p))[:, None]).T @ design + RIDGE * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        # Halve the step until the likelihood does not fall: a full Newton step overshoots on
        # heavy-tailed scores (the likelihood is concave, so some step size always helps).
        for _ in range(MAX_HALVINGS):
            trial = _log_likelihood(design, y, weights + step)
            if trial >= likelihood:
                break
            step = step / 2
        else:
            break
        weights, likelihood = weights + step, trial
        if np.abs(step).max() < 1e-10:
            break
    slope = max(weights[0] / spread, MIN_SLOPE)
    intercept = weights[1] - slope * center
    return Calibration(float(slope), float(intercept))


def _log_likelihood(design: np.ndarray, outcomes: np.ndarray, weights: np.ndarray) -> float:
    """Σ y·z − ln(1 + e^z) of a logistic model with log-odds z = design @ weights."""
    log_odds = design @ weights
    return float(outcomes @ log_odds - np.logaddexp(0.0, log_odds).sum())


def net_values(reward_cost: np.ndarray, partner_funding: np.ndarray) -> np.ndarray:
    """Value to the program of one redemption: partner funding − reward cost (missing: 0)."""
    cost = np.nan_to_num(np.asarray(reward_cost, dtype=np.float64))
    funding = np.nan_to_num(np.asarray(partner_funding, dtype=np.float64))
    return funding - cost


def value_scale(net: np.ndarray) -> float:
    """What net values are divided by: the largest |net value| of the catalog (0: none)."""
    net = np.asarray(net, dtype=np.float64)
    return float(np.abs(net).max()) if len(net) else 0.0


def value_terms(net: np.ndarray, value_weight: float, scale: float | None = None) -> np.ndarray:
    """value_weight · net / scale for each offer (`scale` None: `value_scale(net)`, serving's
    whole catalog; evaluation passes the catalog's so a window's offers weigh alike); all 0
    when the scale is 0."""
    net = np.asarray(net, dtype=np.float64)
    scale = value_scale(net) if scale is None else scale
    if value_weight == 0 or scale == 0:
        return np.zeros(len(net), dtype=np.float64)
    return value_weight * net / scale


def final_scores(
    scores: np.ndarray, calibration: Calibration, adjustments: np.ndarray | None
) -> np.ndarray:
    """The ranking key: calibrated log-odds plus each offer's value term and ln(lever)
    (`adjustments`, aligned with the last axis of `scores`; None: none), in `scores`' dtype."""
    result = calibration.log_odds(scores)
    if adjustments is None:
        return result
    return (result + adjustments).astype(np.asarray(scores).dtype, copy=False)


def expected_values(probabilities: np.ndarray, net: np.ndarray) -> np.ndarray:
    """Expected value to the program of showing each offer: p(redeem) · net value."""
    return np.asarray(probabilities, dtype=np.float64) * np.asarray(net, dtype=np.float64)
