"""The whole training pipeline on generated data: better than baselines, registered, promotable."""

from collections import Counter
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from perkrank.config import CONFIG_DIR, TrainConfig, load_config
from perkrank.features import interactions, member_features
from perkrank.features.loader import load_dataset
from perkrank.features.synthetic import generate
from perkrank.models.bundle import CALIBRATION_FILE, Bundle
from perkrank.training import components
from perkrank.training.components import fit_components
from perkrank.training.pipeline import TrainResult, train
from perkrank.training.report import format_table

HISTORIES: Counter = Counter()
"""Cutoffs whose purchase history the `trained` run built, and how often."""


FITS: Counter = Counter()
"""(component, members it was fitted on) of every fit the `trained` run made."""


def counting(history_at):
    def wrapper(dataset, cutoff):
        HISTORIES[cutoff] += 1
        return history_at(dataset, cutoff)

    return wrapper


def counting_fit(name, fit):
    def wrapper(data, *args, **kwargs):
        FITS[(name, len(data.member_ids))] += 1
        return fit(data, *args, **kwargs)

    return wrapper


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainResult, TrainConfig]:
    work = tmp_path_factory.mktemp("pipeline")
    generate(work / "data", members=4000, months=12, seed=11, start=date(2025, 1, 1))
    config = load_config(TrainConfig, CONFIG_DIR / "train.yaml")
    registry = config.registry.model_copy(update={"tracking_uri": f"sqlite:///{work}/mlflow.db"})
    config = config.model_copy(update={"registry": registry, "threads": 1})
    with pytest.MonkeyPatch.context() as patch:
        for module in (interactions, member_features):
            patch.setattr(module, "history_at", counting(module.history_at))
        for name in ("fit_als", "fit_bpr", "fit_lightfm"):
            patch.setattr(components, name, counting_fit(name, getattr(components, name)))
        return train(work / "data", config, output_dir=work / "out"), config


@pytest.mark.usefixtures("trained")
def test_each_cutoffs_history_is_built_once():
    assert len(HISTORIES) == 3  # validation start, test start, the served bundle's end
    assert set(HISTORIES.values()) == {1}


@pytest.mark.usefixtures("trained")
def test_each_component_is_fitted_at_most_once_per_window():
    windows = {members for _, members in FITS}
    assert len(windows) == 3  # three cutoffs, three training sets of growing size
    assert set(FITS.values()) == {1}
    assert [members for name, members in FITS if name == "fit_bpr"] == [sorted(windows)[1]]


@pytest.mark.usefixtures("trained")
def test_the_validation_cutoffs_fits_start_before_the_others():
    sizes = [members for _, members in FITS]  # in the order the fits started (one thread)
    validation = min(sizes)
    assert sizes[: sizes.count(validation)] == [validation] * sizes.count(validation)


def test_the_served_bundle_fits_only_the_blended_components(trained):
    _, config = trained
    served = max(members for _, members in FITS)
    fitted = {name for name, members in FITS if members == served}
    blended = {f"fit_{name}" for name in config.blend.weights}
    assert fitted == blended & {"fit_als", "fit_bpr", "fit_lightfm"}


def ndcg(result: TrainResult, model: str, part: str) -> float:
    return result.evaluation.models[model].metrics[part]["ndcg@10"]


@pytest.mark.parametrize("baseline", ["regional_popularity", "repeat", "als"])
def test_blend_beats_baselines_for_warm_members(trained, baseline):
    result, _ = trained
    assert ndcg(result, "blend", "warm") > ndcg(result, baseline, "warm")


def test_blend_and_lightfm_beat_popularity_on_new_offers(trained):
    result, _ = trained
    assert ndcg(result, "blend", "new_offers") > ndcg(result, "popularity", "new_offers")
    assert ndcg(result, "lightfm", "new_offers") > ndcg(result, "popularity", "new_offers")


def test_report_compares_the_served_second_stage_with_the_strongest_baseline(trained):
    result, _ = trained
    verdict = result.evaluation.verdict
    baselines = ("popularity", "regional_popularity", "repeat", "own_pop")
    best = max(baselines, key=lambda name: ndcg(result, name, "overall"))
    assert verdict["served"] == "ranker"
    assert verdict["baseline"] == best
    difference = verdict["differences"]["ndcg@10"]
    assert difference["difference"] == pytest.approx(
        ndcg(result, "ranker", "overall") - ndcg(result, best, "overall")
    )
    assert difference["ci_low"] <= difference["difference"] <= difference["ci_high"]
    markdown = Path(result.report_files[1]).read_text()
    assert f"Strongest baseline: {best}" in markdown
    assert verdict["sentences"][0] in markdown


def test_pipeline_writes_report_and_registers_a_loadable_bundle(trained):
    result, _ = trained
    assert {path.name for path in result.report_files} == {
        "evaluation.json",
        "evaluation.md",
        "evaluation.png",
    }
    assert result.registered_version == "1"
    bundle = Bundle.load(result.bundle_dir)
    assert bundle.meta["weights"] == result.weights
    assert Path(result.bundle_dir, "ranker", "arrays", "item_vectors.npy").is_file()


def test_the_blend_is_calibrated_on_validation_and_its_lists_valued(trained):
    result, _ = trained
    calibration = Bundle.load(result.bundle_dir).calibration
    overall = result.evaluation.models["blend"].metrics["overall"]

    assert Path(result.bundle_dir, CALIBRATION_FILE).is_file()
    assert calibration.slope > 0
    assert 0 < calibration.probabilities(np.array([0.0]))[0] < 0.5  # most pairs are not bought
    assert overall["expected_value@10"] != 0
    assert "value@10" in overall
    assert "expected_value@10" in format_table(result.evaluation)


def test_the_served_bundle_carries_the_second_stage_of_all_purchases(trained):
    result, _ = trained
    bundle = Bundle.load(result.bundle_dir)
    assert bundle.meta["served"] == "ranker"
    assert {path.name for path in Path(result.bundle_dir, "second_stage").iterdir()} == {
        "ranker.json",
        "sizes.json",
        "purchase_stats.npz",
    }
    stage = bundle.second_stage
    dataset = load_dataset(result.bundle_dir.parent.parent / "data")
    assert stage.stats.member_purchases.sum() == len(dataset.purchases)
    warm = [m for m in bundle.ranker.member_ids.tolist() if stage.member_row(m) is not None]
    assert len(warm) > 0.9 * len(bundle.ranker.member_ids)


def test_same_data_config_and_seed_give_the_same_models(tmp_path):
    generate(tmp_path / "data", members=500, months=4, seed=3, start=date(2025, 1, 1))
    dataset = load_dataset(tmp_path / "data")
    config = load_config(TrainConfig, CONFIG_DIR / "train.yaml").model_copy(
        update={"threads": 2, "deterministic": True}
    )
    cutoff = date(2025, 4, 1)

    first = fit_components(dataset, cutoff, config).models
    second = fit_components(dataset, cutoff, config).models

    for name, factors in first.items():
        assert np.array_equal(factors.member_vectors, second[name].member_vectors), name
        assert np.array_equal(factors.item_vectors, second[name].item_vectors), name
