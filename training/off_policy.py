"""Off-policy evaluation of a ranking policy from the decision log: IPS, self-normalised IPS
and doubly robust estimates, each with a 95 % interval. Pure numpy functions.

**Estimand.** The expected reward (clicks, or redemptions) a target policy earns per decision
over its list of K offers, where K is the length of the logged list (the target shows as many
offers as the logger did), and per impression: that divided by the mean K.

**Assumption (cascade).** The reward of the offer at position k depends on the member, the
offer, its position and the offers above it, never on those below. Then the expected reward at
position k under the target is unbiasedly estimated by re-weighting each logged reward by the
prefix weight w_{1:k} = Π_{j≤k} π(o_j | o_{<j}) / p_j, where p_j is the logged propensity (the
probability the logger drew o_j at j given the offers drawn before it, as
`serving.domain.exploration` logs it: the p_j of a decision multiply to the probability of its
prefix) and π(o_j | o_{<j}) the target's probability of the same choice. A deterministic target
with list t_1…t_K has π = 1 where o_j = t_j, else 0: only decisions whose first k logged offers
are the target's first k count at position k (`deterministic_target`). The item-position model
(reward depends on offer and position only) is a special case.

**Limits.** The target's offers need a positive logging propensity (support): a deterministic
logger (propensity 1.0) only informs targets that agree with it, and IPS then under-counts
(SNIPS reports the rate among agreeing decisions). Where the store skipped a drawn offer
(capped, opted out), the logged propensities condition on that draw, so the prefix probability
is slightly off; the log cannot tell such decisions apart.

**Estimators** (per decision d, summed over its positions k):
- IPS: Σ_k w_{1:k} r_k;
- SNIPS: position by position, IPS divided by the mean prefix weight of that position;
- DR: Σ_k w_{1:k} (r_k − q(o_k, k)) + w_{1:k−1} E_π[q(·, k) | o_{<k}], with a reward model q
  fitted on the log (`RewardModel`: per offer × position rates, shrunk to the position's rate).

Intervals: the normal interval of the mean of per-decision terms (IPS, DR), the delta method
for the ratios (SNIPS, and every per-impression rate).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Z_95 = 1.959963984540054
"""The two-sided 5 % normal quantile."""
PRIOR_STRENGTH = 20.0
"""Impressions' worth of the position's rate each offer × position rate starts from."""


@dataclass(frozen=True)
class Estimate:
    """One estimator's value per decision and per impression, each with a 95 % interval."""

    per_decision: float
    per_decision_ci: tuple[float, float]
    per_impression: float
    per_impression_ci: tuple[float, float]


@dataclass(frozen=True)
class LoggedLists:
    """Decisions as aligned D × K arrays (K: the longest list); positions past a decision's
    length hold offer "" and propensity 1."""

    offers: np.ndarray
    """Offer ids shown, best first (str)."""
    propensities: np.ndarray
    rewards: np.ndarray
    lengths: np.ndarray

    @classmethod
    def build(
        cls,
        offers: Sequence[Sequence[str]],
        propensities: Sequence[Sequence[float]],
        rewards: Sequence[Sequence[float]],
    ) -> LoggedLists:
        """Pad ragged lists (one per decision) into arrays; checks propensities are in (0, 1]."""
        if not offers:
            raise ValueError("no decisions to evaluate")
        lengths = np.array([len(shown) for shown in offers])
        width = max(1, int(lengths.max()))
        padded = np.full((len(offers), width), "", dtype=object)
        chances = np.ones((len(offers), width))
        gains = np.zeros((len(offers), width))
        for row, (shown, chance, gain) in enumerate(
            zip(offers, propensities, rewards, strict=True)
        ):
            if not len(shown) == len(chance) == len(gain):
                raise ValueError(
                    f"decision {row}: offers, propensities and rewards differ in length"
                )
            padded[row, : len(shown)] = shown
            chances[row, : len(shown)] = chance
            gains[row, : len(shown)] = gain
        if (chances <= 0).any() or (chances > 1).any():
            raise ValueError("every propensity must be in (0, 1]")
        return cls(padded, chances, gains, lengths)

    @property
    def shown(self) -> np.ndarray:
        """D × K: whether a position holds an offer."""
        return np.arange(self.offers.shape[1]) < self.lengths[:, np.newaxis]


@dataclass(frozen=True)
class Target:
    """A target policy on the logged decisions: `choice[d, k]` is π(o_k | o_{<k}) of the logged
    offer, `expected[d, k]` the reward model's expectation under π at k given the logged o_{<k}."""

    choice: np.ndarray
    expected: np.ndarray


class RewardModel:
    """Reward rates per offer × position fitted on the log, each shrunk towards its position's
    rate by `PRIOR_STRENGTH` impressions (offers never shown there get the position's rate)."""

    def __init__(self, logged: LoggedLists, prior_strength: float = PRIOR_STRENGTH) -> None:
        shown = logged.shown
        self.position_rates = _safe_divide((logged.rewards * shown).sum(axis=0), shown.sum(axis=0))
        sums: dict[tuple[str, int], float] = {}
        counts: dict[tuple[str, int], int] = {}
        for row, position in zip(*np.nonzero(shown), strict=True):
            key = (logged.offers[row, position], int(position))
            sums[key] = sums.get(key, 0.0) + float(logged.rewards[row, position])
            counts[key] = counts.get(key, 0) + 1
        self._rates = {
            key: (sums[key] + prior_strength * self.position_rates[key[1]])
            / (counts[key] + prior_strength)
            for key in sums
        }

    def rate(self, offer_id: str, position: int) -> float:
        """The fitted reward rate of `offer_id` at 0-based `position`."""
        found = self._rates.get((offer_id, position))
        return float(self.position_rates[position]) if found is None else found

    def rates(self, offers: np.ndarray) -> np.ndarray:
        """`rate` of each cell of a D × K array of offer ids (cell k: position k)."""
        result = np.zeros(offers.shape)
        for (row, position), offer_id in np.ndenumerate(offers):
            result[row, position] = self.rate(offer_id, position)
        return result


def deterministic_target(
    logged: LoggedLists, lists: Sequence[Sequence[str]], model: RewardModel
) -> Target:
    """The target that shows `lists[d]` (best first) in decision d: π(o_k | o_{<k}) is 1 where
    the logged offer is its k-th, else 0; its expected reward at k is the model's rate of its
    k-th offer. A list shorter than the logged one shows nothing past its end."""
    width = logged.offers.shape[1]
    targets = np.full(logged.offers.shape, "", dtype=object)
    for row, offers in enumerate(lists):
        targets[row, : min(width, len(offers))] = list(offers)[:width]
    present = (targets != "") & logged.shown
    choice = ((targets == logged.offers) & present).astype(float)
    expected = np.where(present, model.rates(targets), 0.0)
    return Target(choice, expected)


def prefix_weights(logged: LoggedLists, target: Target) -> np.ndarray:
    """D × K: w_{1:k} = Π_{j≤k} π(o_j | o_{<j}) / p_j (0 past a decision's length)."""
    ratios = np.where(logged.shown, target.choice / logged.propensities, 0.0)
    return np.cumprod(ratios, axis=1)


def ips(logged: LoggedLists, target: Target) -> Estimate:
    """Inverse propensity scoring: Σ_k w_{1:k} r_k per decision."""
    terms = (prefix_weights(logged, target) * logged.rewards).sum(axis=1)
    return _mean_estimate(terms, logged.lengths)


def snips(logged: LoggedLists, target: Target) -> Estimate:
    """Self-normalised IPS: at each position, Σ_d w r / Σ_d w, times the share of decisions
    that have that position."""
    weights = prefix_weights(logged, target)
    has_position = logged.shown.mean(axis=0)
    mean_weights = weights.mean(axis=0)
    rates = _safe_divide((weights * logged.rewards).mean(axis=0), mean_weights)
    value = float((rates * has_position).sum())
    # Delta method: decision d moves the ratio of position k by (w r - rate w) / mean(w).
    scale = _safe_divide(has_position, mean_weights)
    influence = ((weights * logged.rewards - rates * weights) * scale).sum(axis=1)
    return _estimate(value, influence, logged.lengths)


def doubly_robust(logged: LoggedLists, target: Target, model: RewardModel) -> Estimate:
    """Doubly robust: the model's expectation under the target, corrected by the weighted
    residuals of the logged rewards."""
    weights = prefix_weights(logged, target)
    before = np.hstack([np.ones((len(weights), 1)), weights[:, :-1]]) * logged.shown
    residuals = logged.rewards - model.rates(logged.offers)
    terms = (weights * residuals * logged.shown + before * target.expected).sum(axis=1)
    return _mean_estimate(terms, logged.lengths)


def effective_sample_size(logged: LoggedLists, target: Target) -> list[float]:
    """Per position, (Σ w)² / Σ w²: how many on-policy decisions the weights are worth."""
    weights = prefix_weights(logged, target)
    squares = (weights**2).sum(axis=0)
    return _safe_divide(weights.sum(axis=0) ** 2, squares).tolist()


def _mean_estimate(terms: np.ndarray, lengths: np.ndarray) -> Estimate:
    """The mean of per-decision terms with its influence (the terms, centred)."""
    value = float(terms.mean())
    return _estimate(value, terms - value, lengths)


def _estimate(value: float, influence: np.ndarray, lengths: np.ndarray) -> Estimate:
    """Intervals from each decision's influence on `value` (per decision); per impression is
    value / mean length, with the delta method for the ratio."""
    count = len(influence)
    mean_length = float(lengths.mean())
    se = float(np.sqrt(np.mean(influence**2) / count)) if count > 1 else float("nan")
    rate = value / mean_length if mean_length else 0.0
    rate_influence = (influence - rate * (lengths - mean_length)) / (mean_length or 1.0)
    rate_se = float(np.sqrt(np.mean(rate_influence**2) / count)) if count > 1 else float("nan")
    return Estimate(
        per_decision=value,
        per_decision_ci=(value - Z_95 * se, value + Z_95 * se),
        per_impression=rate,
        per_impression_ci=(rate - Z_95 * rate_se, rate + Z_95 * rate_se),
    )


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0."""
    numerator, denominator = np.asarray(numerator, float), np.asarray(denominator, float)
    out = np.zeros(np.broadcast(numerator, denominator).shape)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out
