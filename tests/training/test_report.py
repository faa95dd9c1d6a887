"""Evaluation reports: JSON, Markdown tables and the chart are written for every model."""

import json
from pathlib import Path

import pytest

from perkrank.training.evaluation import EvaluationReport, ModelReport
from perkrank.training.report import format_table, write_report

WINDOW = {
    "start": "2025-03-01",
    "end": "2025-04-01",
    "members": 120,
    "warm_members": 100,
    "cold_members": 20,
    "offers": 40,
    "new_offers": 8,
    "groups": 6,
    "relevant_pairs": 300,
}
SLICES = ("overall", "warm", "cold", "repeat_items", "new_items", "new_offers", "region=north")


def model_report(name: str, ndcg: float, without: tuple[str, ...] = ()) -> ModelReport:
    metrics = {
        part: {
            f"{metric}@{k}": ndcg / (index + 1) if metric == "ndcg" else 0.25
            for k in (5, 10, 20)
            for metric in ("precision", "recall", "ndcg", "map", "hit_rate", "coverage")
        }
        for index, part in enumerate(SLICES)
        if part not in without
    }
    members = {part: 0 if part in without else 10 for part in SLICES}
    return ModelReport(name=name, metrics=metrics, members=members, seconds=0.5)


def make_report() -> EvaluationReport:
    return EvaluationReport(
        window=WINDOW,
        k_values=(5, 10, 20),
        models={
            "als": model_report("als", 0.4),
            "popularity": model_report("popularity", 0.2, without=("new_offers",)),
            "blend": model_report("blend", 0.5),
        },
    )


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_report(make_report(), tmp_path_factory.mktemp("report") / "out")


def test_markdown_says_when_there_is_no_verdict(written):
    assert "No served model or no non-learned baseline" in written[1].read_text()


def test_report_files_are_written(written):
    paths = written
    assert [path.name for path in paths] == ["evaluation.json", "evaluation.md", "evaluation.png"]
    assert all(path.stat().st_size > 0 for path in paths)
    assert paths[2].read_bytes().startswith(b"\x89PNG")


def test_json_holds_every_metric_of_every_model(written):
    saved = json.loads(written[0].read_text())
    assert saved["k_values"] == [5, 10, 20]
    assert saved["models"]["blend"]["metrics"]["cold"]["ndcg@20"] == 0.5 / 3
    assert saved["models"]["popularity"]["members"]["new_offers"] == 0


def test_markdown_tables_have_a_row_per_model_and_k(written):
    text = written[1].read_text()
    for name in ("als", "popularity", "blend"):
        assert f"| {name} " in text
        for k in (5, 10, 20):
            assert any(
                line.startswith(f"| {name}") and f"| {k} " in line for line in text.splitlines()
            )
    assert "| region=north " in text


def test_main_table_shows_k10_and_slice_ndcg_with_a_dash_for_empty_slices():
    lines = format_table(make_report()).splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert header[:3] == ["model", "members", "precision@10"]
    assert header[-4:] == [
        "ndcg@10 warm",
        "ndcg@10 cold",
        "ndcg@10 new_items",
        "ndcg@10 new_offers",
    ]
    rows = {
        line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")]
        for line in lines[2:]
    }
    assert set(rows) == {"als", "popularity", "blend"}
    assert rows["als"][header.index("ndcg@10")] == "0.4000"
    assert rows["als"][header.index("ndcg@10 cold")] == f"{0.4 / 3:.4f}"
    assert rows["popularity"][header.index("ndcg@10 new_offers")] == "–"
