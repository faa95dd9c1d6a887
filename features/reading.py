"""Find a table's file in a data directory and read its cells as text, with row numbers.

CSV (also gzipped) is read through pyarrow; rows with the wrong number of cells are reported and
skipped. Parquet columns are turned into the text a CSV cell would hold, so every format is
parsed the same way afterwards.
"""

import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from perkrank.features.problems import Problems
from perkrank.features.schema import LIST_SEPARATOR, Column, Kind, Table

SUFFIXES: tuple[str, ...] = (".csv", ".csv.gz", ".parquet")
FIRST_ROW = 2
"""Row number of the first data row, as a spreadsheet shows it (the header is row 1)."""
UTF8_ERROR = re.compile(r"column #(\d+): Row #(\d+): CSV conversion error to string: invalid UTF8")


class _UnreadableError(Exception):
    """A file (or its header) cannot be read at all; carries where and why."""

    def __init__(self, row: int | None, field: str | None, message: str) -> None:
        super().__init__(message)
        self.row = row
        self.field = field
        self.message = message


def find_file(data_dir: Path, table: Table, problems: Problems) -> Path | None:
    """The one file of `table` in `data_dir`; None (reported) when it is missing or doubled."""
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


def read_texts(
    path: Path, table: Table, problems: Problems
) -> tuple[dict[str, pa.ChunkedArray], np.ndarray] | None:
    """The file's cells of the contract's columns as text, and each data row's number; None
    (with the problem reported) when the file cannot be read."""
    try:
        if path.name.endswith(".parquet"):
            return _read_parquet(path, table)
        return _read_csv(path, table, problems)
    except _UnreadableError as error:
        problems.add(path.name, error.row, error.field, error.message)
        return None
    except (pa.ArrowException, OSError) as error:
        problems.add(path.name, None, None, f"cannot be read: {error}")
        return None


def _read_csv(
    path: Path, table: Table, problems: Problems
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
