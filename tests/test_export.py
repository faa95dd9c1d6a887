"""The events and decisions exports: CSV cells a spreadsheet would run as formulas are
escaped, Parquet keeps every value verbatim."""

import csv
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from perkrank.export import EVENT_COLUMNS, spreadsheet_cell, write_events

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
