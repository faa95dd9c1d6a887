"""An evaluation window [start, end): candidates, relevance and slices, shared by all models.

Definitions
-----------
Candidates:
    the offers a member could have been shown in the window: eligible (`features.eligibility`,
    the rule serving applies to one day) on some day of it (valid_from < end and
    valid_to ≥ start), running in the member's region (the offer's effective regions; None =
    everywhere) and with min_tier (raised to exclusive_tier) ≤ the member's tier. Members with
    the same region and tier share one candidate set (a *group*), so occasion offers (whose
    eligibility is per member and day: `features.occasions`) are left out, as serving leaves
    them out for a member with no occasion.
Relevant offers:
    candidates at whose partner, in whose category, the member purchased on a day when the
    offer was valid and inside the window.
Members evaluated:
    members who signed up before `start` and have at least one relevant offer.
    *Warm* members purchased anything before `start`; *cold* members did not.
Member features:
    a warm member's are given (as of `start`); a cold member is named as serving names a member
    its ranker has no vector for: `cold_member_feature_names(region, tier, days from signup
    to start)`.
Slices (each restricts members and/or candidates; metrics are recomputed within it, and a
member with no relevant offer inside a slice is left out of it):
    overall;  warm, cold;  region=<region>;
    repeat_items: candidates restricted to offers whose item the member bought before `start`;
    new_items: candidates restricted to the other offers (items new to the member);
    new_offers: candidates restricted to offers that did not exist before the window
    (valid_from ≥ start).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from itertools import chain
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from perkrank.features.columns import Columns
from perkrank.features.dataset import Dataset
from perkrank.features.eligibility import (
    eligible,
    region_mask,
    required_tier_rank,
    valid_between,
)
from perkrank.features.ids import IdMap
from perkrank.features.offer_features import offer_items
from perkrank.features.schema import LOCAL_SCOPE
from perkrank.features.vocabulary import cold_member_feature_names

RESTRICTIONS = ("all", "repeat_items", "new_items", "new_offers")
"""How a slice restricts candidates: not at all, or to one of the three candidate subsets."""


@dataclass(frozen=True)
class CandidateGroup:
    """Members of one region and tier and the candidate offers they share."""

    region: str
    tier: str
    member_rows: np.ndarray
    """Rows of `EvaluationWindow.member_ids`."""
    offer_rows: np.ndarray
    """Rows of `EvaluationWindow.offer_ids`, ascending (so ascending offer_id)."""


@dataclass(frozen=True)
class Slice:
    """A subset of members and candidates whose metrics are reported together."""

    name: str
    restriction: str
    """One of RESTRICTIONS."""
    member_rows: np.ndarray
    """Members with at least one relevant offer within the slice."""
    candidate_offers: int
    """Distinct candidate offers of those members within the slice (coverage denominator)."""


@dataclass(frozen=True)
class EvaluationWindow:
    """Everything about a window that does not depend on the model; built by `prepare_window`.

    members (rows): member_ids, member_regions, member_tiers, member_features (feature names
        at `start`), member_is_warm (any purchase before `start`).
    offers (rows, sorted by offer_id): offer_ids, offer_items (item ids), offer_item_features,
        offer_is_new (valid_from ≥ start). Only offers active during the window.
    relevant: CSR bool (members × offers), relevant candidates.
    bought_before: CSR bool (members × offers), candidates whose item the member bought
        before `start`.
    """

    start: date
    end: date
    member_ids: np.ndarray
    member_regions: np.ndarray
    member_tiers: np.ndarray
    member_features: list[list[str]]
    member_is_warm: np.ndarray
    offer_ids: np.ndarray
    offer_items: np.ndarray
    offer_item_features: list[list[str]]
    offer_is_new: np.ndarray
    groups: tuple[CandidateGroup, ...]
    relevant: sp.csr_matrix
    bought_before: sp.csr_matrix
    slices: tuple[Slice, ...] = ()
    offer_is_local: np.ndarray | None = None
    """By offer row: its partner's scope is local (None: not known)."""

    def summary(self) -> dict[str, Any]:
        """Sizes of the window, for reports."""
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "members": len(self.member_ids),
            "warm_members": int(self.member_is_warm.sum()),
            "cold_members": int((~self.member_is_warm).sum()),
            "offers": len(self.offer_ids),
            "new_offers": int(self.offer_is_new.sum()),
            "groups": len(self.groups),
            "relevant_pairs": int(self.relevant.nnz),
        }


def prepare_window(
    dataset: Dataset,
    start: date,
    end: date,
    *,
    member_features: Mapping[str, Sequence[str]],
    items_bought_before: Mapping[str, frozenset[str]],
    offer_regions: Sequence[frozenset[str] | None],
    item_features: Mapping[str, Sequence[str]],
    max_members: int | None = None,
    seed: int = 0,
) -> EvaluationWindow:
    """Candidates, relevance and slices of the window [start, end), computed once for all models.

    Parameters
    ----------
    dataset:
        The validated tables; purchases at or after `start` are used only as relevance.
    start, end:
        The window, `end` excluded.
    member_features:
        Feature names per member_id as of `start`, used for warm members; a cold member (and a
        warm one missing here) is named by `vocabulary.cold_member_feature_names`.
    items_bought_before:
        Item ids each member bought before `start` (missing or empty = a cold member).
    offer_regions:
        Effective regions per row of `dataset.offers` (None = everywhere).
    item_features:
        Feature names per item id, for every item an offer maps onto.
    max_members:
        Keep a random sample (seeded by `seed`) of this many evaluated members.
    """
    if not start < end:
        raise ValueError(f"the window must end after it starts: {start} .. {end}")
    start_ts, end_ts = pd.Timestamp(start), pd.Timestamp(end)
    first_day, last_day = _day_numbers(start_ts), _day_numbers(end_ts) - 1
    offers = _window_offers(dataset.offers, offer_regions, first_day, last_day)
    members = dataset.members.loc[
        dataset.members[Columns.signup_date] < start_ts,
        [Columns.member_id, Columns.region, Columns.tier, Columns.signup_date],
    ].reset_index(drop=True)
    member_group, group_keys = _group_rows(members)
    eligible = _eligibility(group_keys, offers, first_day, last_day)
    pairs = _relevant_pairs(dataset.purchases, members, offers, start_ts, end_ts)
    pairs = pairs[eligible[member_group[pairs[:, 0]], pairs[:, 1]]]
    kept = np.unique(pairs[:, 0])
    if max_members is not None and len(kept) > max_members:
        kept = np.sort(np.random.default_rng(seed).choice(kept, max_members, replace=False))
    new_row = np.full(len(members), -1)
    new_row[kept] = np.arange(len(kept))
    pairs = pairs[new_row[pairs[:, 0]] >= 0]
    members = members.iloc[kept].reset_index(drop=True)
    member_group = member_group[kept]
    member_ids = members[Columns.member_id].to_numpy(dtype=str)
    shape = (len(member_ids), len(offers))
    relevant = _bool_matrix(new_row[pairs[:, 0]], pairs[:, 1], shape)
    items = offers[Columns.item_id].to_numpy(dtype=str)
    bought_before = _bought_before(member_ids, items_bought_before, items, shape)
    bought_before = _keep_eligible(bought_before, eligible, member_group)
    groups = tuple(
        CandidateGroup(
            region=group_keys[group][0],
            tier=group_keys[group][1],
            member_rows=np.flatnonzero(member_group == group),
            offer_rows=np.flatnonzero(eligible[group]),
        )
        for group in np.unique(member_group)
    )
    regions = members[Columns.region].to_numpy(dtype=str)
    tiers = members[Columns.tier].to_numpy(dtype=str)
    is_warm = np.array([bool(items_bought_before.get(m)) for m in member_ids], dtype=bool)
    tenure_days = first_day - _day_numbers(members[Columns.signup_date])
    window = EvaluationWindow(
        start=start,
        end=end,
        member_ids=member_ids,
        member_regions=regions,
        member_tiers=tiers,
        member_features=[
            list(member_features[member])
            if warm and member in member_features
            else cold_member_feature_names(region, tier, days)
            for member, region, tier, warm, days in zip(
                member_ids, regions, tiers, is_warm, tenure_days.tolist(), strict=True
            )
        ],
        member_is_warm=is_warm,
        offer_ids=offers[Columns.offer_id].to_numpy(dtype=str),
        offer_items=items,
        offer_item_features=[list(item_features[item]) for item in items],
        offer_is_new=(offers["valid_from_day"] >= first_day).to_numpy(),
        groups=groups,
        relevant=relevant,
        bought_before=bought_before,
        offer_is_local=_is_local(dataset.partners, offers[Columns.partner_id]),
    )
    return _with_slices(window)


def _is_local(partners: pd.DataFrame, partner_ids: pd.Series) -> np.ndarray:
    """By offer: its partner's scope is local."""
    local = partners.loc[partners[Columns.scope] == LOCAL_SCOPE, Columns.partner_id]
    return partner_ids.isin(local).to_numpy(dtype=bool)


def _day_numbers(moments: pd.Timestamp | pd.Series) -> np.ndarray:
    """Days since 1970-01-01 of timestamps (the unit of `features.eligibility`)."""
    return np.asarray(moments, dtype="datetime64[D]").astype(np.int64)


def _window_offers(
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
        valid_from_day=_day_numbers(offers[Columns.valid_from]),
        valid_to_day=_day_numbers(offers[Columns.valid_to]),
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


def _group_rows(members: pd.DataFrame) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """Group index per member and the (region, tier) of each group."""
    codes, keys = pd.MultiIndex.from_frame(members[[Columns.region, Columns.tier]]).factorize()
    return np.asarray(codes), [tuple(key) for key in keys]


def _eligibility(
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


def _relevant_pairs(
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


def _bool_matrix(rows: np.ndarray, columns: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    matrix = sp.csr_matrix((np.ones(len(rows), dtype=bool), (rows, columns)), shape=shape)
    matrix.sum_duplicates()
    return matrix


def _bought_before(
    member_ids: np.ndarray,
    items_bought_before: Mapping[str, frozenset[str]],
    offer_item_ids: np.ndarray,
    shape: tuple[int, int],
) -> sp.csr_matrix:
    """Bool (members × offers): the offer's item is one the member bought before the window."""
    items, offer_item_index = np.unique(offer_item_ids, return_inverse=True)
    bought = [items_bought_before.get(member, frozenset()) for member in member_ids]
    rows = np.repeat(np.arange(len(member_ids)), [len(member_items) for member_items in bought])
    columns = IdMap(items).rows(chain.from_iterable(bought))
    known = columns >= 0
    member_items = _bool_matrix(rows[known], columns[known], (shape[0], len(items)))
    item_offers = _bool_matrix(
        offer_item_index, np.arange(len(offer_item_ids)), (len(items), shape[1])
    )
    return (member_items.astype(np.int32) @ item_offers.astype(np.int32)).astype(bool).tocsr()


def _keep_eligible(
    matrix: sp.csr_matrix, eligible: np.ndarray, member_group: np.ndarray
) -> sp.csr_matrix:
    pairs = matrix.tocoo()
    keep = eligible[member_group[pairs.row], pairs.col]
    return _bool_matrix(pairs.row[keep], pairs.col[keep], matrix.shape)


def _relevant_counts(window: EvaluationWindow, restriction: str) -> np.ndarray:
    """Relevant candidates per member within one restriction."""
    pairs = window.relevant.tocoo()
    if restriction == "all":
        inside = np.ones(pairs.nnz, dtype=bool)
    elif restriction == "new_offers":
        inside = window.offer_is_new[pairs.col]
    else:
        bought = np.asarray(window.bought_before[pairs.row, pairs.col]).ravel().astype(bool)
        inside = bought if restriction == "repeat_items" else ~bought
    return np.bincount(pairs.row[inside], minlength=len(window.member_ids))


def _candidate_offer_count(
    window: EvaluationWindow, restriction: str, member_rows: np.ndarray
) -> int:
    """Distinct candidate offers of `member_rows` within a restriction."""
    candidates = np.zeros(len(window.offer_ids), dtype=bool)
    in_slice = np.zeros(len(window.member_ids), dtype=bool)
    in_slice[member_rows] = True
    for group in window.groups:
        rows = group.member_rows[in_slice[group.member_rows]]
        if len(rows) == 0:
            continue
        if restriction in ("all", "new_offers"):
            candidates[group.offer_rows] = True
            continue
        bought_counts = np.asarray(window.bought_before[rows][:, group.offer_rows].sum(axis=0))[0]
        if restriction == "repeat_items":
            candidates[group.offer_rows[bought_counts > 0]] = True
        else:
            candidates[group.offer_rows[bought_counts < len(rows)]] = True
    if restriction == "new_offers":
        candidates &= window.offer_is_new
    return int(candidates.sum())


def _with_slices(window: EvaluationWindow) -> EvaluationWindow:
    """The window with its slices: overall, warm, cold, restrictions, then regions."""
    has_relevant = {
        restriction: _relevant_counts(window, restriction) > 0 for restriction in RESTRICTIONS
    }
    everyone = np.ones(len(window.member_ids), dtype=bool)
    subsets: list[tuple[str, str, np.ndarray]] = [
        ("overall", "all", everyone),
        ("warm", "all", window.member_is_warm),
        ("cold", "all", ~window.member_is_warm),
        ("repeat_items", "repeat_items", everyone),
        ("new_items", "new_items", everyone),
        ("new_offers", "new_offers", everyone),
    ]
    subsets += [
        (f"region={region}", "all", window.member_regions == region)
        for region in np.unique(window.member_regions)
    ]
    slices = []
    for name, restriction, members in subsets:
        member_rows = np.flatnonzero(members & has_relevant[restriction])
        candidates = _candidate_offer_count(window, restriction, member_rows)
        slices.append(Slice(name, restriction, member_rows, candidates))
    return replace(window, slices=tuple(slices))
