"""Events as training interactions: what members did with shown offers enters the next run.

`perkrank train --events FILE` (a file of `perkrank events export` or `perkrank simulate`,
.parquet or .csv) adds rows to the purchases the models learn from: `REDEMPTION_ROWS` per
redemption and `CLICK_ROWS` per click, each with the member, the event's time, the offer's
partner and category, amount 0 and the event's channel. An offer a member redeemed is an item
they chose, as a purchase is; impressions without a click add nothing, as implicit-feedback
models have no negatives. `benchmarks/simulated_training.py` measured the weights on simulated
pilots. Events of members the members table does not know are left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from perkrank.features.columns import Columns
from perkrank.features.dataset import Dataset

EVENT_ROWS: dict[str, int] = {"redemption": 1, "click": 0}
"""Purchase rows each event type adds (the measured default: redemptions only)."""


def read_events(path: Path) -> pd.DataFrame:
    """The events of an export (`type`, `member_id`, `partner_id`, `category`, `channel`, `ts`)."""
    events = _read_columns(path, ["type", "member_id", "partner_id", "category", "channel", "ts"])
    events["ts"] = pd.to_datetime(events["ts"], utc=True).dt.tz_localize(None)
    return events


def with_events(
    dataset: Dataset, events: pd.DataFrame, rows: Mapping[str, int] = EVENT_ROWS
) -> tuple[Dataset, int]:
    """`dataset` with the purchase rows `events` add (see the module docstring); how many."""
    known = events["member_id"].isin(dataset.members[Columns.member_id])
    repeats = events["type"].map(rows).fillna(0).astype(int)
    added = events[known].loc[lambda frame: frame.index.repeat(repeats[known])]
    purchases = pd.DataFrame(
        {
            Columns.member_id: added["member_id"].to_numpy(),
            Columns.ts: added["ts"].astype(dataset.purchases[Columns.ts].dtype).to_numpy(),
            Columns.partner_id: added["partner_id"].to_numpy(),
            Columns.category: added["category"].to_numpy(),
            Columns.amount: 0.0,
            Columns.channel: added["channel"].to_numpy(),
        }
    )[dataset.purchases.columns]
    combined = pd.concat([dataset.purchases, purchases], ignore_index=True)
    return Dataset(dataset.members, combined, dataset.partners, dataset.offers), len(purchases)


def offer_response_counts(path: Path) -> pd.DataFrame:
    """Impressions and redemptions per offer of an events export (index: offer_id), for the
    offer-level response rates (`models.offer_rates`)."""
    events = _read_columns(path, ["type", "offer_id"])
    counts = pd.crosstab(events["offer_id"], events["type"])
    return counts.reindex(columns=["impression", "redemption"], fill_value=0)


def _read_columns(path: Path, columns: list[str]) -> pd.DataFrame:
    """`columns` of an events export (.parquet or .csv)."""
    if path.suffix == ".parquet":
        return pd.read_parquet(path, columns=columns)
    if path.suffix == ".csv":
        return pd.read_csv(path, usecols=columns, dtype=str, keep_default_na=False)
    raise ValueError(f"{path}: use a .parquet or .csv events export")
