"""Paired bootstrap over members: known answers on hand-made vectors."""

import numpy as np
import pytest

from perkrank.training.compare import (
    compare_models,
    paired_bootstrap,
    served_verdict,
    strongest_baseline,
    verdict_sentence,
)
from perkrank.training.evaluation import EvaluationReport, ModelReport


def test_a_constant_difference_has_a_zero_width_interval():
    second = np.linspace(0, 0.9, 50)
    result = paired_bootstrap(second + 0.1, second, metric="ndcg@10")
    assert result.mean == pytest.approx(0.1)
    assert result.low == pytest.approx(0.1)
    assert result.high == pytest.approx(0.1)
    assert result.verdict == "better"
    assert result.members == 50


def test_identical_models_tie_at_zero():
    values = np.random.default_rng(1).random(200)
    result = paired_bootstrap(values, values)
    assert (result.mean, result.low, result.high) == (0.0, 0.0, 0.0)
    assert result.verdict == "tie"


def test_interval_matches_the_normal_approximation_of_a_coin():
    # Differences 0 or 1, half each: mean 0.5, standard error 0.5 / sqrt(n).
    n = 400
    first = np.tile([0.0, 1.0], n // 2)
    result = paired_bootstrap(first, np.zeros(n), resamples=20_000, seed=3)
    half_width = 1.96 * 0.5 / np.sqrt(n)
    assert result.mean == 0.5
    assert result.low == pytest.approx(0.5 - half_width, abs=0.005)
    assert result.high == pytest.approx(0.5 + half_width, abs=0.005)


def test_pairing_removes_the_spread_between_members():
    # Members differ widely; the first model is 0.01 better for every one of them.
    spread = np.random.default_rng(2).random(300)
    paired = paired_bootstrap(spread + 0.01, spread)
    unpaired = paired_bootstrap(spread + 0.01, np.random.default_rng(4).permutation(spread))
    assert paired.low > 0
    assert unpaired.low < 0 < unpaired.high


def test_worse_model_and_seeded_reproducibility():
    rng = np.random.default_rng(5)
    second = rng.random(500)
    first = second - 0.05 + 0.01 * rng.standard_normal(500)
    result = paired_bootstrap(first, second, seed=9)
    assert result.verdict == "worse"
    assert result == paired_bootstrap(first, second, seed=9)
    assert result.high < 0


def test_vectors_must_pair():
    with pytest.raises(ValueError, match="one shape"):
        paired_bootstrap(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="no members"):
        paired_bootstrap(np.zeros(0), np.zeros(0))


def test_resamples_are_drawn_in_chunks_with_the_same_answer(monkeypatch):
    import perkrank.training.compare as compare

    first, second = np.random.default_rng(6).random((2, 100))
    whole = paired_bootstrap(first, second, seed=1, resamples=4000)
    monkeypatch.setattr(compare, "CELLS_PER_CHUNK", 100 * 7)  # 7 resamples a chunk
    chunked = paired_bootstrap(first, second, seed=1, resamples=4000)
    assert chunked.mean == whole.mean
    assert chunked.low == pytest.approx(whole.low, abs=0.01)
    assert chunked.high == pytest.approx(whole.high, abs=0.01)
    assert chunked.low < chunked.mean < chunked.high


def model(name: str, ndcg: np.ndarray, recall: np.ndarray) -> ModelReport:
    return ModelReport(
        name=name,
        metrics={"overall": {"ndcg@10": float(ndcg.mean()), "recall@10": float(recall.mean())}},
        members={"overall": len(ndcg)},
        seconds=0.0,
        member_values={"ndcg@10": ndcg, "recall@10": recall},
    )


def report() -> EvaluationReport:
    base = np.linspace(0.1, 0.6, 40)
    return EvaluationReport(
        window={},
        k_values=(10,),
        models={
            "popularity": model("popularity", base - 0.1, base - 0.1),
            "own_pop": model("own_pop", base, base),
            "repeat": model("repeat", base - 0.01, base),
            "als": model("als", base + 0.3, base + 0.3),  # learned: never "the baseline"
            "blend": model("blend", base, base + 0.02),
        },
    )


def test_strongest_baseline_is_the_best_non_learned_model():
    assert strongest_baseline(report(), "ndcg@10") == "own_pop"
    empty = EvaluationReport(window={}, k_values=(10,), models={})
    assert strongest_baseline(empty, "ndcg@10") is None


def test_served_verdict_says_plainly_when_the_served_model_does_not_win():
    verdict = served_verdict(report(), "blend", 10)
    assert verdict["baseline"] == "own_pop"
    assert verdict["differences"]["ndcg@10"]["verdict"] == "tie"
    assert verdict["differences"]["recall@10"]["verdict"] == "better"
    assert "does NOT beat own_pop" in verdict["sentences"][0]
    assert verdict["sentences"][1].startswith("blend 0.3700 beats own_pop 0.3500 on recall@10")


def test_compare_models_pairs_the_members_of_two_reports():
    differences = compare_models(report(), "own_pop", "popularity", ["ndcg@10"])
    assert differences["ndcg@10"].mean == pytest.approx(0.1)
    sentence = verdict_sentence("own_pop", "popularity", differences["ndcg@10"])
    assert "beats popularity" in sentence and "+0.1000 (95% CI +0.1000 … +0.1000)" in sentence


def test_run_metrics_name_the_served_model_unprefixed():
    from perkrank.training.pipeline import run_metrics

    metrics = run_metrics(report(), "own_pop")
    assert metrics["ndcg@10"] == report().models["own_pop"].metrics["overall"]["ndcg@10"]
    assert metrics["popularity.ndcg@10"] < metrics["ndcg@10"]
    assert "own_pop.ndcg@10" not in metrics
