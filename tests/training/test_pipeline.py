"""The whole training pipeline on generated data: better than baselines, registered, promotable."""

from datetime import date
from pathlib import Path

import pytest

from perkrank.config import CONFIG_DIR, TrainConfig, load_config
from perkrank.features.synthetic import generate
from perkrank.models.bundle import Bundle
from perkrank.training.pipeline import TrainResult, train


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainResult, TrainConfig]:
    work = tmp_path_factory.mktemp("pipeline")
    generate(work / "data", members=4000, months=12, seed=11, start=date(2025, 1, 1))
    config = load_config(TrainConfig, CONFIG_DIR / "train.yaml")
    registry = config.registry.model_copy(update={"tracking_uri": f"sqlite:///{work}/mlflow.db"})
    config = config.model_copy(update={"registry": registry, "threads": 1})
    return train(work / "data", config, output_dir=work / "out"), config


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
    assert Path(result.bundle_dir, "ranker", "arrays.npz").is_file()
