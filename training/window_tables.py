"""The tables behind an evaluation window (`training.window`): the window's offers,
eligibility per member group, relevant (member, offer) pairs and items bought before."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from perkrank.features.bought_items import BoughtItems
from perkrank.features.columns import Columns
from perkrank.features.eligibility import (
    eligible,
    region_mask,
    required_tier_rank,
    valid_between,
)
from perkrank.features.ids import IdMap
from perkrank.features.offer_features import offer_items
from perkrank.features.schema import LOCAL_SCOPE


def is_local(partners: pd.DataFrame, partner_ids: pd.Series) -> np.ndarray:
    """By offer: its partner's scope is local."""
    local = partners.loc[partners[Columns.scope] == LOCAL_SCOPE, Columns.partner_id]
    return partner_ids.isin(local).to_numpy(dtype=bool)


def day_numbers(moments: pd.Timestamp | pd.Series) -> np.ndarray:
    """Days since 1970-01-01 of timestamps (the unit of `features.eligibility`)."""
    return np.asarray(moments, dtype="datetime64[D]").astype(np.int64)


def window_offers(
    offers: pd.DataFrame,
    offer_regions: Sequence[frozenset[str] | None],
    first_day: int,
    last_day: int,
) -> pd.DataFrame:
    """Offers valid on some day of the window, sorted by offer_id, with item, regions, tier
    rank and validity as day numbers."""
    if len(offer_regions) != len(offers):
        raise ValueError("offer_regions must have one entry per row of dataset.offers")
    columns = [
        Columns.offer_id,
        Columns.partner_id,
        Columns.category,
        Columns.min_tier,
        *([Columns.exclusive_tier] if Columns.exclusive_tier in offers else []),
        Columns.valid_from,
        Columns.valid_to,
    ]
    table = offers[columns].assign(
        regions=pd.Series(list(offer_regions), index=offers.index, dtype=object),
        valid_from_day=day_numbers(offers[Columns.valid_from]),
        valid_to_day=day_numbers(offers[Columns.valid_to]),
    )
    valid = valid_between(table["valid_from_day"], table["valid_to_day"], first_day, last_day)
    if Columns.occasion in offers:
        valid &= (offers[Columns.occasion].fillna("") == "").to_numpy()
    table = table[valid].sort_values(Columns.offer_id, kind="stable").reset_index(drop=True)
    table[Columns.item_id] = offer_items(table)
    exclusive = (
        table[Columns.exclusive_tier]
        if Columns.exclusive_tier in table
        else pd.Series("", index=table.index)
    )
    table["tier_rank"] = np.array(
        [
            required_tier_rank(min_tier, exclusive_tier)
            for min_tier, exclusive_tier in zip(table[Columns.min_tier], exclusive, strict=True)
        ],
        dtype=np.int64,
    )
    return table


def group_rows(members: pd.DataFrame) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """Group index per member and the (region, tier) of each group."""
    codes, keys = pd.MultiIndex.from_frame(members[[Columns.region, Columns.tier]]).factorize()
    return np.asarray(codes), [tuple(key) for key in keys]


def eligibility(
    group_keys: list[tuple[str, str]], offers: pd.DataFrame, first_day: int, last_day: int
) -> np.ndarray:
    """Bool (groups × offers): `features.eligibility.eligible` for the group's region, tier
    and the window's days."""
    result = np.zeros((len(group_keys), len(offers)), dtype=bool)
    regions = offers[Columns.regions].tolist()
    arrays = (
        offers["tier_rank"].to_numpy(),
        offers["valid_from_day"].to_numpy(),
        offers["valid_to_day"].to_numpy(),
    )
    for group, (region, tier) in enumerate(group_keys):
        result[group] = eligible(
            region_mask(regions, region), *arrays, tier=tier, first_day=first_day, last_day=last_day
        )
    return result


def relevant_pairs(
    purchases: pd.DataFrame,
    members: pd.DataFrame,
    offers: pd.DataFrame,
    start: pd.Timestamp,
    end: pd.Timestamp,
) -> np.ndarray:
    """Unique (member row, offer row) pairs: a purchase in the window on a day the offer ran."""
    in_window = purchases.loc[
        (purchases[Columns.ts] >= start) & (purchases[Columns.ts] < end),
        [Columns.member_id, Columns.partner_id, Columns.category, Columns.ts],
    ]
    member_rows = IdMap(members[Columns.member_id]).rows(in_window[Columns.member_id])
    in_window = in_window.assign(member_row=member_rows, day=in_window[Columns.ts].dt.normalize())
    in_window = in_window[in_window["member_row"] >= 0]
    joined = in_window.merge(
        offers[
            [Columns.partner_id, Columns.category, Columns.valid_from, Columns.valid_to]
        ].reset_index(names="offer_row"),
        on=[Columns.partner_id, Columns.category],
    )
    joined = joined[
        (joined["day"] >= joined[Columns.valid_from]) & (joined["day"] <= joined[Columns.valid_to])
    ]
    keys = np.unique(joined["member_row"].to_numpy() * len(offers) + joined["offer_row"].to_numpy())
    return np.column_stack(np.divmod(keys, len(offers))).astype(np.int64).reshape(-1, 2)


def bool_matrix(rows: np.ndarray, columns: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    matrix = sp.csr_matrix((np.ones(len(rows), dtype=bool), (rows, columns)), shape=shape)
    matrix.sum_duplicates()
    return matrix


def bought_before_matrix(
    bought: BoughtItems,
    member_rows: np.ndarray,
    offer_item_ids: np.ndarray,
    shape: tuple[int, int],
) -> sp.csr_matrix:
    """Bool (members × offers): the offer's item is one the member bought before the window;
    `member_rows`: each window member's row of `bought` (-1: bought nothing)."""
    known = np.flatnonzero(member_rows >= 0)
    bought_rows = bought.matrix[member_rows[known]]
    member_items = sp.csr_matrix(
        (np.ones(bought_rows.nnz, dtype=np.int32), bought_rows.indices, bought_rows.indptr),
        shape=bought_rows.shape,
    )
    item_rows = IdMap(bought.item_ids).rows(offer_item_ids)
    offered = np.flatnonzero(item_rows >= 0)
    item_offers = sp.csr_matrix(
        (np.ones(len(offered), dtype=np.int32), (item_rows[offered], offered)),
        shape=(len(bought.item_ids), shape[1]),
    )
    pairs = (member_items @ item_offers).tocoo()
    return bool_matrix(known[pairs.row], pairs.col, shape)


def keep_eligible(
    matrix: sp.csr_matrix, eligible: np.ndarray, member_group: np.ndarray
) -> sp.csr_matrix:
    pairs = matrix.tocoo()
    keep = eligible[member_group[pairs.row], pairs.col]
    return bool_matrix(pairs.row[keep], pairs.col[keep], matrix.shape)
