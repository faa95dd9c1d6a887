"""`perkrank experiments report`: exported tables read back, and the uplift report
(`serving.domain.uplift`) logged to MLflow as a run with a chart of each arm's lift."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from perkrank.config import RegistryConfig
from perkrank.serving.domain.uplift import UpliftReport

METRIC_FIELDS = (
    "members",
    "decisions",
    "impressions",
    "clicks",
    "redemptions",
    "click_rate",
    "redemption_rate",
    "redemptions_per_member",
    "lift",
    "relative_lift",
    "mde",
)
"""`ArmReport` fields logged as metrics."""


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of an exported .csv or .parquet table."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    with path.open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def log_report(report: UpliftReport, registry: RegistryConfig) -> str:
    """Log `report` to MLflow as a run of `registry.experiment`: each arm's counts, rates and
    lift as metrics (`<arm>.<name>`), the report as uplift_report.json and the lift chart as
    uplift_lift.png; the run's id."""
    import mlflow

    from perkrank.models.registry import tracking_run

    with tracking_run(registry) as run:
        mlflow.set_tags(
            {"perkrank.kind": "uplift_report", "perkrank.experiment": report.experiment}
        )
        mlflow.log_metrics(report_metrics(report))
        mlflow.log_dict(report.record(), "uplift_report.json")
        mlflow.log_figure(lift_chart(report), "uplift_lift.png")
        return run.info.run_id


def report_metrics(report: UpliftReport) -> dict[str, float]:
    """The report's numbers as MLflow metrics: `<arm>.<field>`, and `srm_p_value`."""
    metrics = {"srm_p_value": report.srm_p_value}
    for arm in report.arms:
        for name in METRIC_FIELDS:
            value = getattr(arm, name)
            if value is not None:
                metrics[f"{arm.arm}.{name}"] = float(value)
        for name in ("lift_ci", "relative_lift_ci"):
            bounds = getattr(arm, name)
            if bounds is not None:
                metrics[f"{arm.arm}.{name}_low"], metrics[f"{arm.arm}.{name}_high"] = bounds
    return metrics


def lift_chart(report: UpliftReport) -> Figure:
    """Each arm's lift in redemptions per member over the holdout, with its 95 % interval."""
    arms = [arm for arm in report.arms if arm.lift_ci is not None]
    figure = Figure(figsize=(6, 1.2 + 0.5 * max(1, len(arms))))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for row, arm in enumerate(arms):
        low, high = arm.lift_ci
        axes.errorbar(arm.lift, row, xerr=[[arm.lift - low], [high - arm.lift]], fmt="o", capsize=4)
    axes.axvline(0.0, color="grey", linewidth=1)
    axes.set_yticks(range(len(arms)), [arm.arm for arm in arms])
    axes.set_xlabel(f"lift in redemptions per member over {report.holdout} (95 % CI)")
    axes.set_title(f"Experiment {report.experiment}")
    figure.tight_layout()
    return figure
