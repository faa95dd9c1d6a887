"""The events and decisions exports: CSV cells a spreadsheet would run as formulas are
escaped, Parquet keeps every value verbatim."""

import csv
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from perkrank.export import (
    DECISION_COLUMNS,
    EVENT_COLUMNS,
    spreadsheet_cell,
    write_decisions,
    write_events,
)

EVENT = {
    "event_id": "-2+3",
    "type": "click",
    "member_id": "@m1",
    "offer_id": '=HYPERLINK("http://evil.example","x")',
    "partner_id": "+P1",
    "category": "Beauty",
    "channel": "app",
    "ts": "2026-06-15T10:00:00+00:00",
    "decision_id": "=d1",
}


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("+P1", "'+P1"),
        ("-20% off", "'-20% off"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("a=b", "a=b"),
        ("glow-beauty", "glow-beauty"),
        ("<b>bold</b>", "<b>bold</b>"),
        (None, ""),
    ],
)
def test_cells_that_begin_a_formula_get_a_quote_in_front(value, cell):
    assert spreadsheet_cell(value) == cell


def test_csv_export_escapes_formula_cells_and_parquet_keeps_them(tmp_path: Path):
    csv_out, parquet_out = tmp_path / "events.csv", tmp_path / "events.parquet"

    counts = [write_events([[EVENT]], out) for out in (csv_out, parquet_out)]

    with csv_out.open(newline="", encoding="utf-8") as file:
        (row,) = list(csv.DictReader(file))
    (record,) = pq.read_table(parquet_out).to_pylist()
    assert counts == [1, 1]
    assert row == EVENT | {
        "event_id": "'-2+3",
        "member_id": "'@m1",
        "offer_id": '\'=HYPERLINK("http://evil.example","x")',
        "partner_id": "'+P1",
        "decision_id": "'=d1",
    }
    texts = [name for name, kind in EVENT_COLUMNS if kind == "text"]
    assert {name: record[name] for name in texts} == {name: EVENT[name] for name in texts}
    assert record["ts"] == datetime(2026, 6, 15, 10, tzinfo=UTC)


DECISION = {
    "decision_id": "d-1",
    "ts": "2026-06-15T10:00:00+00:00",
    "member_id": "=m1",
    "channel": "app",
    "model_version": "v7",
    "experiment": "lift",
    "arm": "personalized",
    "policy": "personalized",
    "personalized": True,
    "offers": [
        {"offer_id": "o-1", "rank": 1, "score": -0.25, "propensity": 1.0},
        {"offer_id": "-o-2", "rank": 2, "score": -1.5, "propensity": 1.0},
    ],
}
HELD_OUT = DECISION | {"decision_id": "d-2", "arm": "holdout", "policy": "none", "offers": []}


def test_decisions_are_written_a_row_per_offer_numbers_unescaped(tmp_path: Path):
    csv_out, parquet_out = tmp_path / "decisions.csv", tmp_path / "decisions.parquet"

    counts = [write_decisions([[DECISION], [HELD_OUT]], out) for out in (csv_out, parquet_out)]

    with csv_out.open(newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    records = pq.read_table(parquet_out).to_pylist()
    assert counts == [2, 2]
    assert [name for name, _ in DECISION_COLUMNS] == list(rows[0])
    assert [(row["decision_id"], row["offer_id"], row["score"]) for row in rows] == [
        ("d-1", "o-1", "-0.25"),
        ("d-1", "'-o-2", "-1.5"),
        ("d-2", "", ""),
    ]
    assert rows[0]["member_id"] == "'=m1"
    assert rows[0]["personalized"] == "True"
    assert [(r["offer_id"], r["rank"], r["score"], r["propensity"]) for r in records] == [
        ("o-1", 1, -0.25, 1.0),
        ("-o-2", 2, -1.5, 1.0),
        (None, None, None, None),
    ]
    assert records[2]["arm"] == "holdout"
    assert records[0]["ts"] == datetime(2026, 6, 15, 10, tzinfo=UTC)
