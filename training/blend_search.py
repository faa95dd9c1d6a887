"""Blend weights chosen on a validation window, every component scored there once.

A blend scores Σ weight_c · score_c / scale_c (`models.blend`), so each component's scores
of the window's members × offers (and its scale) are computed once, and a candidate's blend
scores are their weighted sum: no blend is built and no component is rescored per candidate.
The scores equal the blend's up to float rounding (the blend sums in one dot product).
Memory: one float32 (members × offers) matrix per component; `blend.search_members` bounds it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from perkrank.config import TrainConfig
from perkrank.models import scoring
from perkrank.models.blend import score_scale
from perkrank.models.factors import Factors
from perkrank.progress import step
from perkrank.training.evaluation import model_inputs, overall_metrics
from perkrank.training.weights import choose_weights
from perkrank.training.window import EvaluationWindow


def search_blend_weights(
    window: EvaluationWindow, models: Mapping[str, Factors], config: TrainConfig
) -> dict[str, float]:
    """config.blend.weights searched to maximize the blend's promote metric on `window`."""
    with step(f"score {len(config.blend.weights)} components on the validation window"):
        scaled = {
            name: window_scores(window, models[name]) / score_scale(models[name], seed=config.seed)
            for name in config.blend.weights
        }
    return choose_weights(
        lambda weights: blend_metric(window, scaled, weights, config), config.blend.weights
    )


def window_scores(window: EvaluationWindow, factors: Factors) -> np.ndarray:
    """float32 (window members × window offers): the model's score, as `evaluation` scores."""
    member_vectors, offers, repeat = model_inputs(window, factors)
    return scoring.batch_scores(
        member_vectors,
        offers.vectors,
        offers.biases,
        None if repeat is None else repeat.toarray(),
    ).astype(np.float32, copy=False)


def blend_metric(
    window: EvaluationWindow,
    scaled: Mapping[str, np.ndarray],
    weights: Mapping[str, float],
    config: TrainConfig,
) -> float:
    """The promote metric, overall, of the blend Σ weight · scaled scores."""
    kept = {name: np.float32(weight) for name, weight in weights.items() if weight}

    def score_batch(rows: np.ndarray, offers: np.ndarray) -> np.ndarray:
        cells = np.ix_(rows, offers)
        total = np.zeros((len(rows), len(offers)), dtype=np.float32)
        for name, weight in kept.items():
            total += weight * scaled[name][cells]
        return total

    metrics = overall_metrics(window, score_batch, config.evaluation.k_values)
    return metrics[config.registry.promote_metric]
