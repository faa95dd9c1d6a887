"""Blend weight search finds the best weights of a known metric surface."""

from perkrank.training.weights import choose_weights


def test_search_reaches_the_optimum_of_a_separable_metric():
    target = {"als": 2.0, "lightfm": 0.5, "repeat": 1.0}

    def metric(weights):
        return -sum((weights[name] - target[name]) ** 2 for name in target)

    assert choose_weights(metric, {"als": 1.0, "lightfm": 1.0, "repeat": 1.0}) == target


def test_search_never_sets_every_weight_to_zero():
    def metric(weights):
        return -sum(weights.values())

    weights = choose_weights(metric, {"als": 1.0, "repeat": 1.0})
    assert any(weights.values())


def test_each_candidate_is_evaluated_once():
    calls = []

    def metric(weights):
        calls.append(tuple(sorted(weights.items())))
        return 0.0

    choose_weights(metric, {"als": 1.0, "repeat": 1.0})
    assert len(calls) == len(set(calls))
