import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.off_policy import evaluate, synthetic_log
from perkrank.training.off_policy import (
    LoggedLists,
    RewardModel,
    deterministic_target,
    doubly_robust,
    effective_sample_size,
    ips,
    prefix_weights,
    snips,
)


def lists(offers, propensities, rewards):
    return LoggedLists.build(offers, propensities, rewards)


def test_ips_snips_and_dr_by_hand():
    logged = lists([["a", "b"], ["b", "a"]], [[0.5, 0.5], [0.5, 1.0]], [[1, 0], [0, 1]])
    model = RewardModel(logged, prior_strength=0)
    target = deterministic_target(logged, [["a", "b"], ["a", "b"]], model)

    assert prefix_weights(logged, target).tolist() == [[2.0, 4.0], [0.0, 0.0]]
    assert ips(logged, target).per_decision == pytest.approx(1.0)
    assert ips(logged, target).per_impression == pytest.approx(0.5)
    assert snips(logged, target).per_decision == pytest.approx(1.0)
    # A: 2·(1 − q(a,1)=1) + q(a,1)=1, then 4·(0 − q(b,2)=0) + 2·q(b,2)=0; B: q(a,1) = 1.
    assert doubly_robust(logged, target, model).per_decision == pytest.approx(1.0)


def test_prefix_weights_multiply_and_snips_normalises_each_position():
    logged = lists([["a", "b"], ["a", "c"]], [[0.5, 0.25], [0.5, 0.5]], [[0, 1], [1, 1]])
    model = RewardModel(logged, prior_strength=0)
    target = deterministic_target(logged, [["a", "b"], ["a", "b"]], model)

    assert prefix_weights(logged, target).tolist() == [[2.0, 8.0], [2.0, 0.0]]
    assert ips(logged, target).per_decision == pytest.approx((8 + 2) / 2)
    # Position 1: (0 + 2) / (2 + 2) = 0.5; position 2: 8 / 8 = 1.
    assert snips(logged, target).per_decision == pytest.approx(1.5)
    # q(a,1) = 1/2, q(b,2) = 1. A: 2(0 − ½) + ½ + 8(1 − 1) + 2·1; B: 2(1 − ½) + ½ + 0 + 2·1.
    assert doubly_robust(logged, target, model).per_decision == pytest.approx((1.5 + 3.5) / 2)


def test_a_deterministic_logger_informs_only_decisions_that_agree():
    logged = lists([["a"], ["b"]], [[1.0], [1.0]], [[1], [0]])
    model = RewardModel(logged, prior_strength=0)
    target = deterministic_target(logged, [["b"], ["b"]], model)

    assert ips(logged, target).per_decision == 0.0  # decision B agrees and earned nothing
    assert snips(logged, target).per_decision == 0.0
    assert effective_sample_size(logged, target) == [1.0]


def test_the_reward_model_shrinks_rates_towards_the_position_rate():
    logged = lists([["a"], ["b"], ["b"], ["b"]], [[1.0]] * 4, [[1], [0], [0], [1]])
    model = RewardModel(logged, prior_strength=2)

    assert model.position_rates.tolist() == [0.5]
    assert model.rate("a", 0) == pytest.approx((1 + 2 * 0.5) / 3)
    assert model.rate("b", 0) == pytest.approx((1 + 2 * 0.5) / 5)
    assert model.rate("never shown", 0) == 0.5


@pytest.mark.parametrize(
    ("offers", "propensities", "rewards", "problem"),
    [
        ([], [], [], "no decisions"),
        ([["a"]], [[0.0]], [[1]], "propensity"),
        ([["a"]], [[1.5]], [[1]], "propensity"),
        ([["a", "b"]], [[1.0]], [[1, 0]], "decision 0"),
    ],
)
def test_bad_logs_are_refused(offers, propensities, rewards, problem):
    with pytest.raises(ValueError, match=problem):
        LoggedLists.build(offers, propensities, rewards)


decision_lists = st.lists(
    st.lists(
        st.tuples(
            st.sampled_from("abcde"),
            st.floats(0.05, 1.0),
            st.integers(0, 1),
        ),
        min_size=1,
        max_size=3,
        unique_by=lambda item: item[0],
    ),
    min_size=2,
    max_size=30,
)


def unzip(decisions):
    offers = [[offer for offer, _, _ in shown] for shown in decisions]
    propensities = [[p for _, p, _ in shown] for shown in decisions]
    rewards = [[r for _, _, r in shown] for shown in decisions]
    return offers, propensities, rewards


@settings(max_examples=60, deadline=None)
@given(decision_lists)
def test_on_policy_every_estimator_is_the_logged_mean(decisions):
    offers, _, rewards = unzip(decisions)
    logged = lists(offers, [[1.0] * len(shown) for shown in offers], rewards)
    model = RewardModel(logged)
    target = deterministic_target(logged, offers, model)
    observed = np.mean([sum(row) for row in rewards])

    for estimate in (ips(logged, target), snips(logged, target)):
        assert estimate.per_decision == pytest.approx(observed)
    assert doubly_robust(logged, target, model).per_decision == pytest.approx(observed)


@settings(max_examples=60, deadline=None)
@given(decision_lists, st.floats(0.1, 1.0), st.permutations("abcde"))
def test_snips_ignores_a_common_scale_of_the_first_propensity(decisions, scale, order):
    offers, propensities, rewards = unzip(decisions)
    scaled = [[p * scale if k == 0 else p for k, p in enumerate(row)] for row in propensities]
    targets = [list(order[:3])] * len(offers)
    found = []
    for chances in (propensities, scaled):
        logged = lists(offers, chances, rewards)
        found.append(snips(logged, deterministic_target(logged, targets, RewardModel(logged))))

    assert found[0].per_decision == pytest.approx(found[1].per_decision)


@settings(max_examples=60, deadline=None)
@given(decision_lists, st.permutations("abcde"))
def test_intervals_hold_their_estimate_and_rates_stay_bounded(decisions, order):
    offers, propensities, rewards = unzip(decisions)
    logged = lists(offers, propensities, rewards)
    model = RewardModel(logged)
    target = deterministic_target(logged, [list(order[:3])] * len(offers), model)

    for estimate in (
        ips(logged, target),
        snips(logged, target),
        doubly_robust(logged, target, model),
    ):
        low, high = estimate.per_decision_ci
        assert low <= estimate.per_decision <= high or math.isclose(low, high)
        low, high = estimate.per_impression_ci
        assert low - 1e-9 <= estimate.per_impression <= high + 1e-9
    assert ips(logged, target).per_decision >= 0
    assert 0 <= snips(logged, target).per_decision <= 3 + 1e-9


@pytest.mark.parametrize("seed", [0, 1])
def test_on_a_synthetic_log_ips_covers_the_truth_and_dr_is_within_10_percent(seed):
    log = synthetic_log(20_000, seed=seed)
    found = evaluate(log)

    assert found["ips"]["covers_truth"]
    assert found["snips"]["covers_truth"]
    assert found["dr"]["covers_truth"]
    assert abs(found["dr"]["relative_error"]) < 0.10
