"""Members training leaves out: those forgotten and those who turned personalization off, as
`perkrank members exclusions` exports them (the SHA-256 of each member id, `member_hash`).
Their members row and every purchase of theirs are dropped before any feature is built, so
no matrix has a row for them and no model a vector."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from perkrank.config import ConfigError
from perkrank.features.columns import Columns
from perkrank.features.dataset import Dataset
from perkrank.member_hash import member_hash


def read_exclusions(path: Path) -> frozenset[str]:
    """The member hashes of an exclusions file (.csv or .parquet, column `member_hash`)."""
    if path.suffix == ".parquet":
        table = pd.read_parquet(path, columns=["member_hash"])
    elif path.suffix == ".csv":
        table = pd.read_csv(path, usecols=["member_hash"], dtype=str)
    else:
        raise ConfigError(f"{path}: an exclusions file is .csv or .parquet")
    return frozenset(table["member_hash"].dropna())


def without_members(dataset: Dataset, hashes: frozenset[str]) -> tuple[Dataset, int]:
    """`dataset` without the members whose id hashes to one of `hashes` nor their purchases;
    how many members were left out."""
    if not hashes:
        return dataset, 0
    ids = pd.concat([dataset.members[Columns.member_id], dataset.purchases[Columns.member_id]])
    excluded = {m for m in ids.drop_duplicates() if member_hash(m) in hashes}
    members = dataset.members[~dataset.members[Columns.member_id].isin(excluded)]
    purchases = dataset.purchases[~dataset.purchases[Columns.member_id].isin(excluded)]
    kept = Dataset(
        members=members.reset_index(drop=True),
        purchases=purchases.reset_index(drop=True),
        partners=dataset.partners,
        offers=dataset.offers,
    )
    return kept, len(excluded)
