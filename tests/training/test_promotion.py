"""`perkrank promote` on real runs: lineage recorded, both versions re-scored on one window."""

import csv
import json
import shutil
from datetime import date
from pathlib import Path
from unittest.mock import patch

import mlflow
import pytest
import yaml

from perkrank.cli import main
from perkrank.config import CONFIG_DIR, TrainConfig, load_config
from perkrank.features.synthetic import generate
from perkrank.models.bundle import Bundle
from perkrank.models.registry import CHAMPION
from perkrank.training import ranker_step
from perkrank.training.lineage import combined_sha256, input_files
from perkrank.training.pipeline import TrainResult, train
from perkrank.training.promotion import promote
from perkrank.training.ranker_step import RANKER

STRONG = {"als": 1.0, "repeat": 1.0, "regional_popularity": 0.5}
WEAK = {"popularity": 1.0}


class Runs:
    """Trains small models into one registry."""

    def __init__(self, work: Path) -> None:
        self.work = work
        base = load_config(TrainConfig, CONFIG_DIR / "train.yaml")
        registry = base.registry.model_copy(
            update={"tracking_uri": f"sqlite:///{work}/mlflow.db", "model_name": "promotion"}
        )
        self.config = base.model_copy(
            update={
                "registry": registry,
                "threads": 1,
                "als": base.als.model_copy(update={"factors": 8}),
                "bpr": base.bpr.model_copy(update={"factors": 4, "iterations": 5}),
                "lightfm": base.lightfm.model_copy(update={"no_components": 4, "epochs": 2}),
            }
        )
        self.results: dict[str, TrainResult] = {}

    def data(self, name: str, seed: int) -> Path:
        data_dir = self.work / name
        generate(data_dir, members=600, months=5, seed=seed, start=date(2025, 1, 1))
        return data_dir

    def train(self, data_dir: Path, weights: dict[str, float]) -> str:
        """A run; the WEAK blend is served without a second stage (as if none was fitted)."""
        blend = self.config.blend.model_copy(update={"weights": weights, "fit_weights": False})
        config = self.config.model_copy(update={"blend": blend})
        fit = ranker_step.fit_on_window if weights != WEAK else lambda *a, **k: None
        with patch.object(ranker_step, "fit_on_window", fit):
            result = train(data_dir, config, output_dir=self.work / f"out{len(self.results)}")
        self.results[result.registered_version] = result
        return result.registered_version

    def served(self, version: str) -> str:
        return Bundle.load(self.results[version].bundle_dir).meta["served"]

    def ndcg(self, version: str) -> float:
        """The run's reported NDCG@10 of the model it serves."""
        models = self.results[version].evaluation.models
        return models[self.served(version)].metrics["overall"]["ndcg@10"]

    def champion(self) -> str:
        client = mlflow.MlflowClient(self.config.registry.tracking_uri)
        return str(client.get_model_version_by_alias("promotion", CHAMPION).version)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    return Runs(tmp_path_factory.mktemp("promotion"))


@pytest.fixture(scope="module")
def data_a(runs: Runs) -> Path:
    return runs.data("a", seed=3)


def test_promotion_rescores_both_versions_on_the_candidates_window(runs, data_a):
    weak = runs.train(data_a, WEAK)
    assert promote(runs.config.registry).reason.startswith("no champion yet")
    strong = runs.train(data_a, STRONG)

    decision = promote(runs.config.registry)

    # Both numbers are the ones each run reported on this window: the window was rebuilt
    # exactly and each side is its ranker fitted before the window.
    assert decision.promoted, decision.reason
    assert f"candidate v{strong} {runs.ndcg(strong):.4f}" in decision.reason
    assert f"champion v{weak} {runs.ndcg(weak):.4f}" in decision.reason
    assert "its evaluated model" in decision.reason  # the served one saw the window
    assert (runs.served(strong), runs.served(weak)) == (RANKER, "blend")
    assert "95% CI" in decision.reason and "lies above the margin 0.0000" in decision.reason
    assert runs.champion() == strong

    worse = runs.train(data_a, WEAK)
    refused = promote(runs.config.registry)
    assert not refused.promoted
    assert f"candidate v{worse} {runs.ndcg(worse):.4f}" in refused.reason
    assert "does not lie above the margin" in refused.reason
    assert runs.champion() == strong

    forced = promote(runs.config.registry, force=True)
    assert forced.promoted and forced.reason.startswith("forced: ndcg@10 on ")
    assert runs.champion() == worse


def test_a_model_trained_on_other_data_needs_force(runs, data_a):
    other = runs.train(runs.data("b", seed=4), STRONG)
    champion = runs.champion()

    refused = promote(runs.config.registry, version=other)

    assert not refused.promoted
    assert refused.reason.startswith(f"WARNING: v{other} was trained on different data")
    assert refused.reason.endswith("--force to promote it anyway")
    assert runs.champion() == champion
    forced = promote(runs.config.registry, version=other, force=True)
    assert forced.promoted and forced.reason.startswith("WARNING: ")
    assert "candidate v" in forced.reason  # still compared on its window


def test_changed_data_cannot_be_compared(runs, data_a):
    copy = runs.work / "copy"
    shutil.copytree(data_a, copy)
    promote(runs.config.registry, version=runs.train(data_a, WEAK), force=True)
    candidate = runs.train(copy, STRONG)
    purchases = next(copy.glob("purchases.*"))
    purchases.write_bytes(purchases.read_bytes() + b"\n")

    refused = promote(runs.config.registry, version=candidate)

    assert not refused.promoted
    assert f"the files in {copy.resolve()} changed since the candidate's run" in refused.reason


def test_each_run_records_the_data_it_saw(runs, data_a):
    result = next(iter(runs.results.values()))
    client = mlflow.MlflowClient(runs.config.registry.tracking_uri)
    version = client.get_model_version("promotion", result.registered_version)
    run = client.get_run(version.run_id)
    digest = combined_sha256(input_files(data_a))
    assert run.data.params["data.data_sha256"] == digest
    assert version.tags["lineage.data_sha256"] == digest
    assert (
        run.data.params["data.split.test_start"]
        == json.loads(version.tags["lineage.split"])["test_start"]
    )
    assert int(run.data.params["data.rows.purchases"]) > 0
    assert int(version.tags["lineage.members"]) == 600
    lineage_file = Path(
        mlflow.artifacts.download_artifacts(
            run_id=version.run_id,
            artifact_path="lineage.json",
            tracking_uri=runs.config.registry.tracking_uri,
        )
    )
    lineage = json.loads(lineage_file.read_text())
    assert lineage["files"] == input_files(data_a)
    assert lineage["first_purchase"] < lineage["last_purchase"]
    assert set(lineage["split"]) == {"validation_start", "test_start", "test_end"}


def test_cli_promote_prints_the_off_policy_estimate_beside_the_decision(
    runs, data_a, tmp_path, capsys
):
    candidate = runs.train(data_a, STRONG)
    config = tmp_path / "train.yaml"
    registry = {"tracking_uri": runs.config.registry.tracking_uri, "model_name": "promotion"}
    config.write_text(yaml.safe_dump({"registry": registry}))
    with (data_a / "offers.csv").open() as file:
        offers = [row["offer_id"] for row in csv.DictReader(file)][:2]
    decisions, events = tmp_path / "decisions.csv", tmp_path / "events.csv"
    shown = [
        {"decision_id": "d1", "ts": "2025-05-20T10:00:00+00:00", "member_id": "M000001"}
        | {"channel": "app", "personalized": True, "offer_id": offer, "rank": rank}
        | {"score": 0.0, "propensity": 0.5}
        for rank, offer in enumerate(offers, start=1)
    ]
    with decisions.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(shown[0]))
        writer.writeheader()
        writer.writerows(shown)
    events.write_text("type,member_id,offer_id,ts,decision_id\n")
    logs = [f"--data={data_a}", f"--decisions={decisions}", f"--events={events}"]

    code = main(["promote", f"--config={config}", f"--version={candidate}", "--force", *logs])
    halfway = main(["promote", f"--config={config}", f"--decisions={decisions}"])

    printed = capsys.readouterr()
    assert code == 0
    assert f"# Off-policy estimate of promotion/{candidate}" in printed.out
    assert "1 logged decisions evaluated (0 left out" in printed.out
    assert halfway == 2
    assert "--data, --decisions and --events go together" in printed.err
