"""Evaluation member block by member block equals evaluation of the whole window at once.

A small synthetic program with fitted models (real-valued factors, so a different sum order
would show) and a fitted second stage. The references are the whole-window computations the
pipeline ran before evaluation was blocked: dense members × offers scores
(`candidates.model_scores`; for the second stage the fallback's, overwritten member by member
with `member_scores`), ranked in one block. The blocked runs use blocks of 4 members, so every
group is cut into several blocks. Metrics, per-member values and value metrics must be equal,
not close.
"""

from dataclasses import replace
from datetime import date
from unittest.mock import patch

import numpy as np
import pytest

from perkrank.config import TrainConfig
from perkrank.features.loader import load_dataset
from perkrank.features.synthetic import generate
from perkrank.models import value
from perkrank.models.second_stage import member_scores
from perkrank.training import evaluation, ranker_step
from perkrank.training.candidates import model_scores
from perkrank.training.components import blend_components, fit_components
from perkrank.training.evaluation import ModelReport, evaluate_model, evaluate_scores
from perkrank.training.pipeline import evaluation_window
from perkrank.training.value_evaluation import list_values, rank_window

K_VALUES = (5, 10)
SMALL_BLOCK = 4
WEIGHTS = {"als": 1.0, "regional_popularity": 0.5, "repeat": 1.0}
VALIDATION, TEST, END = date(2025, 3, 1), date(2025, 3, 15), date(2025, 3, 29)


class Fitted:
    """Models fitted before the test window, a second stage fitted on the window before it."""

    def __init__(self, data_dir) -> None:
        generate(data_dir, members=2000, months=3, seed=4, start=date(2025, 1, 1))
        self.dataset = load_dataset(data_dir)
        config = TrainConfig(als={"factors": 8, "iterations": 3}, threads=1)
        names = list(WEIGHTS)
        before = fit_components(self.dataset, VALIDATION, config, names=names)
        self.fitted = fit_components(self.dataset, TEST, config, names=names)
        self.window = evaluation_window(self.dataset, END, self.fitted, config)
        self.blend = blend_components(self.fitted, WEIGHTS, seed=0)
        self.fallback = self.fitted.models["regional_popularity"]
        linear = ranker_step.fit_on_window(
            self.dataset,
            evaluation_window(self.dataset, TEST, before, config),
            blend_components(before, WEIGHTS, seed=0),
            seed=0,
        )
        assert linear is not None
        self.stage = ranker_step.served_stage(self.dataset, TEST, *linear)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> Fitted:
    return Fitted(tmp_path_factory.mktemp("data"))


def whole_window_stage_scores(fitted: Fitted) -> np.ndarray:
    """float64 (members × offers): the second stage's scores as one dense array."""
    window, stage = fitted.window, fitted.stage
    dense = model_scores(window, fitted.fallback).astype(np.float64)
    data = ranker_step.StageData(stage.stats, stage.region_ids)
    for inputs in ranker_step.ranked_members(window, fitted.blend, data, stage.sizes):
        dense[inputs.member, inputs.offers] = member_scores(
            stage, inputs.stats_row, inputs.item_rows, inputs.flags, inputs.blend_scores
        )
    return dense


def in_one_block(fitted: Fitted, dense: np.ndarray, name: str) -> ModelReport:
    members = len(fitted.window.member_ids)
    with patch.object(evaluation, "BATCH_MEMBERS", members):
        scores = lambda rows, offers: dense[np.ix_(rows, offers)]  # noqa: E731
        return evaluate_scores(fitted.window, scores, K_VALUES, name)


def assert_same_report(blocked: ModelReport, whole: ModelReport) -> None:
    assert blocked.metrics == whole.metrics
    assert blocked.members == whole.members
    assert blocked.slice_values.keys() == whole.slice_values.keys()
    for part, values in whole.slice_values.items():
        assert blocked.slice_values[part].keys() == values.keys()
        for metric, expected in values.items():
            np.testing.assert_array_equal(blocked.slice_values[part][metric], expected)


def test_the_window_is_cut_into_several_blocks(fitted):
    sizes = [len(group.member_rows) for group in fitted.window.groups]
    assert len(sizes) > 1 and sum(size > 2 * SMALL_BLOCK for size in sizes) >= 3
    assert len(fitted.window.member_ids) > 100


@pytest.mark.parametrize("name", ["blend", "als", "regional_popularity", "repeat"])
def test_a_model_evaluated_in_blocks_equals_its_dense_scores_ranked_at_once(fitted, name):
    factors = fitted.blend if name == "blend" else fitted.fitted.models[name]
    whole = in_one_block(fitted, model_scores(fitted.window, factors), name)
    with patch.object(evaluation, "BATCH_MEMBERS", SMALL_BLOCK):
        blocked = evaluate_model(fitted.window, factors, K_VALUES, name)
    assert whole.metrics["overall"]["ndcg@10"] > 0
    assert_same_report(blocked, whole)


def test_the_second_stage_evaluated_in_blocks_equals_its_dense_scores_ranked_at_once(fitted):
    dense = whole_window_stage_scores(fitted)
    whole = in_one_block(fitted, dense, ranker_step.RANKER)
    with patch.object(evaluation, "BATCH_MEMBERS", SMALL_BLOCK):
        blocked = ranker_step.evaluate_ranker(
            fitted.window, fitted.blend, fitted.fallback, fitted.stage, K_VALUES
        )
    blend = evaluate_model(fitted.window, fitted.blend, K_VALUES)
    assert whole.metrics != blend.metrics, "the second stage changed nothing: the test is blind"
    assert_same_report(blocked, whole)


def test_value_metrics_in_blocks_equal_those_of_one_block(fitted):
    window = fitted.window
    calibration = value.Calibration(slope=0.7, intercept=-1.5)
    net = np.random.default_rng(2).normal(size=len(window.offer_ids))
    ranking = rank_window(window, fitted.blend, 10, calibration, None, ("all",))["all"]
    with patch.object(evaluation, "BATCH_MEMBERS", len(window.member_ids)):
        whole = list_values(window, fitted.blend, ranking, calibration, net, 10)
    with patch.object(evaluation, "BATCH_MEMBERS", SMALL_BLOCK):
        blocked = list_values(window, fitted.blend, ranking, calibration, net, 10)
    assert whole["expected_value@10"] != 0
    assert blocked == whole


def test_a_window_without_members_has_zero_list_values(fitted):
    window = fitted.window
    empty = replace(
        window,
        slices=tuple(replace(part, member_rows=part.member_rows[:0]) for part in window.slices),
    )
    ranking = rank_window(window, fitted.blend, 10, value.IDENTITY, None, ("all",))["all"]
    values = list_values(empty, fitted.blend, ranking, value.IDENTITY, np.ones(3), 10)
    assert values == {"expected_value@10": 0.0, "value@10": 0.0}


def test_slice_values_read_later_average_to_each_slices_metrics(fitted):
    report = evaluate_model(fitted.window, fitted.blend, K_VALUES)
    assert list(report.slice_values) == [part.name for part in fitted.window.slices]
    assert "region=nowhere" not in report.slice_values
    checked = 0
    for part in fitted.window.slices:
        values = report.slice_values[part.name]
        assert len(values["ndcg@10"]) == len(part.member_rows)
        if len(part.member_rows):
            for metric in ("ndcg@5", "recall@10"):
                assert values[metric].mean() == report.metrics[part.name][metric], part.name
            checked += 1
    assert checked >= 5
