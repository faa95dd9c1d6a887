"""Kept events and decisions written to a file for training and analysis (`perkrank events
export`, `perkrank decisions export`): one table writer, `write_table`, for both.

Events, one row each, in the columns `EVENT_COLUMNS`: `event_id` (empty when the sender gave
none), `type` (impression, click or redemption), `member_id`, `offer_id`, `partner_id` and
`category` (the offer's, from the catalog in force when the event came in), `channel` (store,
app or web), `ts` (when it happened) and `decision_id` (the decision the app named, if any).
Decisions, one row per offer shown (a decision that showed none: one row with empty offer
columns), in the columns `DECISION_COLUMNS`. Rows come oldest first. A `ts` is ISO 8601 UTC
text in CSV and a `timestamp[us, UTC]` in Parquet, as the data contract writes timestamps, so a
training step can load the file like the purchases table. The format follows the file's
extension, `.csv` or `.parquet`. The file is written beside its destination under a temporary
name and renamed into place when complete, so a failed export writes nothing and leaves an
older file as it was.

Text from outside (ids, categories; titles, names and rewards if an export ever carries them)
is kept verbatim everywhere but in CSV cells: a CSV text cell that begins with a character a
spreadsheet reads as the start of a formula (`FORMULA_LEADS`) gets a `'` in front
(`spreadsheet_cell`, OWASP's CSV injection guidance), so opening an export never runs one;
numbers are written as numbers, and Parquet keeps every value as it is. Every CSV export of
such text uses `spreadsheet_cell`; data-contract files written for the loader (`perkrank
generate`, the Online Retail importer) keep text verbatim, as the loader reads it back.
Nothing in perkrank renders text as HTML; whatever does must escape it (`html.escape`), as the
catalog keeps titles verbatim.
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from perkrank.config import ConfigError

Kind = Literal["text", "timestamp", "int", "float", "bool"]
"""A column's type: text is escaped in CSV; a timestamp is ISO 8601 text in the pages."""
EVENT_COLUMNS: tuple[tuple[str, Kind], ...] = (
    ("event_id", "text"),
    ("type", "text"),
    ("member_id", "text"),
    ("offer_id", "text"),
    ("partner_id", "text"),
    ("category", "text"),
    ("channel", "text"),
    ("ts", "timestamp"),
    ("decision_id", "text"),
)
DECISION_COLUMNS: tuple[tuple[str, Kind], ...] = (
    ("decision_id", "text"),
    ("ts", "timestamp"),
    ("member_id", "text"),
    ("channel", "text"),
    ("model_version", "text"),
    ("experiment", "text"),
    ("arm", "text"),
    ("policy", "text"),
    ("personalized", "bool"),
    ("offer_id", "text"),
    ("rank", "int"),
    ("score", "float"),
    ("propensity", "float"),
)
OFFER_FIELDS = ("offer_id", "rank", "score", "propensity")
"""A decision's columns of each offer shown."""
FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a cell as a formula."""
Page = list[dict[str, Any]]
"""Rows as the admin endpoints return them (events, or decisions once flattened)."""
Columns = Sequence[tuple[str, Kind]]


def write_events(pages: Iterable[Page], out: Path) -> int:
    """Write every event of `pages` (`GET /v1/admin/events` pages) to `out`; how many."""
    return write_table(pages, out, EVENT_COLUMNS)


def write_decisions(pages: Iterable[Page], out: Path) -> int:
    """Write every decision of `pages` (`GET /v1/admin/decisions` pages) to `out`, a row per
    offer shown; how many decisions."""
    count = 0

    def rows() -> Iterator[Page]:
        nonlocal count
        for page in pages:
            count += len(page)
            yield [row for decision in page for row in decision_rows(decision)]

    write_table(rows(), out, DECISION_COLUMNS)
    return count


def decision_rows(decision: dict[str, Any]) -> Page:
    """A decision's rows: one per offer shown, or one with empty offer columns."""
    fields = {name: value for name, value in decision.items() if name != "offers"}
    offers = decision["offers"] or [dict.fromkeys(OFFER_FIELDS)]
    return [fields | offer for offer in offers]


def write_table(pages: Iterable[Page], out: Path, columns: Columns) -> int:
    """Write every row of `pages` in `columns` to `out` (.csv or .parquet) atomically; how
    many rows."""
    writers = {".csv": _write_csv, ".parquet": _write_parquet}
    writer = writers.get(out.suffix)
    if writer is None:
        raise ConfigError(f"{out}: use a .csv or .parquet file name")
    descriptor, temporary = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    os.close(descriptor)
    try:
        count = writer(pages, Path(temporary), columns)
        os.replace(temporary, out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return count


def _write_csv(pages: Iterable[Page], path: Path, columns: Columns) -> int:
    count = 0
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow([name for name, _ in columns])
        for page in pages:
            writer.writerows(
                [[_csv_cell(row.get(name), kind) for name, kind in columns] for row in page]
            )
            count += len(page)
    return count


def _csv_cell(value: object, kind: Kind) -> str:
    if kind in ("text", "timestamp"):
        return spreadsheet_cell(value)
    return "" if value is None else str(value)


def spreadsheet_cell(value: object) -> str:
    """`value` as a CSV cell no spreadsheet runs as a formula (None: an empty cell)."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_LEADS) else text


def _write_parquet(pages: Iterable[Page], path: Path, columns: Columns) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {
        "text": pa.string(),
        "timestamp": pa.timestamp("us", tz="UTC"),
        "int": pa.int64(),
        "float": pa.float64(),
        "bool": pa.bool_(),
    }
    schema = pa.schema([(name, types[kind]) for name, kind in columns])
    count = 0
    with pq.ParquetWriter(path, schema) as writer:
        for page in pages:
            table: dict[str, list[Any]] = {}
            for name, kind in columns:
                values = [row.get(name) for row in page]
                if kind == "timestamp":
                    values = [None if ts is None else datetime.fromisoformat(ts) for ts in values]
                table[name] = values
            writer.write_table(pa.Table.from_pydict(table, schema=schema))
            count += len(page)
    return count
