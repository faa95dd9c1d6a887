"""Uploaded offers files and published catalogs: parsing, and offers as the store's JSON."""

from __future__ import annotations

import gzip
import io
import tempfile
import zlib
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perkrank.serving.domain.catalog import Offer, catalog_offers

if TYPE_CHECKING:
    import pandas as pd

GUNZIP_CHUNK_BYTES = 1 << 20
"""A gzip's size is counted this many decompressed bytes at a time."""


class OffersFileTooLargeError(ValueError):
    """An offers file whose table is larger uncompressed than allowed."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the offers table is larger than {limit} bytes uncompressed")
        self.limit = limit


def read_offers_file(
    content: bytes, suffix: str, partners: pd.DataFrame, max_table_bytes: int
) -> list[Offer]:
    """The offers of an uploaded `.csv`, `.csv.gz` or `.parquet` file, checked like the
    training inputs against `partners` (raises DataValidationError naming row and field, or
    OffersFileTooLargeError before parsing a table of more than `max_table_bytes`)."""
    from perkrank.features.loader import load_offers

    if table_bytes(content, suffix, max_table_bytes) > max_table_bytes:
        raise OffersFileTooLargeError(max_table_bytes)
    with tempfile.TemporaryDirectory(prefix="perkrank-offers-") as directory:
        path = Path(directory) / f"offers{suffix}"
        path.write_bytes(content)
        table = load_offers(path, partners)
    return catalog_offers(table, partners)


def table_bytes(content: bytes, suffix: str, most: int) -> int:
    """The file's size uncompressed, counted no further than past `most`: a gzip decompressed
    as a stream, a Parquet file's uncompressed column data as its metadata states it. A file
    that cannot be read counts what was read of it (its parser reports the problem)."""
    if suffix == ".parquet":
        return _parquet_bytes(content)
    if suffix != ".csv.gz":
        return len(content)
    size = 0
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(content)) as stream:
            while size <= most and (chunk := stream.read(GUNZIP_CHUNK_BYTES)):
                size += len(chunk)
    except (OSError, EOFError, zlib.error):
        pass
    return size


def _parquet_bytes(content: bytes) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        metadata = pq.ParquetFile(pa.BufferReader(content)).metadata
    except (pa.ArrowException, OSError):
        return 0
    size = 0
    for index in range(metadata.num_row_groups):
        group = metadata.row_group(index)
        columns = (group.column(column) for column in range(group.num_columns))
        uncompressed = sum(column.total_uncompressed_size for column in columns)
        size += max(group.total_byte_size, uncompressed)
    return size


def offer_record(offer: Offer) -> dict[str, Any]:
    """An offer as JSON for the store."""
    return asdict(offer) | {
        "valid_from": offer.valid_from.isoformat(),
        "valid_to": offer.valid_to.isoformat(),
        "regions": None if offer.regions is None else sorted(offer.regions),
    }


def offer_from_record(record: dict[str, Any]) -> Offer:
    """The offer `offer_record` wrote."""
    regions = record["regions"]
    return Offer(
        **record
        | {
            "valid_from": date.fromisoformat(record["valid_from"]),
            "valid_to": date.fromisoformat(record["valid_to"]),
            "regions": None if regions is None else frozenset(regions),
        }
    )
