"""Kept events written to a file for the next training run (`perkrank events export`).

Columns, in this order: `event_id` (empty when the sender gave none), `type` (impression,
click or redemption), `member_id`, `offer_id`, `partner_id` and `category` (the offer's, from
the catalog in force when the event came in), `channel` (store, app or web) and `ts` (when it
happened: ISO 8601 UTC text in CSV, a `timestamp[us, UTC]` in Parquet, as the data contract
writes timestamps, so a training step can load the file like the purchases table). Rows come
oldest first. The format follows the file's extension, `.csv` or
`.parquet`. The file is written beside its destination under a temporary name and renamed into
place when complete, so a failed export writes nothing and leaves an older file as it was.

Text from outside (ids, categories; titles, names and rewards if an export ever carries them)
is kept verbatim everywhere but in CSV cells: a CSV cell that begins with a character a
spreadsheet reads as the start of a formula (`FORMULA_LEADS`) gets a `'` in front
(`spreadsheet_cell`, OWASP's CSV injection guidance), so opening an export never runs one;
Parquet keeps every value as it is. Every CSV export of such text uses `spreadsheet_cell`;
data-contract files written for the loader (`perkrank generate`, the Online Retail importer)
keep text verbatim, as the loader reads it back. Nothing in perkrank renders text as HTML;
whatever does must escape it (`html.escape`), as the catalog keeps titles verbatim.
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from perkrank.config import ConfigError

COLUMNS = ("event_id", "type", "member_id", "offer_id", "partner_id", "category", "channel", "ts")
FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a cell as a formula."""
Page = list[dict[str, Any]]
"""Events as `GET /v1/admin/events` returns them."""


def write_events(pages: Iterable[Page], out: Path) -> int:
    """Write every event of `pages` to `out` (.csv or .parquet) atomically; how many."""
    writers = {".csv": _write_csv, ".parquet": _write_parquet}
    writer = writers.get(out.suffix)
    if writer is None:
        raise ConfigError(f"{out}: use a .csv or .parquet file name")
    descriptor, temporary = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    os.close(descriptor)
    try:
        count = writer(pages, Path(temporary))
        os.replace(temporary, out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return count


def _write_csv(pages: Iterable[Page], path: Path) -> int:
    count = 0
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(COLUMNS)
        for page in pages:
            writer.writerows(
                [[spreadsheet_cell(event[name]) for name in COLUMNS] for event in page]
            )
            count += len(page)
    return count


def spreadsheet_cell(value: object) -> str:
    """`value` as a CSV cell no spreadsheet runs as a formula (None: an empty cell)."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_LEADS) else text


def _write_parquet(pages: Iterable[Page], path: Path) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [(name, pa.string()) for name in COLUMNS[:-1]] + [("ts", pa.timestamp("us", tz="UTC"))]
    )
    count = 0
    with pq.ParquetWriter(path, schema) as writer:
        for page in pages:
            columns: dict[str, list[Any]] = {
                name: [event[name] for event in page] for name in COLUMNS
            }
            columns["ts"] = [datetime.fromisoformat(ts) for ts in columns["ts"]]
            writer.write_table(pa.Table.from_pydict(columns, schema=schema))
            count += len(page)
    return count
