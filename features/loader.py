"""Read the four input tables from a data directory and check them against the data contract.

Every problem is collected first (file, row, field, message) and raised together in one
`DataValidationError`, so one run lists everything to fix. Loading only reads files.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from perkrank.features.columns import Columns
from perkrank.features.dataset import Dataset
from perkrank.features.schema import (
    LIST_SEPARATOR,
    MEMBERS,
    OFFERS,
    PARTNERS,
    TABLES,
    Column,
    Kind,
    Table,
)
from perkrank.features.vocabulary import ITEM_SEPARATOR

SUFFIXES: tuple[str, ...] = (".csv", ".csv.gz", ".parquet")
FIRST_ROW = 2
"""Row number of the first data row, as a spreadsheet shows it (the header is row 1)."""
LISTED_PROBLEMS = 50
"""Problems `str(DataValidationError)` lists; each single check also keeps at most this many."""
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
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
"""The common timestamp format, parsed first; other ISO 8601 forms are parsed after it."""
UTF8_ERROR = re.compile(r"column #(\d+): Row #(\d+): CSV conversion error to string: invalid UTF8")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input: file name, row (header = 1), field and what is wrong."""

    file: str
    row: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        place = self.file if self.row is None else f"{self.file} row {self.row}"
        if self.field is not None:
            place = f"{place}, field {self.field}"
        return f"{place}: {self.message}"


class DataValidationError(ValueError):
    """The data directory breaks the data contract.

    `problems` holds whole-file problems first, then row problems by file and row (at most
    `LISTED_PROBLEMS` per check); `problem_count` counts every problem found.
    """

    def __init__(self, problems: list[Problem], problem_count: int) -> None:
        self.problems = problems
        self.problem_count = problem_count
        lines = [str(problem) for problem in problems[:LISTED_PROBLEMS]]
        if problem_count > len(lines):
            lines.append(f"… and {problem_count - len(lines)} more problems")
        super().__init__("\n".join(lines))


class _Problems:
    """Problems found so far: all counted, at most `LISTED_PROBLEMS` kept per check."""

    def __init__(self) -> None:
        self.kept: list[Problem] = []
        self.count = 0

    def add(self, file: str, row: int | None, field: str | None, message: str) -> None:
        self.count += 1
        self.kept.append(Problem(file, row, field, message))

    def add_rows(
        self, file: str, field: str | None, rows: np.ndarray, messages: Iterable[str]
    ) -> None:
        """One problem per row of `rows`; `messages` is only consumed for the problems kept."""
        self.count += len(rows)
        for row, message in islice(zip(rows, messages, strict=True), LISTED_PROBLEMS):
            self.kept.append(Problem(file, int(row), field, message))

    def raise_if_any(self) -> None:
        if not self.count:
            return
        file_order: dict[str, int] = {}
        for problem in self.kept:
            file_order.setdefault(problem.file, len(file_order))
        ordered = sorted(
            self.kept,
            key=lambda problem: (problem.row is not None, file_order[problem.file], problem.row),
        )
        raise DataValidationError(ordered, self.count)


@dataclass(frozen=True)
class _Loaded:
    """One table while it is checked: values parsed so far and each row's number in its file."""

    file: str
    frame: pd.DataFrame
    rows: np.ndarray

    def has(self, *columns: str) -> bool:
        return all(column in self.frame.columns for column in columns)


class _UnreadableError(Exception):
    """A file (or its header) cannot be read at all; carries where and why."""

    def __init__(self, row: int | None, field: str | None, message: str) -> None:
        super().__init__(message)
        self.row = row
        self.field = field
        self.message = message


def load_dataset(data_dir: Path) -> Dataset:
    """The four tables of `data_dir`, parsed; raises DataValidationError listing every problem.

    Each table is `<name>.csv`, `<name>.csv.gz` or `<name>.parquet` (exactly one of them);
    docs/data.md describes the columns and every check.
    """
    data_dir = Path(data_dir)
    problems = _Problems()
    if not data_dir.is_dir():
        problems.add(str(data_dir), None, None, "is not a directory")
        problems.raise_if_any()
    loaded = {table.name: _load_table(data_dir, table, problems) for table in TABLES}
    _check_tables(loaded, problems)
    problems.raise_if_any()
    return Dataset(**{name: _output_frame(table.frame) for name, table in loaded.items()})


def load_offers(path: Path, partners: pd.DataFrame) -> pd.DataFrame:
    """One offers file (`.csv`, `.csv.gz` or `.parquet`) checked as `load_dataset` checks
    offers, against validated `partners`; raises DataValidationError listing every problem."""
    problems = _Problems()
    offers = _read_table(Path(path), OFFERS, problems)
    known = _Loaded("the partners file", partners, np.arange(FIRST_ROW, FIRST_ROW + len(partners)))
    _check_unique_ids(offers, OFFERS.id_column, problems)
    _check_known(offers, known, PARTNERS.id_column, problems)
    _check_offer_regions(offers, known, problems)
    _check_validity_periods(offers, problems)
    problems.raise_if_any()
    assert offers is not None  # an unreadable file is a problem raised above
    return _output_frame(offers.frame)


def _load_table(data_dir: Path, table: Table, problems: _Problems) -> _Loaded | None:
    path = _find_file(data_dir, table, problems)
    if path is None:
        return None
    return _read_table(path, table, problems)


def _read_table(path: Path, table: Table, problems: _Problems) -> _Loaded | None:
    try:
        if path.name.endswith(".parquet"):
            columns, rows = _read_parquet(path, table)
        else:
            columns, rows = _read_csv(path, table, problems)
    except _UnreadableError as error:
        problems.add(path.name, error.row, error.field, error.message)
        return None
    except (pa.ArrowException, OSError) as error:
        problems.add(path.name, None, None, f"cannot be read: {error}")
        return None
    return _parse_table(path.name, table, columns, rows, problems)


def _find_file(data_dir: Path, table: Table, problems: _Problems) -> Path | None:
    candidates = [data_dir / f"{table.name}{suffix}" for suffix in SUFFIXES]
    found = [path for path in candidates if path.is_file()]
    if len(found) == 1:
        return found[0]
    if found:
        names = " and ".join(path.name for path in found)
        problems.add(found[0].name, None, None, f"{names} both exist; keep exactly one")
    else:
        names = ", ".join(path.name for path in candidates)
        problems.add(candidates[0].name, None, None, f"file is missing (expected one of {names})")
    return None


def _read_csv(
    path: Path, table: Table, problems: _Problems
) -> tuple[dict[str, pa.ChunkedArray], np.ndarray]:
    """Cells of the contract's columns as text, and each data row's number.

    Rows with the wrong number of cells are reported and skipped.
    """
    skipped_rows: list[int] = []

    def skip_row(row: pa_csv.InvalidRow) -> str:
        skipped_rows.append(row.number)
        problems.add(
            path.name,
            row.number,
            None,
            f"expected {row.expected_columns} cells as in the header, found {row.actual_columns}",
        )
        return "skip"

    read_options = pa_csv.ReadOptions(use_threads=False)  # row numbers are only known unthreaded
    try:
        header_options = _csv_parse_options(lambda row: "skip")
        with pa_csv.open_csv(path, read_options=read_options, parse_options=header_options) as csv:
            header = csv.schema.names
    except UnicodeDecodeError as error:
        raise _UnreadableError(1, None, "the header is not UTF-8 text; save it as UTF-8") from error
    except pa.ArrowInvalid as error:
        if "Empty CSV file" in str(error):
            raise _UnreadableError(None, None, "is empty (no header)") from error
        raise
    names = [name for name in header if name.strip() in table.column_names]
    try:
        data = pa_csv.read_csv(
            path,
            read_options=read_options,
            parse_options=_csv_parse_options(skip_row),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                include_columns=names,
                strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as error:
        match = UTF8_ERROR.search(str(error))
        if match is None:
            raise
        field = header[int(match[1])].strip()  # the column's number in the file
        message = "is not UTF-8 text; save it as UTF-8"
        raise _UnreadableError(int(match[2]), field, message) from error
    row_numbers = np.arange(FIRST_ROW, FIRST_ROW + data.num_rows + len(skipped_rows))
    if skipped_rows:
        row_numbers = np.setdiff1d(row_numbers, skipped_rows, assume_unique=True)
    texts = {name.strip(): data.column(index) for index, name in enumerate(data.column_names)}
    return texts, row_numbers


def _csv_parse_options(invalid_row_handler: object) -> pa_csv.ParseOptions:
    """Quoted cells may hold line breaks; blank lines stay rows, so row numbers match the file."""
    return pa_csv.ParseOptions(
        newlines_in_values=True, ignore_empty_lines=False, invalid_row_handler=invalid_row_handler
    )


def _read_parquet(path: Path, table: Table) -> tuple[dict[str, pa.ChunkedArray], np.ndarray]:
    """Every cell of the contract's columns as text (lists joined), and each record's row number."""
    present = set(pq.read_schema(path).names)
    columns = [column for column in table.columns if column.name in present]
    data = pq.read_table(path, columns=[column.name for column in columns])
    texts = {column.name: _parquet_text(data.column(column.name), column) for column in columns}
    return texts, np.arange(FIRST_ROW, FIRST_ROW + data.num_rows)


def _parquet_text(values: pa.ChunkedArray, column: Column) -> pa.ChunkedArray:
    """A typed parquet column as the text a CSV cell would hold (nulls become empty cells)."""
    try:
        if pa.types.is_list(values.type) or pa.types.is_large_list(values.type):
            values = pc.binary_join(values, LIST_SEPARATOR)
        elif column.kind is Kind.DATE and pa.types.is_timestamp(values.type):
            values = _timestamps_as_dates(values)
        return pc.fill_null(pc.cast(values, pa.string()), "")
    except pa.ArrowException as error:
        message = f"a column of type {values.type} cannot be read as {column.kind}"
        raise _UnreadableError(None, column.name, message) from error


def _timestamps_as_dates(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """Timestamps at midnight as dates; any other time of day leaves them as timestamps."""
    dates = pc.cast(values, pa.date32())
    at_midnight = pc.all(pc.equal(pc.cast(dates, values.type), values)).as_py()
    return values if at_midnight is False else dates


def _parse_table(
    file: str,
    table: Table,
    texts: dict[str, pa.ChunkedArray],
    rows: np.ndarray,
    problems: _Problems,
) -> _Loaded:
    """Check and parse every cell; blank rows are dropped, missing optional columns are empty."""
    cells = {}
    for column in table.columns:
        if column.name in texts:
            cells[column.name] = pc.utf8_trim_whitespace(texts[column.name]).to_pandas()
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
    return _Loaded(file, pd.DataFrame(parsed, index=frame.index), rows)


def _parse_column(
    file: str, column: Column, values: pd.Series, rows: np.ndarray, problems: _Problems
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
        messages = (f"{_quote(value)} is not {expected}" for value in values[malformed])
        problems.add_rows(file, column.name, rows[malformed], messages)
    if column.choices:
        unknown = ~_isin(values, column.choices) & ~empty
        allowed = ", ".join(column.choices)
        messages = (f"{_quote(value)} is not one of {allowed}" for value in values[unknown])
        problems.add_rows(file, column.name, rows[unknown], messages)
    if column.name in ITEM_PART_COLUMNS:
        joining = values.str.contains(ITEM_SEPARATOR, regex=False).to_numpy()
        messages = (
            f"{_quote(value)} contains {ITEM_SEPARATOR!r}, which joins partner and category "
            "into item ids"
            for value in values[joining]
        )
        problems.add_rows(file, column.name, rows[joining], messages)
    return parsed


def _split_list(cell: str) -> tuple[str, ...]:
    return tuple(item for part in cell.split(LIST_SEPARATOR) if (item := part.strip()))


def _parse_text(values: pd.Series) -> pd.Series:
    return values


def _parse_dates(values: pd.Series) -> pd.Series:
    return _within_range(pd.to_datetime(values, format="%Y-%m-%d", errors="coerce"))


def _parse_timestamps(values: pd.Series) -> pd.Series:
    """Naive UTC times: without an offset a time is taken as UTC, with one it is converted."""
    parsed = pd.to_datetime(values, format=TIMESTAMP_FORMAT, errors="coerce").astype(
        "datetime64[us]"
    )
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
    Kind.TIMESTAMP: _parse_timestamps,
    Kind.NUMBER: _parse_numbers,
    Kind.INTEGER: _parse_whole_numbers,
}


def _isin(values: pd.Series, allowed: Iterable[str]) -> np.ndarray:
    """Which of the text `values` are among `allowed` (through Arrow: fast on millions of rows)."""
    value_set = pa.array(allowed, type=pa.string())
    return pc.is_in(pa.array(values), value_set=value_set).to_numpy(zero_copy_only=False)


def _quote(value: str) -> str:
    """The cell as shown in a message: quoted, cut to 40 characters."""
    return repr(value if len(value) <= 40 else f"{value[:39]}…")


def _check_tables(loaded: dict[str, _Loaded | None], problems: _Problems) -> None:
    """Checks across rows and tables: unique ids, references, regions, validity periods."""
    members, purchases, partners, offers = (loaded[table.name] for table in TABLES)
    for table in (MEMBERS, PARTNERS, OFFERS):
        _check_unique_ids(loaded[table.name], table.id_column, problems)
    _check_known(purchases, members, MEMBERS.id_column, problems)
    _check_known(purchases, partners, PARTNERS.id_column, problems)
    _check_known(offers, partners, PARTNERS.id_column, problems)
    _check_local_partners_have_regions(partners, problems)
    _check_offer_regions(offers, partners, problems)
    _check_validity_periods(offers, problems)


def _check_unique_ids(table: _Loaded | None, id_column: str, problems: _Problems) -> None:
    if table is None or not table.has(id_column):
        return
    ids = table.frame[id_column]
    duplicate = (ids.duplicated() & (ids != "")).to_numpy()
    if not duplicate.any():
        return
    codes, _ = pd.factorize(ids)
    _, first_positions = np.unique(codes, return_index=True)
    first_rows = table.rows[first_positions[codes]]
    messages = (
        f"{_quote(value)} is a duplicate of row {first_row}"
        for value, first_row in zip(ids[duplicate], first_rows[duplicate], strict=True)
    )
    problems.add_rows(table.file, id_column, table.rows[duplicate], messages)


def _check_known(
    referring: _Loaded | None, referred: _Loaded | None, id_column: str, problems: _Problems
) -> None:
    """Every non-empty `id_column` value of `referring` is an id of `referred`."""
    if referring is None or referred is None:
        return
    if not (referring.has(id_column) and referred.has(id_column)):
        return
    values = referring.frame[id_column]
    unknown = ~_isin(values, referred.frame[id_column]) & (values != "").to_numpy()
    messages = (f"{_quote(value)} is not in {referred.file}" for value in values[unknown])
    problems.add_rows(referring.file, id_column, referring.rows[unknown], messages)


def _check_local_partners_have_regions(partners: _Loaded | None, problems: _Problems) -> None:
    if partners is None or not partners.has(Columns.scope, Columns.regions):
        return
    frame = partners.frame
    without = (
        (frame[Columns.scope] == "local") & (frame[Columns.regions].map(len) == 0)
    ).to_numpy()
    messages = ["a local partner needs at least one region"] * int(without.sum())
    problems.add_rows(partners.file, Columns.regions, partners.rows[without], messages)


def _check_offer_regions(
    offers: _Loaded | None, partners: _Loaded | None, problems: _Problems
) -> None:
    """An offer of a local partner may only name regions the partner operates in."""
    if offers is None or partners is None:
        return
    if not (
        offers.has(Columns.partner_id, Columns.regions)
        and partners.has(Columns.partner_id, Columns.scope, Columns.regions)
    ):
        return
    local_regions = {
        partner_id: regions
        for partner_id, scope, regions in zip(
            partners.frame[Columns.partner_id],
            partners.frame[Columns.scope],
            partners.frame[Columns.regions],
            strict=True,
        )
        if scope == "local" and regions
    }
    rows, messages = [], []
    offer_columns = (offers.rows, offers.frame[Columns.partner_id], offers.frame[Columns.regions])
    for row, partner_id, regions in zip(*offer_columns, strict=True):
        allowed = local_regions.get(partner_id, ())
        outside = [region for region in regions if allowed and region not in allowed]
        if outside:
            rows.append(row)
            messages.append(
                f"{', '.join(outside)} not among the regions of local partner {partner_id} "
                f"({', '.join(allowed)})"
            )
    problems.add_rows(offers.file, Columns.regions, np.array(rows, dtype=int), messages)


def _check_validity_periods(offers: _Loaded | None, problems: _Problems) -> None:
    if offers is None or not offers.has(Columns.valid_from, Columns.valid_to):
        return
    starts, ends = offers.frame[Columns.valid_from], offers.frame[Columns.valid_to]
    backwards = (ends < starts).to_numpy()
    messages = (
        f"{end:%Y-%m-%d} is before valid_from {start:%Y-%m-%d}"
        for start, end in zip(starts[backwards], ends[backwards], strict=True)
    )
    problems.add_rows(offers.file, Columns.valid_to, offers.rows[backwards], messages)


def _output_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with text columns as Python str objects and a fresh row index."""
    frame = frame.reset_index(drop=True)
    columns = {
        name: _str_objects(values) if isinstance(values.dtype, pd.StringDtype) else values
        for name, values in frame.items()
    }
    return pd.DataFrame(columns)


def _str_objects(values: pd.Series) -> pd.Series:
    """Text as an object column of Python str; equal values share one object (less memory)."""
    text = pa.array(values)
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    encoded = pc.dictionary_encode(text)
    distinct = encoded.dictionary.to_numpy(zero_copy_only=False)
    return pd.Series(distinct[encoded.indices.to_numpy()], dtype=object)
