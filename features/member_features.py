"""What is known about members at a cutoff: their purchase history and their feature names.

Everything here looks only at members who signed up before the cutoff and at their purchases
before it, so what is built for a past cutoff never sees the future.
"""

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from perkrank.features.columns import Columns
from perkrank.features.dataset import Dataset
from perkrank.features.vocabulary import (
    DAYS_PER_MONTH,
    SPEND_FEATURES,
    TENURE_FEATURES,
    TENURE_LIMITS_MONTHS,
    item_id,
    member_feature_names,
    top_category_feature,
)

SPEND_WINDOW_DAYS = 90
SPEND_QUANTILES = (1 / 3, 2 / 3)
"""Thresholds between low, mid and high spend, as quantiles over the members who spent."""
TOP_CATEGORIES = 2


@dataclass(frozen=True)
class History:
    """What was known at `cutoff`, with purchases as row numbers into `members` and `items`.

    members:     members who signed up before the cutoff, sorted by member_id.
    items:       partner_id, category and item_id of every item they bought before the cutoff.
    member_rows, item_rows, timestamps, amounts: one entry per purchase before the cutoff
                 (amounts None: not read, `history_at(..., amounts=False)`).
    """

    cutoff: pd.Timestamp
    members: pd.DataFrame
    items: pd.DataFrame
    member_rows: np.ndarray
    item_rows: np.ndarray
    timestamps: np.ndarray
    amounts: np.ndarray | None

    def recency_weights(self, half_life_days: float | None) -> np.ndarray:
        """Weight per purchase, halved every `half_life_days` before the cutoff (None: all 1)."""
        if half_life_days is None:
            return np.ones(len(self.timestamps))
        age_days = (self.cutoff.to_datetime64() - self.timestamps) / np.timedelta64(1, "D")
        return np.exp2(-age_days / half_life_days)


def as_cutoff(cutoff: datetime) -> pd.Timestamp:
    """`cutoff` as a naive UTC timestamp, comparable with the tables' dates and times."""
    timestamp = pd.Timestamp(cutoff)
    if timestamp.tzinfo is not None:
        timestamp = timestamp.tz_convert("UTC").tz_localize(None)
    return timestamp


def history_at(dataset: Dataset, cutoff: datetime, *, amounts: bool = True) -> History:
    """Members who signed up before `cutoff` and their purchases before it (without their
    amounts if not `amounts`: one array fewer per purchase where no spend is read)."""
    cutoff = as_cutoff(cutoff)
    members = dataset.members[dataset.members[Columns.signup_date] < cutoff]
    members = members.sort_values(Columns.member_id, ignore_index=True)
    purchases = dataset.purchases
    member_rows = _positions(purchases[Columns.member_id], members[Columns.member_id])
    known = (member_rows >= 0) & (purchases[Columns.ts] < cutoff).to_numpy()
    partner_codes, partner_ids = pd.factorize(purchases[Columns.partner_id])
    category_codes, categories = pd.factorize(purchases[Columns.category])
    pair_keys = partner_codes[known].astype(np.int64) * len(categories) + category_codes[known]
    item_rows, item_keys = pd.factorize(pair_keys)
    item_partners = np.asarray(partner_ids)[item_keys // len(categories)]
    item_categories = np.asarray(categories)[item_keys % len(categories)]
    items = pd.DataFrame(
        {
            Columns.partner_id: item_partners,
            Columns.category: item_categories,
            Columns.item_id: [
                item_id(partner_id, category)
                for partner_id, category in zip(item_partners, item_categories, strict=True)
            ],
        }
    )
    return History(
        cutoff=cutoff,
        members=members,
        items=items,
        member_rows=member_rows[known],
        item_rows=item_rows,
        timestamps=purchases[Columns.ts].to_numpy()[known],
        amounts=purchases[Columns.amount].to_numpy(dtype=float)[known] if amounts else None,
    )


def describe_members(history: History, half_life_days: float | None) -> dict[str, list[str]]:
    """Feature names of every member of `history`, from what was known at its cutoff.

    Region, tier and segment; tenure at the cutoff; spend over the last `SPEND_WINDOW_DAYS`;
    the `TOP_CATEGORIES` categories with the most purchases, each weighted by recency
    (`half_life_days`). A member without purchases gets exactly
    `vocabulary.cold_member_feature_names(region, tier, days since signup)`.
    """
    members = history.members
    segments = list(
        zip(members[Columns.region].tolist(), members[Columns.tier].tolist(), strict=True)
    )
    segment_features = {segment: member_feature_names(*segment) for segment in set(segments)}
    rows = zip(
        members[Columns.member_id].tolist(),
        segments,
        _tenure_features(history).tolist(),
        _spend_features(history).tolist(),
        _top_category_features(history, half_life_days),
        strict=True,
    )
    return {
        member_id: [*segment_features[segment], tenure, spend, *top]
        for member_id, segment, tenure, spend, top in rows
    }


def _positions(values: pd.Series, known: pd.Series) -> np.ndarray:
    """Position of every value in the unique `known`, -1 where it is not there."""
    values_array = pa.array(values)
    known_array = pa.array(known, type=values_array.type)
    return pc.index_in(values_array, value_set=known_array).fill_null(-1).to_numpy()


def _tenure_features(history: History) -> np.ndarray:
    signup_dates = history.members[Columns.signup_date].to_numpy()
    days = (history.cutoff.to_datetime64() - signup_dates) / np.timedelta64(1, "D")
    buckets = np.searchsorted(TENURE_LIMITS_MONTHS, days / DAYS_PER_MONTH, side="right")
    return np.asarray(TENURE_FEATURES, dtype=object)[buckets]  # one str object per name


def _spend_features(history: History) -> np.ndarray:
    window_start = history.cutoff - pd.Timedelta(days=SPEND_WINDOW_DAYS)
    recent = history.timestamps >= window_start.to_datetime64()
    member_count = len(history.members)
    assert history.amounts is not None, "describe_members reads the amounts"
    spend = np.bincount(
        history.member_rows[recent], weights=history.amounts[recent], minlength=member_count
    )
    levels = np.zeros(member_count, dtype=int)
    spent = spend > 0
    if spent.any():
        thresholds = np.quantile(spend[spent], SPEND_QUANTILES)
        levels[spent] = 1 + np.searchsorted(thresholds, spend[spent], side="left")
    return np.asarray(SPEND_FEATURES, dtype=object)[levels]  # one str object per name


def _top_category_features(history: History, half_life_days: float | None) -> list[list[str]]:
    item_categories, categories = pd.factorize(history.items[Columns.category], sort=True)
    totals = sp.csr_matrix(
        (
            history.recency_weights(half_life_days),
            (history.member_rows, item_categories[history.item_rows]),
        ),
        shape=(len(history.members), len(categories)),
    )
    names = [top_category_feature(category) for category in categories]
    features: list[list[str]] = [[] for _ in range(totals.shape[0])]
    for rows, columns in _largest_per_row(totals, TOP_CATEGORIES):
        for member_row, category in zip(rows.tolist(), columns.tolist(), strict=True):
            features[member_row].append(names[category])
    return features


def _largest_per_row(matrix: sp.csr_matrix, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(rows, columns) of each row's largest positive entry, then its second largest, ….

    Ties go to the lower column. Linear in the entries: no sort.
    """
    matrix.sum_duplicates()
    values = matrix.data.astype(float)
    lengths = np.diff(matrix.indptr)
    starts = matrix.indptr[:-1][lengths > 0]
    segment_of_entry = np.repeat(np.arange(len(starts)), lengths[lengths > 0])
    row_of_entry = np.repeat(np.arange(matrix.shape[0]), lengths)
    positions = np.arange(len(values))
    ranked = []
    for _ in range(count):
        largest = np.maximum.reduceat(values, starts)
        is_largest = values == largest[segment_of_entry]
        first = np.minimum.reduceat(np.where(is_largest, positions, len(values)), starts)
        first = first[largest > 0]
        ranked.append((row_of_entry[first], matrix.indices[first]))
        values[first] = 0.0
    return ranked
