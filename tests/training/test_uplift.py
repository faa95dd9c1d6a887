"""`perkrank experiments report` from exported files, and the report logged to MLflow."""

import json
from pathlib import Path

import mlflow
import pytest
import yaml

from perkrank.cli import main
from perkrank.serving.domain.uplift import uplift_report
from perkrank.training.uplift import report_metrics
from tests.serving.domain.test_uplift import DECISIONS, EVENTS, EXPERIMENT


def write_files(tmp_path):
    """The experiment, decisions and events as files; the report's options naming them."""
    files = {
        "experiments": tmp_path / "experiments.yaml",
        "decisions": tmp_path / "decisions.csv",
        "events": tmp_path / "events.csv",
    }
    files["experiments"].write_text(
        yaml.safe_dump({"experiments": [EXPERIMENT.model_dump(mode="json")]})
    )
    for name, rows in (("decisions", DECISIONS), ("events", EVENTS)):
        columns = list(rows[0])
        lines = [",".join(columns), *(",".join(row[column] for column in columns) for row in rows)]
        files[name].write_text("\n".join(lines) + "\n")
    return [f"--{name}={path}" for name, path in files.items()]


def test_cli_writes_markdown_and_json(tmp_path, capsys):
    options = write_files(tmp_path)
    out = tmp_path / "report.json"

    code = main(["experiments", "report", "lift", *options, "--json", str(out)])

    printed = capsys.readouterr().out
    assert code == 0
    assert "| treat | 2 | 3 | 3 | 33.33% | 133.33% | 2.0000 | +1.5000 (" in printed
    assert "SRM p-value 1: no sample ratio mismatch." in printed
    assert json.loads(out.read_text())["arms"][1]["lift"] == pytest.approx(1.5)
    unknown = main(["experiments", "report", "nope", *options])
    assert unknown == 2


def test_the_report_is_an_mlflow_run_with_metrics_json_and_chart(tmp_path, monkeypatch, capsys):
    tracking_uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)  # wins over configs/train.yaml

    code = main(["experiments", "report", "lift", *write_files(tmp_path), "--mlflow"])

    assert code == 0
    run_id = capsys.readouterr().out.split("MLflow run ")[1].split()[0]
    client = mlflow.MlflowClient(tracking_uri)
    run = client.get_run(run_id)
    assert run.data.metrics["treat.lift"] == pytest.approx(1.5)
    assert run.data.metrics["holdout.members"] == 2
    assert "holdout.lift" not in run.data.metrics
    artifacts = {item.path for item in client.list_artifacts(run_id)}
    assert artifacts == {"uplift_report.json", "uplift_lift.png"}
    logged = json.loads(Path(client.download_artifacts(run_id, "uplift_report.json")).read_text())
    assert logged["arms"][1]["lift"] == pytest.approx(1.5)
    png = Path(client.download_artifacts(run_id, "uplift_lift.png")).read_bytes()
    assert png.startswith(b"\x89PNG")


def test_metrics_name_each_arm_and_its_interval_bounds():
    report = uplift_report(EXPERIMENT, DECISIONS, EVENTS, "holdout")

    metrics = report_metrics(report)

    treat = report.arms[1]
    assert (metrics["treat.lift_ci_low"], metrics["treat.lift_ci_high"]) == treat.lift_ci
    assert metrics["treat.mde"] == treat.mde
    assert metrics["srm_p_value"] == report.srm_p_value
