"""Point-in-time features of (member, item) pairs for the second-stage ranker.

Everything is computed from a `History` (purchases strictly before its cutoff), so features
built for a past cutoff never see the purchases a ranker is trained to predict. Days are
calendar days: a purchase's *age* is the cutoff's day number minus the purchase's day number
(a purchase the day before a midnight cutoff has age 1); "in the last W days" means age ≤ W.

`purchase_stats` condenses a history into arrays a server could hold in memory and refresh:
    per member:  purchases, distinct purchase days, distinct items, tenure, age of the last
                 visit, mean gap between visits, region, purchases per category;
    per item:    purchases (all, last 30/90/365 days), buyers, repurchase rate, mean
                 repurchase gap, age of the first sale, category, purchases per region;
    per pair:    sorted keys member_row · n_items + item_row with counts per window,
                 distinct days, age of the last purchase and the pair's own mean gap.
`pair_features` gathers `FEATURE_NAMES` for any (member row, item row) pairs from those
arrays alone (rows -1: a member or an item the history does not know). numpy/scipy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from perkrank.features.columns import Columns

if TYPE_CHECKING:
    from perkrank.features.member_features import History

WINDOWS_DAYS = (30, 90, 365)
"""Recent windows of the own and item counts, in days before the cutoff."""
REGION_PRIOR = 20.0
"""Purchases the global shares count for in a region's smoothed share of an item."""
FEATURE_NAMES: tuple[str, ...] = (
    "own_count",
    "own_count_30d",
    "own_count_90d",
    "own_count_365d",
    "own_days",
    "own_share",
    "days_since_own",
    "since_own_over_own_gap",
    "since_own_over_member_gap",
    "since_own_over_item_gap",
    "own_category_share",
    "item_count",
    "item_count_30d",
    "item_count_90d",
    "item_count_365d",
    "item_trend",
    "item_buyers",
    "item_repurchase_rate",
    "item_gap",
    "item_age_days",
    "regional_share",
    "member_purchases",
    "member_days",
    "member_items",
    "member_tenure_days",
    "member_gap",
    "days_since_visit",
    "since_visit_over_member_gap",
)
"""Columns of `pair_features`, in order; NaN where a value is undefined (see `pair_features`)."""


@dataclass(frozen=True)
class PurchaseStats:
    """Per-member, per-item and per-pair arrays of a history (see the module docstring)."""

    member_ids: np.ndarray
    item_ids: np.ndarray
    member_purchases: np.ndarray
    member_days: np.ndarray
    member_items: np.ndarray
    member_tenure_days: np.ndarray
    member_last_age: np.ndarray
    member_gap: np.ndarray
    member_regions: np.ndarray
    member_categories: sp.csr_matrix
    item_counts: np.ndarray
    """(n_items, 1 + len(WINDOWS_DAYS)): all purchases, then per window."""
    item_buyers: np.ndarray
    item_repurchase_rate: np.ndarray
    item_gap: np.ndarray
    item_first_age: np.ndarray
    item_categories: np.ndarray
    region_shares: np.ndarray
    """(n_regions, n_items): smoothed share of each region's purchases."""
    pair_keys: np.ndarray
    pair_counts: np.ndarray
    """(n_pairs, 1 + len(WINDOWS_DAYS)), like `item_counts`."""
    pair_days: np.ndarray
    pair_last_age: np.ndarray
    pair_gap: np.ndarray


def purchase_stats(history: History) -> PurchaseStats:
    """Every array `pair_features` reads, from the purchases of `history`."""
    import pandas as pd  # here only: serving imports this module for `pair_features`

    n_members, n_items = len(history.members), len(history.items)
    cutoff_day = _day(np.asarray([history.cutoff.to_datetime64()]))[0]
    # Per-purchase temporaries are dropped as soon as they are used: at 1M members (27M
    # purchases) each costs ~200 MiB, and this runs beside everything `train` holds.
    ages = cutoff_day - _day(history.timestamps)
    in_window = _window_flags(ages)

    pair_keys, pair_of = _unique_inverse(
        history.member_rows.astype(np.int64) * n_items + history.item_rows
    )
    pair_counts = _column_sums(pair_of, in_window, len(pair_keys))
    pair_days, pair_last_age, pair_first_age = _distinct_days(pair_of, ages, len(pair_keys))
    del pair_of
    item_counts = _column_sums(history.item_rows, in_window, n_items)
    del in_window
    pair_gap = _mean_gap(pair_first_age, pair_last_age, pair_days)
    pair_members, pair_items = np.divmod(pair_keys, n_items)

    member_days, member_last_age, member_first_age = _distinct_days(
        history.member_rows, ages, n_members
    )
    first_ages = np.full(n_items, -np.inf)
    np.maximum.at(first_ages, history.item_rows, ages.astype(np.float64))
    del ages
    signup_days = _day(history.members[Columns.signup_date].to_numpy())
    category_codes, _ = pd.factorize(history.items[Columns.category])
    region_codes, _ = pd.factorize(history.members[Columns.region])
    repeat_pairs = pair_days >= 2
    item_buyers = np.bincount(pair_items, minlength=n_items).astype(np.float64)
    item_repeaters = np.bincount(pair_items[repeat_pairs], minlength=n_items)
    item_gap_sums = np.bincount(
        pair_items[repeat_pairs], weights=pair_gap[repeat_pairs], minlength=n_items
    )
    member_categories = _count_matrix(
        history.member_rows,
        category_codes[history.item_rows],
        n_members,
        category_codes.max(initial=-1) + 1,
    )
    return PurchaseStats(
        member_ids=history.members[Columns.member_id].to_numpy(dtype=str),
        item_ids=history.items[Columns.item_id].to_numpy(dtype=str),
        member_purchases=np.bincount(history.member_rows, minlength=n_members).astype(float),
        member_days=member_days,
        member_items=np.bincount(pair_members, minlength=n_members).astype(np.float64),
        member_tenure_days=(cutoff_day - signup_days).astype(np.float64),
        member_last_age=member_last_age,
        member_gap=_mean_gap(member_first_age, member_last_age, member_days),
        member_regions=region_codes,
        member_categories=member_categories,
        item_counts=item_counts,
        item_buyers=item_buyers,
        item_repurchase_rate=_ratio(item_repeaters, item_buyers),
        item_gap=_ratio(item_gap_sums, item_repeaters),
        item_first_age=np.where(np.isfinite(first_ages), first_ages, np.nan),
        item_categories=category_codes,
        region_shares=_region_shares(
            region_codes[history.member_rows],
            history.item_rows,
            region_codes.max(initial=-1) + 1,
            n_items,
        ),
        pair_keys=pair_keys,
        pair_counts=pair_counts,
        pair_days=pair_days,
        pair_last_age=pair_last_age,
        pair_gap=pair_gap,
    )


def pair_features(
    stats: PurchaseStats, member_rows: np.ndarray, item_rows: np.ndarray
) -> np.ndarray:
    """float64 (pairs × FEATURE_NAMES) for rows of `stats.member_ids` and `stats.item_ids`.

    Own features are 0 (counts) or NaN (ages, ratios) for a pair never bought; item features
    of an unknown item (row -1) are 0 (counts) or NaN; member features of an unknown member
    are NaN. Ratios with an undefined or zero denominator are NaN.
    """
    member_rows, item_rows = np.asarray(member_rows, np.int64), np.asarray(item_rows, np.int64)
    known_member, known_item = member_rows >= 0, item_rows >= 0
    m, i = np.where(known_member, member_rows, 0), np.where(known_item, item_rows, 0)
    n_items = len(stats.item_ids)
    keys = m * n_items + i
    # Searches past the end are clipped onto the last pair (then `bought` is False); no copy
    # of the pair arrays, so a few pairs cost the same however many the history holds.
    at = np.minimum(np.searchsorted(stats.pair_keys, keys), max(len(stats.pair_keys) - 1, 0))
    found = stats.pair_keys[at] == keys if len(stats.pair_keys) else np.zeros(len(keys), bool)
    bought = known_member & known_item & found

    def own(values: np.ndarray, missing: float) -> np.ndarray:
        return np.where(bought, values[at], missing) if len(values) else np.full(len(at), missing)

    def member(values: np.ndarray) -> np.ndarray:
        return np.where(known_member, values[m], np.nan)

    def item(values: np.ndarray, missing: float) -> np.ndarray:
        return np.where(known_item, values[i], missing)

    own_counts = np.column_stack(
        [own(stats.pair_counts[:, column], 0.0) for column in range(stats.pair_counts.shape[1])]
    )
    item_counts = np.column_stack(
        [item(stats.item_counts[:, column], 0.0) for column in range(stats.item_counts.shape[1])]
    )
    since_own = own(stats.pair_last_age, np.nan)
    member_purchases = member(stats.member_purchases)
    member_gap = member(stats.member_gap)
    days_since_visit = member(stats.member_last_age)
    category_counts = np.asarray(
        stats.member_categories[m, stats.item_categories[i]] if len(keys) else np.zeros(0)
    ).ravel()
    regional_share = np.where(
        known_member & known_item, stats.region_shares[stats.member_regions[m], i], 0.0
    )
    columns = {
        "own_count": own_counts[:, 0],
        "own_count_30d": own_counts[:, 1],
        "own_count_90d": own_counts[:, 2],
        "own_count_365d": own_counts[:, 3],
        "own_days": own(stats.pair_days, 0.0),
        "own_share": _ratio(own_counts[:, 0], member_purchases),
        "days_since_own": since_own,
        "since_own_over_own_gap": _ratio(since_own, own(stats.pair_gap, np.nan)),
        "since_own_over_member_gap": _ratio(since_own, member_gap),
        "since_own_over_item_gap": _ratio(since_own, item(stats.item_gap, np.nan)),
        "own_category_share": np.where(
            known_item, _ratio(category_counts, member_purchases), np.nan
        ),
        "item_count": item_counts[:, 0],
        "item_count_30d": item_counts[:, 1],
        "item_count_90d": item_counts[:, 2],
        "item_count_365d": item_counts[:, 3],
        "item_trend": np.log((item_counts[:, 1] + 1) / (item_counts[:, 2] / 3 + 1)),
        "item_buyers": item(stats.item_buyers, 0.0),
        "item_repurchase_rate": item(stats.item_repurchase_rate, np.nan),
        "item_gap": item(stats.item_gap, np.nan),
        "item_age_days": item(stats.item_first_age, np.nan),
        "regional_share": regional_share,
        "member_purchases": member_purchases,
        "member_days": member(stats.member_days),
        "member_items": member(stats.member_items),
        "member_tenure_days": member(stats.member_tenure_days),
        "member_gap": member_gap,
        "days_since_visit": days_since_visit,
        "since_visit_over_member_gap": _ratio(days_since_visit, member_gap),
    }
    return np.column_stack([columns[name] for name in FEATURE_NAMES]).astype(np.float64)


def _day(moments: np.ndarray) -> np.ndarray:
    """Calendar day numbers (days since 1970-01-01) of datetime64 values."""
    return np.asarray(moments, dtype="datetime64[D]").astype(np.int64)


def _window_flags(ages: np.ndarray) -> np.ndarray:
    """(purchases × (1 + len(WINDOWS_DAYS))) bool: every purchase, then age within each window."""
    flags = np.ones((len(ages), 1 + len(WINDOWS_DAYS)), dtype=bool)
    for column, window in enumerate(WINDOWS_DAYS, start=1):
        np.less_equal(ages, window, out=flags[:, column])
    return flags


def _pair_counts(rows: np.ndarray, columns: np.ndarray, n_rows: int, n_columns: int) -> np.ndarray:
    """float64 counts of each (row, column) pair, flat over n_rows × n_columns (a dense count,
    without the float ones and index copies a sparse matrix of the purchases would build)."""
    keys = np.asarray(rows, dtype=np.int64) * n_columns + columns
    return np.bincount(keys, minlength=n_rows * n_columns).astype(np.float64)


def _count_matrix(
    rows: np.ndarray, columns: np.ndarray, n_rows: int, n_columns: int
) -> sp.csr_matrix:
    """csr float64 counts of each (row, column) pair: counted densely when rows × columns is no
    larger than the pairs given, else through a sparse matrix (memory stays O(pairs))."""
    if n_rows * n_columns <= len(rows):
        return sp.csr_matrix(
            _pair_counts(rows, columns, n_rows, n_columns).reshape(n_rows, n_columns)
        )
    return sp.csr_matrix((np.ones(len(rows)), (rows, columns)), shape=(n_rows, n_columns))


def _column_sums(groups: np.ndarray, flags: np.ndarray, size: int) -> np.ndarray:
    """(size × flags columns): per group, how many of its entries have each flag set."""
    return np.column_stack(
        [np.bincount(groups, weights=flags[:, c], minlength=size) for c in range(flags.shape[1])]
    ).reshape(size, flags.shape[1])


def _distinct_days(
    groups: np.ndarray, ages: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per group: distinct purchase days, age of the latest and of the earliest (NaN: none)."""
    ages = np.asarray(ages, dtype=np.int64)
    low = int(ages.min()) if len(ages) else 0
    span = int(ages.max()) - low + 1 if len(ages) else 1
    keys = _unique(np.asarray(groups, dtype=np.int64) * span + (ages - low))
    pair_groups, pair_ages = np.divmod(keys, span)
    pair_ages = (pair_ages + low).astype(np.float64)
    count = np.bincount(pair_groups, minlength=size).astype(np.float64)
    latest, earliest = np.full(size, np.inf), np.full(size, -np.inf)
    np.minimum.at(latest, pair_groups, pair_ages)
    np.maximum.at(earliest, pair_groups, pair_ages)
    seen = count > 0
    return count, np.where(seen, latest, np.nan), np.where(seen, earliest, np.nan)


def _unique(keys: np.ndarray) -> np.ndarray:
    """`np.unique(keys)` of int64 keys by one sort (numpy's own is many times slower here)."""
    keys = np.sort(keys)
    return keys[np.r_[True, keys[1:] != keys[:-1]]] if len(keys) else keys


def _unique_inverse(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`np.unique(keys, return_inverse=True)` of int64 keys by one stable argsort."""
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    first = np.r_[True, ordered[1:] != ordered[:-1]] if len(keys) else np.zeros(0, bool)
    inverse = np.empty(len(keys), dtype=np.intp)
    inverse[order] = np.cumsum(first) - 1
    return ordered[first], inverse


def _mean_gap(first_age: np.ndarray, last_age: np.ndarray, days: np.ndarray) -> np.ndarray:
    """Mean days between consecutive distinct purchase days (NaN below two days)."""
    return _ratio(first_age - last_age, days - 1)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, NaN where the denominator is 0 or NaN."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    valid = np.isfinite(denominator) & (denominator != 0)
    return np.divide(numerator, denominator, out=np.full(numerator.shape, np.nan), where=valid)


def _region_shares(
    purchase_regions: np.ndarray, purchase_items: np.ndarray, n_regions: int, n_items: int
) -> np.ndarray:
    """(regions × items) shares of each region's purchases, smoothed towards global shares."""
    counts = _pair_counts(purchase_regions, purchase_items, n_regions, n_items)
    counts = counts.reshape(n_regions, n_items)
    total = counts.sum()
    global_shares = counts.sum(axis=0) / total if total else np.zeros(n_items)
    return (counts + REGION_PRIOR * global_shares) / (
        counts.sum(axis=1, keepdims=True) + REGION_PRIOR
    )
