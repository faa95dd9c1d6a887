"""The weight search's cached component scores give the metric of the blend itself."""

from datetime import date

import pytest

from perkrank.config import CONFIG_DIR, TrainConfig, load_config
from perkrank.features.loader import load_dataset
from perkrank.features.synthetic import generate
from perkrank.models.blend import score_scale
from perkrank.training import components, pipeline
from perkrank.training.blend_search import blend_metric, window_scores
from perkrank.training.evaluation import evaluate_models

CANDIDATES = [
    {"als": 1.0, "lightfm": 1.0, "regional_popularity": 0.5, "repeat": 1.0},
    {"als": 0.0, "lightfm": 2.0, "regional_popularity": 0.0, "repeat": 4.0},
    {"als": 0.25, "lightfm": 0.0, "regional_popularity": 1.0, "repeat": 0.0},
]


@pytest.fixture(scope="module")
def validation(tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("blend_search")
    generate(work / "data", members=1500, months=6, seed=3, start=date(2025, 1, 1))
    dataset = load_dataset(work / "data")
    config = load_config(TrainConfig, CONFIG_DIR / "train.yaml")
    config = config.model_copy(
        update={"threads": 1, "lightfm": config.lightfm.model_copy(update={"epochs": 3})}
    )
    dates = pipeline.split_dates(dataset, config)
    fitted = components.fit_components(dataset, dates.validation_start, config, names=CANDIDATES[0])
    window = pipeline.evaluation_window(dataset, dates.test_start, fitted, config)
    return window, fitted, config


@pytest.mark.parametrize("weights", CANDIDATES)
def test_cached_scores_give_the_built_blends_metric(validation, weights):
    window, fitted, config = validation
    scaled = {
        name: window_scores(window, factors) / score_scale(factors, seed=config.seed)
        for name, factors in fitted.models.items()
    }
    blend = components.blend_components(fitted, weights, config.seed)
    report = evaluate_models(window, {"blend": blend}, config.evaluation.k_values)
    expected = report.models["blend"].metrics["overall"][config.registry.promote_metric]

    assert blend_metric(window, scaled, weights, config) == pytest.approx(expected, abs=1e-4)


def test_only_the_named_components_are_fitted(validation):
    _, fitted, _ = validation
    assert set(fitted.models) == set(CANDIDATES[0])
