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
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from perkrank.features.bought_items import BoughtItems
from perkrank.features.columns import Columns
from perkrank.features.dataset import Dataset
from perkrank.features.vocabulary import cold_member_feature_names
from perkrank.training.window_tables import (
    bool_matrix,
    bought_before_matrix,
    day_numbers,
    eligibility,
    group_rows,
    is_local,
    keep_eligible,
    relevant_pairs,
    window_offers,
)

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
    first_day, last_day = day_numbers(start_ts), day_numbers(end_ts) - 1
    offers = window_offers(dataset.offers, offer_regions, first_day, last_day)
    members = dataset.members.loc[
        dataset.members[Columns.signup_date] < start_ts,
        [Columns.member_id, Columns.region, Columns.tier, Columns.signup_date],
    ].reset_index(drop=True)
    member_group, group_keys = group_rows(members)
    eligible = eligibility(group_keys, offers, first_day, last_day)
    pairs = relevant_pairs(dataset.purchases, members, offers, start_ts, end_ts)
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
    relevant = bool_matrix(new_row[pairs[:, 0]], pairs[:, 1], shape)
    items = offers[Columns.item_id].to_numpy(dtype=str)
    bought = BoughtItems.from_mapping(items_bought_before)
    bought_rows = bought.member_rows(member_ids)
    bought_before = bought_before_matrix(bought, bought_rows, items, shape)
    bought_before = keep_eligible(bought_before, eligible, member_group)
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
    is_warm = bought_rows >= 0
    tenure_days = first_day - day_numbers(members[Columns.signup_date])
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
        offer_is_local=is_local(dataset.partners, offers[Columns.partner_id]),
    )
    return _with_slices(window)


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
