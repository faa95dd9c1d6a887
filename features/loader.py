"""Read the four input tables from a data directory and check them against the data contract.

The entry points: `load_dataset` (a data directory) and `load_offers` (one offers file). Every
problem is collected first (file, row, field, message) and raised together in one
`DataValidationError`, so one run lists everything to fix. Loading only reads files.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from perkrank.features.checks import (
    check_known,
    check_offer_regions,
    check_tables,
    check_unique_ids,
    check_validity_periods,
)
from perkrank.features.dataset import Dataset
from perkrank.features.parsing import ParsedTable, parse_table
from perkrank.features.problems import DataValidationError, Problem, Problems
from perkrank.features.reading import FIRST_ROW, find_file, read_texts
from perkrank.features.schema import OFFERS, PARTNERS, TABLES, Table

__all__ = ["DataValidationError", "Problem", "load_dataset", "load_offers"]


def load_dataset(data_dir: Path) -> Dataset:
    """The four tables of `data_dir`, parsed; raises DataValidationError listing every problem.

    Each table is `<name>.csv`, `<name>.csv.gz` or `<name>.parquet` (exactly one of them);
    docs/data.md describes the columns and every check.
    """
    data_dir = Path(data_dir)
    problems = Problems()
    if not data_dir.is_dir():
        problems.add(str(data_dir), None, None, "is not a directory")
        problems.raise_if_any()
    loaded = {table.name: _load_table(data_dir, table, problems) for table in TABLES}
    check_tables(loaded, problems)
    problems.raise_if_any()
    return Dataset(**{name: _output_frame(table.frame) for name, table in loaded.items()})


def load_offers(path: Path, partners: pd.DataFrame) -> pd.DataFrame:
    """One offers file (`.csv`, `.csv.gz` or `.parquet`) checked as `load_dataset` checks
    offers, against validated `partners`; raises DataValidationError listing every problem."""
    problems = Problems()
    offers = _read_table(Path(path), OFFERS, problems)
    known = ParsedTable(
        "the partners file", partners, np.arange(FIRST_ROW, FIRST_ROW + len(partners))
    )
    check_unique_ids(offers, OFFERS.id_column, problems)
    check_known(offers, known, PARTNERS.id_column, problems)
    check_offer_regions(offers, known, problems)
    check_validity_periods(offers, problems)
    problems.raise_if_any()
    assert offers is not None  # an unreadable file is a problem raised above
    return _output_frame(offers.frame)


def _load_table(data_dir: Path, table: Table, problems: Problems) -> ParsedTable | None:
    path = find_file(data_dir, table, problems)
    if path is None:
        return None
    return _read_table(path, table, problems)


def _read_table(path: Path, table: Table, problems: Problems) -> ParsedTable | None:
    texts = read_texts(path, table, problems)
    if texts is None:
        return None
    return parse_table(path.name, table, *texts, problems)


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
