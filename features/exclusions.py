"""Members training leaves out: those forgotten and those who turned personalization off, as
`perkrank members exclusions` exports them (the SHA-256 of each member id, `member_hash`).
Their members row and every purchase of theirs are dropped before any feature is built, so
no matrix has a row for them and no model a vector. Under `privacy.opted_out: aggregate_only`
the purchases of members with personalization off still count in the anonymous aggregates
(popularity); forgotten members are always dropped entirely."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from perkrank.config import ConfigError
from perkrank.features.columns import Columns
from perkrank.features.dataset import Dataset
from perkrank.member_hash import member_hash

FORGOTTEN, NO_PERSONALIZATION = "forgotten", "no_personalization"


@dataclass(frozen=True)
class TrainingMembers:
    """The data training fits on: `personal` for every member-level model, `aggregates`
    (None: `personal`) for the anonymous aggregates."""

    personal: Dataset
    aggregates: Dataset | None = None
    left_out: int = 0
    """Members with no row in any personal model."""
    aggregate_only: int = 0
    """Of those, members whose purchases still count in the aggregates."""

    def summary(self) -> str:
        """One line for the training log."""
        return (
            f"{self.left_out} members and their purchases left out "
            f"({self.aggregate_only} still counted in the anonymous aggregates)"
        )


def read_exclusions(path: Path) -> dict[str, str]:
    """Reason by member hash of an exclusions file (.csv or .parquet, column `member_hash`,
    optional `reason`: forgotten or no_personalization; a row without one is forgotten)."""
    if path.suffix == ".parquet":
        table = pd.read_parquet(path)
    elif path.suffix == ".csv":
        table = pd.read_csv(path, dtype=str)
    else:
        raise ConfigError(f"{path}: an exclusions file is .csv or .parquet")
    if "member_hash" not in table.columns:
        raise ConfigError(f"{path}: no column member_hash")
    reasons = table["reason"] if "reason" in table.columns else pd.Series(dtype=str)
    reasons = reasons.reindex(table.index).fillna(FORGOTTEN)
    unknown = set(reasons) - {FORGOTTEN, NO_PERSONALIZATION}
    if unknown:
        raise ConfigError(f"{path}: column reason: unknown values {sorted(unknown)}")
    kept = table["member_hash"].notna()
    return dict(zip(table["member_hash"][kept], reasons[kept], strict=True))


def training_members(
    dataset: Dataset, exclusions: dict[str, str], opted_out: str
) -> TrainingMembers:
    """`dataset` split by `exclusions` (reason by member hash) and the `opted_out` mode
    (`exclude` or `aggregate_only`, `TrainingPrivacy.opted_out`)."""
    if opted_out == "exclude":
        personal, left_out = without_members(dataset, frozenset(exclusions))
        return TrainingMembers(personal, None, left_out)
    forgotten = frozenset(h for h, reason in exclusions.items() if reason == FORGOTTEN)
    aggregates, gone = without_members(dataset, forgotten)
    opted = frozenset(h for h, reason in exclusions.items() if reason == NO_PERSONALIZATION)
    personal, aggregate_only = without_members(aggregates, opted)
    return TrainingMembers(personal, aggregates, gone + aggregate_only, aggregate_only)


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
