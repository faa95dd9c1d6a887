"""The program, members and purchases as the contract's tables, and writing tables atomically.

Files are plain CSV; all of them appear in the output directory together or none does.
"""

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from perkrank.features.columns import Columns
from perkrank.features.schema import (
    CHANNELS,
    LIST_SEPARATOR,
    MEMBERS,
    PARTNERS,
    PURCHASES,
    TIERS,
)
from perkrank.features.synthetic.members import Members
from perkrank.features.synthetic.program import CATEGORIES, REGIONS, Program
from perkrank.features.synthetic.purchases import Purchases


def join_names(names: tuple[str, ...], indices: list[int] | np.ndarray) -> str:
    """The names at `indices`, sorted, as one list cell."""
    return LIST_SEPARATOR.join(sorted(names[index] for index in indices))


def members_table(members: Members) -> pa.Table:
    """The members table in contract column order."""
    return pa.table(
        {
            Columns.member_id: pa.array(members.member_ids, pa.string()),
            Columns.region: pa.array(np.array(REGIONS)[members.region], pa.string()),
            Columns.tier: pa.array(np.array(TIERS)[members.tier], pa.string()),
            Columns.birth_date: _dates(members.birth_day, missing=members.birth_day_unknown),
            Columns.signup_date: _dates(members.signup_day),
        }
    ).select(list(MEMBERS.column_names))


def _dates(days: np.ndarray, missing: np.ndarray | None = None) -> pa.Array:
    """Days since 1970-01-01 as a date column (`missing` ones empty)."""
    return pa.array(days.astype(np.int32), pa.date32(), mask=missing)


def partners_table(program: Program) -> pa.Table:
    """The partners table in contract column order."""
    return pa.table(
        {
            Columns.partner_id: pa.array(program.partner_ids, pa.string()),
            Columns.name: pa.array(program.partner_names, pa.string()),
            Columns.scope: [
                "federal" if federal else "local" for federal in program.partner_is_federal
            ],
            Columns.regions: [join_names(REGIONS, regions) for regions in program.partner_regions],
            Columns.categories: [
                join_names(CATEGORIES, categories) for categories in program.partner_categories
            ],
        }
    ).select(list(PARTNERS.column_names))


def purchases_table(purchases: Purchases, program: Program, members: Members) -> pa.Table:
    """Purchases ordered by time, then member, then item."""
    order = np.lexsort((purchases.item_idx, purchases.member_row, purchases.second))
    item = purchases.item_idx[order]
    return pa.table(
        {
            Columns.member_id: _strings(members.member_ids, purchases.member_row[order]),
            Columns.ts: pa.array(purchases.second[order], pa.timestamp("s")),
            Columns.partner_id: _strings(program.partner_ids, program.item_partner[item]),
            Columns.category: _strings(CATEGORIES, program.item_category[item]),
            Columns.amount: _decimal_strings(purchases.amount_cents[order]),
            Columns.channel: _strings(CHANNELS, purchases.channel_idx[order]),
        }
    ).select(list(PURCHASES.column_names))


def _decimal_strings(cents: np.ndarray) -> pa.Array:
    """Amounts in cents as text with two decimals, e.g. 1205 → "12.05"."""
    units = pc.cast(pa.array(cents // 100), pa.string())
    hundredths = pc.utf8_lpad(pc.cast(pa.array(cents % 100), pa.string()), 2, "0")
    return pc.binary_join_element_wise(units, hundredths, ".")


def _strings(names: list[str] | tuple[str, ...], indices: np.ndarray) -> pa.Array:
    """The names at `indices`, as a plain string column."""
    return pa.array(names, pa.string()).take(pa.array(indices.astype(np.int64)))


def write_tables(
    out_dir: Path, tables: dict[str, pa.Table], texts: dict[str, str] | None = None
) -> None:
    """Write every table (and each text file of `texts`, by name) into a staging directory,
    then move them all into `out_dir`."""
    texts = texts or {}
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for name, table in tables.items():
            _write_csv(table, staging / f"{name}.csv")
        for name, text in texts.items():
            (staging / name).write_text(text, encoding="utf-8")
        out_dir.mkdir(exist_ok=True)
        for name in [f"{table}.csv" for table in tables] + list(texts):
            os.replace(staging / name, out_dir / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write_csv(table: pa.Table, path: Path) -> None:
    """Plain CSV: unquoted header and cells, empty cells for missing values."""
    with path.open("wb") as file:
        file.write((",".join(table.column_names) + "\n").encode())
        options = pa_csv.WriteOptions(include_header=False, quoting_style="none")
        pa_csv.write_csv(table, file, options)
