"""Uploaded offers files and published catalogs: parsing, and offers as the store's JSON."""

from __future__ import annotations

import tempfile
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perkrank.serving.domain.catalog import Offer, catalog_offers

if TYPE_CHECKING:
    import pandas as pd


def read_offers_file(content: bytes, suffix: str, partners: pd.DataFrame) -> list[Offer]:
    """The offers of an uploaded `.csv`, `.csv.gz` or `.parquet` file, checked like the
    training inputs against `partners` (raises DataValidationError naming row and field)."""
    from perkrank.features.loader import load_offers

    with tempfile.TemporaryDirectory(prefix="perkrank-offers-") as directory:
        path = Path(directory) / f"offers{suffix}"
        path.write_bytes(content)
        table = load_offers(path, partners)
    return catalog_offers(table, partners)


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
