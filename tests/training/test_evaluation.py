"""Model evaluation on the hand-made window of conftest: rankings, metrics per slice, reports."""

import numpy as np
import pytest
import scipy.sparse as sp

from perkrank.features.vocabulary import item_id
from perkrank.models import scoring
from perkrank.models.factors import Factors
from perkrank.training.evaluation import (
    evaluate_model,
    evaluate_models,
    model_inputs,
    overall_metrics,
    recommend,
)
from perkrank.training.window import EvaluationWindow

K_VALUES = (1, 2, 5)

ITEMS = [item_id("P1", "food"), item_id("P2", "food"), item_id("P1", "travel")]


def oracle(sign: float = 1.0) -> Factors:
    """Scores exactly the relevant items of m1 (P1/P2 food) and m2 (P1 travel) highest."""
    return Factors(
        member_ids=np.array(["m1", "m2"]),
        member_vectors=sign * np.array([[1.0, 0.0], [0.0, 1.0]]),
        item_ids=np.array(ITEMS),
        item_vectors=np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]),
        item_biases=np.zeros(3),
        name="oracle" if sign > 0 else "reversed",
    )


def test_oracle_scores_perfect_ndcg_on_every_slice(window):
    report = evaluate_model(window, oracle(), K_VALUES)
    for name, values in report.metrics.items():
        assert values["ndcg@5"] == pytest.approx(1.0), name
        assert values["recall@5"] == pytest.approx(1.0), name


def test_reversed_model_scores_worse_than_oracle(window):
    good = evaluate_model(window, oracle(), K_VALUES).metrics["overall"]
    bad = evaluate_model(window, oracle(-1.0), K_VALUES).metrics["overall"]
    assert bad["ndcg@2"] < good["ndcg@2"]
    assert bad["map@2"] < good["map@2"]
    assert bad["hit_rate@1"] < good["hit_rate@1"]


def test_coverage_counts_distinct_top_offers_over_candidate_offers(window):
    overall = evaluate_model(window, oracle(), K_VALUES).metrics["overall"]
    assert overall["coverage@1"] == pytest.approx(2 / 4)  # m1: O1 (tie with O2), m2: O6
    assert overall["coverage@5"] == pytest.approx(4 / 4)


def test_evaluate_models_reports_every_model_and_slice_sizes(window):
    report = evaluate_models(window, {"good": oracle(), "bad": oracle(-1.0)}, K_VALUES)
    assert list(report.models) == ["good", "bad"]
    assert report.models["good"].members["warm"] == 1
    assert report.window["members"] == 2
    assert report.to_dict()["models"]["bad"]["metrics"]["overall"]["ndcg@5"] < 1.0


def brute_force_ranking(window: EvaluationWindow, factors: Factors, k: int) -> dict[str, list[str]]:
    """Each member's ranking from per-member Factors calls, ties by offer_id."""
    expected = {}
    for group in window.groups:
        items = window.offer_items[group.offer_rows]
        names = [window.offer_item_features[o] for o in group.offer_rows]
        vectors, biases, item_rows = scoring.item_inputs(factors, items, names)
        for row in group.member_rows:
            member = str(window.member_ids[row])
            vector = scoring.member_vector(factors, member, window.member_features[row])
            repeat = scoring.repeat_scores(factors, factors.member_row(member), item_rows)
            scores = scoring.scores(vector, vectors, biases, repeat)
            order = sorted(
                range(len(items)), key=lambda i: (-scores[i], window.offer_ids[group.offer_rows[i]])
            )
            expected[member] = [str(window.offer_ids[group.offer_rows[i]]) for i in order[:k]]
    return expected


def test_batch_ranking_equals_per_member_factor_scores(window):
    rng = np.random.default_rng(11)
    member_features = ["region=south", "tier=gold"]
    item_features = ["partner=P1", "category=books", "scope=federal"]
    factors = Factors(
        member_ids=np.array(["m1", "mx"]),  # m2 is unknown: built from its features
        member_vectors=rng.normal(size=(2, 4)),
        item_ids=np.array(ITEMS),  # P1 books is unknown: built from its features
        item_vectors=rng.normal(size=(3, 4)),
        item_biases=rng.normal(size=3),
        member_feature_ids=np.array(member_features),
        member_feature_vectors=rng.normal(size=(2, 4)),
        item_feature_ids=np.array(item_features),
        item_feature_vectors=rng.normal(size=(3, 4)),
        item_feature_biases=rng.normal(size=3),
        repeat=sp.csr_matrix(np.array([[3.0, 0.0, 1.0], [0.0, 2.0, 0.0]])),
        repeat_weight=0.7,
    )
    assert recommend(window, factors, 2) == brute_force_ranking(window, factors, 2)
    assert recommend(window, factors, 5) == brute_force_ranking(window, factors, 5)


def test_member_values_average_to_the_overall_metrics(window):
    report = evaluate_model(window, oracle(-1.0), K_VALUES)
    overall = report.metrics["overall"]
    for k in K_VALUES:
        for metric in ("ndcg", "recall"):
            values = report.member_values[f"{metric}@{k}"]
            assert len(values) == report.members["overall"]
            assert values.mean() == pytest.approx(overall[f"{metric}@{k}"])


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_overall_metrics_equal_the_full_evaluation_of_the_same_scores(window, sign):
    factors = oracle(sign)
    member_vectors, offers, _ = model_inputs(window, factors)

    def score_batch(rows, offer_rows):
        return member_vectors[rows] @ offers.vectors[offer_rows].T

    full = evaluate_model(window, factors, K_VALUES).metrics["overall"]
    assert overall_metrics(window, score_batch, K_VALUES) == pytest.approx(full)


def test_local_share_counts_the_local_partners_offers_in_each_top_k(window):
    overall = evaluate_model(window, oracle(), K_VALUES).metrics["overall"]

    assert window.offer_ids[window.offer_is_local].tolist() == ["O2"]  # P2 is local
    # m1 (north, base) gets O1, O2 and O5 in its top-5; m2 (south) never gets the north's O2.
    assert overall["local_share@5"] == pytest.approx((1 / 3 + 0) / 2)
