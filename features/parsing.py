"""Parse a table's text cells by column kind and report every empty, malformed or unknown cell.

Kinds: text, lists, dates, timestamps, numbers ≥ 0 and whole numbers ≥ 0; dates and times must
fit datetime64[ns]. Text and list cells must be printable (`schema.text_problem`): no control
characters, and ids, categories and regions at most `schema.ID_MAX_LENGTH` characters.
"""

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from perkrank.features.columns import Columns
from perkrank.features.problems import Problems, quote
from perkrank.features.schema import (
    LIST_SEPARATOR,
    NOT_PRINTABLE_RE2,
    Column,
    Kind,
    Table,
    text_problem,
)
from perkrank.features.vocabulary import ITEM_SEPARATOR

ITEM_PART_COLUMNS = frozenset({Columns.partner_id, Columns.category, Columns.categories})
"""Columns joined into item ids by `ITEM_SEPARATOR`, which they therefore must not contain."""
EARLIEST = pd.Timestamp("1678-01-01")
LATEST = pd.Timestamp("2261-12-31 23:59:59")
"""Dates and times must fit datetime64[ns]."""
EXPECTED = {
    Kind.DATE: "a date (YYYY-MM-DD, years 1678-2261)",
    Kind.TIMESTAMP: "a timestamp (YYYY-MM-DD HH:MM:SS or ISO 8601, years 1678-2261)",
    Kind.NUMBER: "a number ≥ 0",
    Kind.INTEGER: "a whole number ≥ 0",
}
PARSE_BLOCK = 500_000
"""Timestamps are parsed this many rows at a time (pandas makes Python strings of them)."""
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
"""The common timestamp format, parsed first; other ISO 8601 forms are parsed after it."""


@dataclass(frozen=True)
class ParsedTable:
    """One table while it is checked: values parsed so far and each row's number in its file."""

    file: str
    frame: pd.DataFrame
    rows: np.ndarray

    def has(self, *columns: str) -> bool:
        return all(column in self.frame.columns for column in columns)


def parse_table(
    file: str,
    table: Table,
    texts: dict[str, pa.ChunkedArray],
    rows: np.ndarray,
    problems: Problems,
) -> ParsedTable:
    """Check and parse every cell; blank rows are dropped, missing optional columns are empty."""
    cells = {}
    for column in table.columns:
        if column.name in texts:
            cells[column.name] = trimmed_texts(texts[column.name]).to_pandas()
        elif column.required:
            problems.add(file, None, column.name, "required column is missing")
    frame = pd.DataFrame(cells, index=pd.RangeIndex(len(rows)))
    blank = (frame == "").all(axis=1).to_numpy() & bool(cells)
    if blank.any():
        frame, rows = frame[~blank].reset_index(drop=True), rows[~blank]
    if len(rows) == 0:
        problems.add(file, None, None, "has no rows below the header")
    parsed = {}
    for column in table.columns:
        if column.name in frame.columns:
            parsed[column.name] = _parse_column(file, column, frame[column.name], rows, problems)
        elif not column.required:
            empty = pd.Series("", index=frame.index, dtype="str")
            parsed[column.name] = _parse_column(file, column, empty, rows, problems)
    return ParsedTable(file, pd.DataFrame(parsed, index=frame.index), rows)


def trimmed_texts(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """`values` without leading and trailing whitespace, chunk by chunk: a chunk with nothing to
    trim is kept as it is, so a clean column of millions of rows is not copied."""
    chunks = []
    for chunk in values.chunks:
        trimmed = pc.utf8_trim_whitespace(chunk)
        same = pc.sum(pc.binary_length(trimmed)).as_py() == pc.sum(pc.binary_length(chunk)).as_py()
        chunks.append(chunk if same else trimmed)
    return pa.chunked_array(chunks, type=values.type)


def _parse_column(
    file: str, column: Column, values: pd.Series, rows: np.ndarray, problems: Problems
) -> pd.Series:
    """Values parsed by the column kind; every empty, malformed or unknown cell is reported."""
    if column.kind is Kind.LIST:
        parsed = pd.Series([_split_list(cell) for cell in values], index=values.index, dtype=object)
        empty = (parsed.map(len) == 0).to_numpy()
    else:
        parsed = _PARSERS[column.kind](values)
        empty = (values == "").to_numpy()
    if column.required:
        problems.add_rows(file, column.name, rows[empty], ["is empty"] * int(empty.sum()))
    if column.kind in EXPECTED:
        malformed = parsed.isna().to_numpy() & ~empty
        expected = EXPECTED[column.kind]
        messages = (f"{quote(value)} is not {expected}" for value in values[malformed])
        problems.add_rows(file, column.name, rows[malformed], messages)
    if column.choices:
        unknown = ~isin(values, column.choices) & ~empty
        allowed = ", ".join(column.choices)
        messages = (f"{quote(value)} is not one of {allowed}" for value in values[unknown])
        problems.add_rows(file, column.name, rows[unknown], messages)
    if column.kind in (Kind.TEXT, Kind.LIST) and not column.choices:
        _check_text(file, column, values, parsed, rows, problems)
    if column.name in ITEM_PART_COLUMNS:
        joining = values.str.contains(ITEM_SEPARATOR, regex=False).to_numpy()
        messages = (
            f"{quote(value)} contains {ITEM_SEPARATOR!r}, which joins partner and category "
            "into item ids"
            for value in values[joining]
        )
        problems.add_rows(file, column.name, rows[joining], messages)
    return parsed


def _check_text(
    file: str,
    column: Column,
    values: pd.Series,
    parsed: pd.Series,
    rows: np.ndarray,
    problems: Problems,
) -> None:
    """Report every cell that breaks the text rule (each list item checked on its own)."""
    text = pa.array(values, type=pa.string())
    broken = pc.match_substring_regex(text, NOT_PRINTABLE_RE2).to_numpy(zero_copy_only=False)
    if column.max_length is not None:
        if column.kind is Kind.LIST:
            lengths = parsed.map(lambda items: max(map(len, items), default=0)).to_numpy()
        else:
            lengths = pc.utf8_length(text).to_numpy(zero_copy_only=False)
        broken |= lengths > column.max_length
    if not broken.any():
        return
    messages = (_text_message(value, column) for value in values[broken])
    problems.add_rows(file, column.name, rows[broken], messages)


def _text_message(value: str, column: Column) -> str:
    """The problem of a cell `_check_text` found (for a list, of its first bad item)."""
    items = _split_list(value) if column.kind is Kind.LIST else (value,)
    problem = text_problem(value) or next(
        found for item in items if (found := text_problem(item, column.max_length))
    )
    return f"{quote(value)} {problem}"


def _split_list(cell: str) -> tuple[str, ...]:
    return tuple(item for part in cell.split(LIST_SEPARATOR) if (item := part.strip()))


def _parse_text(values: pd.Series) -> pd.Series:
    return values


def _parse_dates(values: pd.Series) -> pd.Series:
    return _within_range(pd.to_datetime(values, format="%Y-%m-%d", errors="coerce"))


def parse_timestamps(values: pd.Series) -> pd.Series:
    """Naive UTC times: without an offset a time is taken as UTC, with one it is converted."""
    parsed = pd.concat(
        [
            pd.to_datetime(values[start : start + PARSE_BLOCK], format=TIMESTAMP_FORMAT,
                           errors="coerce").astype("datetime64[us]")
            for start in range(0, max(len(values), 1), PARSE_BLOCK)
        ]
    )  # fmt: skip
    retry = parsed.isna() & (values != "")
    if retry.any():
        others = pd.to_datetime(values[retry], format="ISO8601", utc=True, errors="coerce")
        parsed[retry] = others.dt.tz_convert(None).astype("datetime64[us]")
    return _within_range(parsed)


def _within_range(parsed: pd.Series) -> pd.Series:
    return parsed.where(parsed.between(EARLIEST, LATEST)).astype("datetime64[ns]")


def _parse_numbers(values: pd.Series) -> pd.Series:
    """Finite numbers ≥ 0 as float64; anything else is NaN."""
    try:
        numbers = pc.cast(pa.array(values), pa.float64()).to_numpy()
    except pa.ArrowInvalid:
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    valid = np.isfinite(numbers) & (numbers >= 0)
    return pd.Series(np.where(valid, numbers, np.nan), index=values.index)


def _parse_whole_numbers(values: pd.Series) -> pd.Series:
    """Whole numbers ≥ 0 as Int64; anything else is <NA>."""
    return values.where(values.str.fullmatch(r"\d{1,18}")).astype("Int64")


_PARSERS = {
    Kind.TEXT: _parse_text,
    Kind.DATE: _parse_dates,
    Kind.TIMESTAMP: parse_timestamps,
    Kind.NUMBER: _parse_numbers,
    Kind.INTEGER: _parse_whole_numbers,
}


def isin(values: pd.Series, allowed: Iterable[str]) -> np.ndarray:
    """Which of the text `values` are among `allowed` (through Arrow: fast on millions of rows)."""
    value_set = pa.array(allowed, type=pa.string())
    return pc.is_in(pa.array(values), value_set=value_set).to_numpy(zero_copy_only=False)
