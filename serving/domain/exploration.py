"""Exploration: an arm's shown order sampled from its ranked shortlist, and each offer's
propensity. Pure: the same shortlist, settings and seed (the decision id) sample alike.

Both kinds draw the order one position at a time from the offers not drawn yet, R:

- `softmax` (Plackett–Luce): offer o with probability w(o) / Σ_{a ∈ R} w(a), where
  w(o) = exp(score(o) / temperature). Drawn at once by sorting score / temperature plus
  Gumbel noise (the Gumbel-top-k trick gives exactly the Plackett–Luce order).
- `epsilon`: with probability ε a uniform draw from R, else the best-ranked offer of R; so
  P(o) = ε / |R| + (1 - ε) · [o is the best of R].

An offer's propensity is that probability at the position it was drawn: the probability that
the policy picks it there given the offers drawn before it. It is positive for every offer
(weights are floored, ε > 0), the propensities of a draw's positions multiply to the
probability of the whole order, and at the first position they are the offer's marginal
probability of being shown first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import NamedTuple

import numpy as np

from perkrank.experiment_config import EpsilonExploration, Exploration
from perkrank.serving.domain.ranking_values import Order, Shortlist

LOGIT_FLOOR = 700.0
"""Softmax logits more than this below the best count as this far below: exp(-700) > 0 in
float64, so every offer keeps a positive weight (the sampler uses the floored logits too)."""


class Explored(NamedTuple):
    """The sampled order of a shortlist: rows, their scores, and each one's propensity."""

    rows: list[int]
    scores: list[float]
    propensities: list[float]


def explore(
    rows: Sequence[int], scores: Sequence[float], exploration: Exploration, seed: int
) -> Explored:
    """`rows` (best first, scored `scores`) in the order `exploration` draws with `seed`."""
    rng = np.random.default_rng(seed)
    if isinstance(exploration, EpsilonExploration):
        order, propensities = epsilon_order(len(rows), exploration.epsilon, rng)
    else:
        order, propensities = softmax_order(np.asarray(scores), exploration.temperature, rng)
    return Explored(
        [rows[position] for position in order],
        [scores[position] for position in order],
        propensities,
    )


def softmax_order(
    scores: np.ndarray, temperature: float, rng: np.random.Generator
) -> tuple[list[int], list[float]]:
    """A Plackett–Luce order of positions by exp(scores / temperature), and each position's
    probability given those drawn before it."""
    if not len(scores):
        return [], []
    logits = scores / temperature
    logits = np.maximum(logits - logits.max(), -LOGIT_FLOOR)
    order = np.argsort(-(logits + rng.gumbel(size=len(logits))), kind="stable")
    weights = np.exp(logits[order])
    left = np.cumsum(weights[::-1])[::-1]
    return order.tolist(), (weights / left).tolist()


def epsilon_order(
    count: int, epsilon: float, rng: np.random.Generator
) -> tuple[list[int], list[float]]:
    """An ε-greedy order of `count` positions ranked best first, and each position's
    probability given those drawn before it."""
    uniform = (rng.random(count) < epsilon).tolist()
    picks = rng.random(count).tolist()
    left = list(range(count))
    order, propensities = [], []
    for step in range(count):
        size = count - step
        position = int(picks[step] * size) if uniform[step] else 0
        order.append(left.pop(position))
        propensities.append(epsilon / size + (1 - epsilon) * (position == 0))
    return order, propensities


def explored_shortlist(
    shortlist: Shortlist, pool: int, exploration: Exploration, seed: int
) -> tuple[Shortlist, dict[int, float]]:
    """The shortlist with its first order's best `pool` sampled, and their propensities."""
    order = shortlist.personalized
    explored = explore(order.rows[:pool], order.scores[:pool], exploration, seed)
    sampled = replace(shortlist, personalized=Order(explored.rows, explored.scores))
    return sampled, dict(zip(explored.rows, explored.propensities, strict=True))
