"""Exploration: sampled orders and their propensities, checked by hand, by enumerating every
order, and against the frequencies of many seeded draws."""

import itertools
import math

import numpy as np
import pytest

from perkrank.experiment_config import EpsilonExploration, SoftmaxExploration
from perkrank.serving.domain.exploration import explore

ROWS = [7, 3, 9]
SCORES = [2.0, 1.0, 0.0]
"""A shortlist as ranking gives it: rows best first, with their scores."""
SOFTMAX = SoftmaxExploration(kind="softmax", temperature=0.5)
EPSILON = EpsilonExploration(kind="epsilon", epsilon=0.3)
DRAWS = 20_000


def softmax_sequence_probability(order: list[int], temperature: float) -> float:
    """Plackett–Luce, by hand: each pick's weight over the weights not picked yet."""
    weights = {row: math.exp(score / temperature) for row, score in zip(ROWS, SCORES, strict=True)}
    probability, left = 1.0, set(ROWS)
    for row in order:
        probability *= weights[row] / sum(weights[other] for other in left)
        left.remove(row)
    return probability


def epsilon_sequence_probability(order: list[int], epsilon: float) -> float:
    """ε-greedy, by hand: ε / |left| for any pick, plus 1 - ε for the best one left."""
    probability, left = 1.0, list(ROWS)
    for row in order:
        probability *= epsilon / len(left) + (1 - epsilon) * (row == left[0])
        left.remove(row)
    return probability


def test_softmax_propensities_are_plackett_luce_picks_given_the_earlier_ones():
    drawn = explore(ROWS, SCORES, SOFTMAX, seed=11)

    weights = {row: math.exp(score / 0.5) for row, score in zip(ROWS, SCORES, strict=True)}
    first, second, third = drawn.rows
    assert sorted(drawn.rows) == sorted(ROWS)
    assert drawn.scores == [SCORES[ROWS.index(row)] for row in drawn.rows]
    assert drawn.propensities == pytest.approx(
        [
            weights[first] / sum(weights.values()),
            weights[second] / (weights[second] + weights[third]),
            1.0,
        ]
    )


def test_epsilon_propensities_add_the_greedy_share_to_the_best_one_left():
    drawn = explore(ROWS, SCORES, EPSILON, seed=5)

    left = list(ROWS)
    expected = []
    for row in drawn.rows:
        expected.append(0.3 / len(left) + 0.7 * (row == left[0]))
        left.remove(row)
    assert drawn.propensities == pytest.approx(expected)
    assert explore(
        ROWS, SCORES, EpsilonExploration(kind="epsilon", epsilon=1.0), 5
    ).propensities == (pytest.approx([1 / 3, 1 / 2, 1.0]))


@pytest.mark.parametrize(
    ("exploration", "by_hand"),
    [
        (SOFTMAX, lambda order: softmax_sequence_probability(order, 0.5)),
        (EPSILON, lambda order: epsilon_sequence_probability(order, 0.3)),
    ],
)
def test_every_order_has_positive_probability_and_they_sum_to_one(exploration, by_hand):
    probabilities = [by_hand(list(order)) for order in itertools.permutations(ROWS)]

    assert all(probability > 0 for probability in probabilities)
    assert sum(probabilities) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("exploration", "by_hand"),
    [
        (SOFTMAX, lambda order: softmax_sequence_probability(order, 0.5)),
        (EPSILON, lambda order: epsilon_sequence_probability(order, 0.3)),
    ],
)
def test_seeded_draws_match_the_logged_propensities(exploration, by_hand):
    counts: dict[tuple[int, ...], int] = {}
    first_counts = dict.fromkeys(ROWS, 0)
    logged: dict[tuple[int, ...], float] = {}
    first_logged: dict[int, float] = {}
    for seed in range(DRAWS):
        drawn = explore(ROWS, SCORES, exploration, seed)
        order = tuple(drawn.rows)
        counts[order] = counts.get(order, 0) + 1
        first_counts[order[0]] += 1
        logged[order] = math.prod(drawn.propensities)
        first_logged[order[0]] = drawn.propensities[0]

    for order, probability in logged.items():
        assert probability == pytest.approx(by_hand(list(order)))
        # within 5 standard errors: a bound, not a flaky tolerance (the seeds are fixed)
        bound = 5 * math.sqrt(probability * (1 - probability) / DRAWS)
        assert abs(counts[order] / DRAWS - probability) <= bound
    assert set(logged) == set(itertools.permutations(ROWS))  # every order was drawn
    for row, probability in first_logged.items():
        bound = 5 * math.sqrt(probability * (1 - probability) / DRAWS)
        assert abs(first_counts[row] / DRAWS - probability) <= bound


def test_the_same_seed_draws_the_same_order_and_another_seed_may_not():
    orders = {tuple(explore(ROWS, SCORES, SOFTMAX, seed).rows) for seed in range(50)}

    assert explore(ROWS, SCORES, SOFTMAX, 123) == explore(ROWS, SCORES, SOFTMAX, 123)
    assert explore(ROWS, SCORES, EPSILON, 2**127 + 1) == explore(ROWS, SCORES, EPSILON, 2**127 + 1)
    assert len(orders) > 1


def test_far_worse_offers_keep_a_positive_propensity():
    cold = SoftmaxExploration(kind="softmax", temperature=0.001)

    propensities = [
        propensity
        for seed in range(20)
        for propensity in explore(ROWS, [1000.0, 0.0, -1000.0], cold, seed).propensities
    ]

    assert all(propensity > 0 for propensity in propensities)
    assert np.isfinite(propensities).all()


def test_an_empty_shortlist_draws_nothing():
    assert explore([], [], SOFTMAX, 1) == ([], [], [])
    assert explore([], [], EPSILON, 1) == ([], [], [])
