"""Evaluation reports: evaluation.json (everything), evaluation.md (tables), evaluation.png."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from perkrank.training.evaluation import EvaluationReport
from perkrank.training.metrics import METRICS

NDCG_SLICES = ("warm", "cold", "new_items", "new_offers")
"""Slices whose NDCG sits next to the overall metrics in the main table."""
CHART_SLICES = ("overall", "warm", "cold", "repeat_items", "new_items", "new_offers")
"""Slices drawn first in the chart; region slices follow."""
MISSING = "–"
VALUE_METRICS = ("expected_value", "value")
"""Value per list (`training.value_evaluation`), reported for the blend only."""


def write_report(report: EvaluationReport, out_dir: Path | str) -> list[Path]:
    """Write evaluation.json, evaluation.md and evaluation.png into `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "evaluation.json"
    json_path.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    markdown_path = out_dir / "evaluation.md"
    markdown_path.write_text(format_markdown(report), encoding="utf-8")
    chart_path = out_dir / "evaluation.png"
    _draw_chart(report, chart_path)
    return [json_path, markdown_path, chart_path]


def format_table(report: EvaluationReport) -> str:
    """The main table (models as rows, metrics at k=10 overall, NDCG@10 per slice) as text."""
    k = main_k(report)
    metrics = (*METRICS, *VALUE_METRICS)
    header = ["model", "members", *(f"{metric}@{k}" for metric in metrics)]
    header += [f"ndcg@{k} {name}" for name in NDCG_SLICES]
    rows = []
    for name, model in report.models.items():
        overall = model.metrics.get("overall", {})
        row = [name, str(model.members.get("overall", 0))]
        row += [_number(overall.get(f"{metric}@{k}")) for metric in metrics]
        row += [_number(model.metrics.get(part, {}).get(f"ndcg@{k}")) for part in NDCG_SLICES]
        rows.append(row)
    return _markdown_table(header, rows)


def format_markdown(report: EvaluationReport) -> str:
    """The whole Markdown report: window, main table, all k, NDCG per slice."""
    window = report.window
    k = main_k(report)
    lines = [
        "# Offline evaluation",
        "",
        f"Window {window['start']} .. {window['end']} (end excluded): "
        f"{window['members']} members ({window['warm_members']} warm, "
        f"{window['cold_members']} cold), {window['offers']} offers "
        f"({window['new_offers']} new), {window['groups']} region × tier groups.",
        "",
        f"## Overall at k={k}",
        "",
        format_table(report),
        "",
        "## Served model vs the strongest baseline",
        "",
        *verdict_lines(report),
        "",
        "## Overall at every k",
        "",
        _all_k_table(report),
        "",
        f"## NDCG@{k} per slice",
        "",
        _slice_table(report, k),
        "",
    ]
    return "\n".join(lines)


def verdict_lines(report: EvaluationReport) -> list[str]:
    """The served model against the best non-learned model, paired bootstrap CI over members."""
    verdict = report.verdict
    if verdict is None:
        return ["No served model or no non-learned baseline in this evaluation."]
    return [
        f"Strongest baseline: {verdict['baseline']} (the best non-learned model by NDCG). "
        "Differences are means over the same members, with a paired bootstrap 95% CI:",
        "",
        *(f"- {sentence}" for sentence in verdict["sentences"]),
    ]


def main_k(report: EvaluationReport) -> int:
    """The k of the main table: 10 when evaluated, else the first k."""
    return 10 if 10 in report.k_values else report.k_values[0]


def _all_k_table(report: EvaluationReport) -> str:
    header = ["model", "k", *METRICS]
    rows = [
        [
            name,
            str(k),
            *(_number(model.metrics.get("overall", {}).get(f"{m}@{k}")) for m in METRICS),
        ]
        for name, model in report.models.items()
        for k in report.k_values
    ]
    return _markdown_table(header, rows)


def _slice_table(report: EvaluationReport, k: int) -> str:
    header = ["slice", "members", *report.models]
    rows = []
    for part in _slice_names(report):
        members = max((model.members.get(part, 0) for model in report.models.values()), default=0)
        values = [
            _number(model.metrics.get(part, {}).get(f"ndcg@{k}"))
            for model in report.models.values()
        ]
        rows.append([part, str(members), *values])
    return _markdown_table(header, rows)


def _slice_names(report: EvaluationReport) -> list[str]:
    """Slices in report order: the fixed ones, then regions, as far as any model has them."""
    present = {part for model in report.models.values() for part in model.metrics}
    regions = sorted(part for part in present if part not in CHART_SLICES)
    return [part for part in CHART_SLICES if part in present] + regions


def _draw_chart(report: EvaluationReport, path: Path) -> None:
    """Grouped bars: NDCG@k per slice (groups) per model (bars)."""
    k = main_k(report)
    slices = _slice_names(report)
    figure = Figure(figsize=(max(6.0, 1.0 + 0.9 * len(slices)), 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    positions = np.arange(len(slices))
    width = 0.8 / max(1, len(report.models))
    for index, (name, model) in enumerate(report.models.items()):
        values = [model.metrics.get(part, {}).get(f"ndcg@{k}", np.nan) for part in slices]
        axes.bar(
            positions + (index - (len(report.models) - 1) / 2) * width, values, width, label=name
        )
    axes.set_xticks(positions, slices, rotation=30, ha="right")
    axes.set_ylabel(f"NDCG@{k}")
    axes.set_title(f"NDCG@{k} per slice, {report.window['start']} .. {report.window['end']}")
    axes.legend()
    figure.savefig(path, dpi=120)


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A pipe table with columns padded to equal width (readable as plain text too)."""
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return (
            "| "
            + " | ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
            + " |"
        )

    separator = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
    return "\n".join([line(header), separator, *(line(row) for row in rows)])


def _number(value: float | None) -> str:
    return MISSING if value is None else f"{value:.4f}"
