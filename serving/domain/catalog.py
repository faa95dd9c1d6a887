"""The offer catalog as serving needs it: plain arrays and dicts, built once at startup.

Everything a request reads is here in numpy arrays or tuples: offer fields, validity as day
numbers, minimum tier ranks, one eligibility mask per region, and every offer's vector and
bias under the ranker and the fallback (offers the model never saw get theirs from their
partner, category and scope features). A new catalog can be built and swapped in without
touching the model. An offer that cannot be served (`offer_checks`, or a store record that
cannot be built) is left out, logged and named in `Catalog.excluded`, so it fails no request.
pandas is only used by `load_catalog`, which imports it lazily.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from perkrank.features.columns import Columns
from perkrank.features.eligibility import day_number, eligible, region_mask
from perkrank.features.ids import IdMap
from perkrank.features.occasions import MemberFacts, member_facts
from perkrank.features.schema import LOCAL_SCOPE, OCCASIONS, tier_rank
from perkrank.features.vocabulary import item_feature_names, item_id
from perkrank.mechanics_config import Occasions
from perkrank.models import scoring
from perkrank.models.bundle import Bundle
from perkrank.models.factors import Factors
from perkrank.serving.domain.offer_checks import describe, offer_problem
from perkrank.serving.domain.selection import Candidate

if TYPE_CHECKING:
    import pandas as pd

    from perkrank.features.dataset import Dataset

log = logging.getLogger(__name__)
LOGGED_EXCLUSIONS = 10
"""Left-out offers one log line names; the rest are counted."""


class Member(NamedTuple):
    """Where a member lives, their tier and signup day, as in the members file."""

    region: str
    tier: str
    signup_day: int | None = None
    """Days since 1970-01-01 (`day_number`); None: not known."""


@dataclass(frozen=True)
class Offer:
    """One offer with its partner's name and scope and its effective regions resolved."""

    offer_id: str
    partner_id: str
    partner_name: str
    scope: str
    category: str
    title: str
    reward: str
    min_tier: str
    valid_from: date
    valid_to: date
    regions: frozenset[str] | None = None
    """Where the offer applies; None: everywhere."""
    budget: int | None = None
    occasion: str | None = None
    """One of `schema.OCCASIONS`: eligible only while it applies to the member."""
    exclusive_tier: str | None = None
    """Shown only to this tier and above (the member's own tier), marked exclusive."""
    reward_cost: float = 0.0
    """What one redemption costs the program."""
    partner_funding: float = 0.0
    """What the partner pays the program per redemption."""

    @property
    def net_value(self) -> float:
        """Value to the program of one redemption: partner funding − reward cost."""
        return self.partner_funding - self.reward_cost


@dataclass(frozen=True)
class OfferVectors:
    """Every offer's vector, bias and item row under one set of factors (row -1: unseen item)."""

    vectors: np.ndarray
    biases: np.ndarray
    item_rows: np.ndarray

    @classmethod
    def build(cls, factors: Factors, offers: Sequence[Offer]) -> OfferVectors:
        """Look up each offer's item, or build it from its features when the model lacks it."""
        items = [item_id(offer.partner_id, offer.category) for offer in offers]
        features = [
            item_feature_names(offer.partner_id, offer.category, offer.scope) for offer in offers
        ]
        vectors, biases, item_rows = scoring.item_inputs(factors, items, features)
        return cls(np.ascontiguousarray(vectors), biases, item_rows)


@dataclass(frozen=True)
class Catalog:
    """The offers and members serving ranks over, in arrays indexed by offer row."""

    offers: tuple[Offer, ...]
    candidates: tuple[Candidate, ...]
    """What the store needs to know of each offer row."""
    offer_rows: IdMap
    """Offer id → row."""
    valid_from_days: np.ndarray
    valid_to_days: np.ndarray
    min_tier_ranks: np.ndarray
    exclusive_ranks: np.ndarray
    """The `exclusive_tier` rank of each offer, 0 (base) when it has none."""
    occasion_codes: np.ndarray
    """Each offer's index in `OCCASIONS`, -1 for an offer of no occasion."""
    everywhere: np.ndarray
    """Offers that apply in any region, including regions no file names."""
    region_masks: dict[str, np.ndarray]
    member_profiles: dict[str, int]
    """Member id → index into `profiles` (ints keep a million members small and GC-cheap)."""
    profiles: tuple[Member, ...]
    ranker: OfferVectors
    fallback: OfferVectors
    excluded: tuple[str, ...] = ()
    """Offers left out because they cannot be served: which one, which field and why."""
    member_facts: MemberFacts | None = None
    """What occasions read of each member (None: no member has an occasion)."""

    @cached_property
    def has_occasions(self) -> bool:
        """Some offer targets an occasion."""
        return bool((self.occasion_codes >= 0).any())

    def member(self, member_id: str) -> Member | None:
        """The member's region, tier and signup day, None for a member the files do not list."""
        index = self.member_profiles.get(member_id)
        return None if index is None else self.profiles[index]

    def eligible(
        self,
        region: str,
        tier: str,
        day: int,
        exclusive_tier: str = "base",
        occasions: frozenset[str] = frozenset(),
    ) -> np.ndarray:
        """Boolean mask of offers valid on `day`, offered in `region`, open to `tier`, exclusive
        to no tier above `exclusive_tier` and of no occasion or one of `occasions`."""
        mask = eligible(
            self.region_masks.get(region, self.everywhere),
            self.min_tier_ranks,
            self.valid_from_days,
            self.valid_to_days,
            tier=tier,
            first_day=day,
            last_day=day,
        )
        mask &= self.exclusive_ranks <= tier_rank(exclusive_tier)
        codes = [-1, *(OCCASIONS.index(occasion) for occasion in occasions)]
        return mask & np.isin(self.occasion_codes, codes)


def build_catalog(
    offers: Sequence[Offer],
    members: Mapping[str, Member],
    bundle: Bundle,
    member_facts: MemberFacts | None = None,
) -> Catalog:
    """Arrays, region masks and offer vectors for `offers`; `members` by member id."""
    profiles = tuple(sorted(set(members.values()), key=_profile_order))
    profile_index = {profile: index for index, profile in enumerate(profiles)}
    member_profiles = {member_id: profile_index[member] for member_id, member in members.items()}
    return _build(offers, member_profiles, profiles, bundle, member_facts=member_facts)


def with_offers(
    catalog: Catalog, offers: Sequence[Offer], bundle: Bundle, excluded: Sequence[str] = ()
) -> Catalog:
    """The catalog of `catalog`'s members with `offers` under `bundle`: for a newly published
    catalog or a new model (the member index is shared, not copied); `excluded` names offers
    the caller already left out."""
    return _build(
        offers, catalog.member_profiles, catalog.profiles, bundle, excluded, catalog.member_facts
    )


def _build(
    offers: Sequence[Offer],
    member_profiles: dict[str, int],
    profiles: tuple[Member, ...],
    bundle: Bundle,
    excluded: Sequence[str] = (),
    member_facts: MemberFacts | None = None,
) -> Catalog:
    offers, candidates, left_out = _servable(offers)
    regions = {profile.region for profile in profiles}
    for offer in offers:
        regions.update(offer.regions or ())
    offer_regions = [offer.regions for offer in offers]
    everywhere = np.array([offer.regions is None for offer in offers], dtype=bool)
    region_masks = {region: region_mask(offer_regions, region) for region in sorted(regions)}
    return Catalog(
        offers=offers,
        candidates=candidates,
        offer_rows=IdMap(offer.offer_id for offer in offers),
        valid_from_days=np.array([day_number(o.valid_from) for o in offers], dtype=np.int64),
        valid_to_days=np.array([day_number(o.valid_to) for o in offers], dtype=np.int64),
        min_tier_ranks=np.array([tier_rank(o.min_tier) for o in offers], dtype=np.int64),
        exclusive_ranks=np.array(
            [tier_rank(o.exclusive_tier) if o.exclusive_tier else 0 for o in offers],
            dtype=np.int64,
        ),
        occasion_codes=np.array(
            [OCCASIONS.index(o.occasion) if o.occasion else -1 for o in offers], dtype=np.int64
        ),
        everywhere=everywhere,
        region_masks=region_masks,
        member_profiles=member_profiles,
        profiles=profiles,
        ranker=OfferVectors.build(bundle.ranker, offers),
        fallback=OfferVectors.build(bundle.fallback, offers),
        excluded=(*excluded, *left_out),
        member_facts=member_facts,
    )


def _servable(
    offers: Sequence[Offer],
) -> tuple[tuple[Offer, ...], tuple[Candidate, ...], list[str]]:
    """The offers that can be served, their candidates (store records built once, here), and
    why each other offer was left out (logged)."""
    kept: list[Offer] = []
    candidates: list[Candidate] = []
    left_out: list[str] = []
    seen: set[str] = set()
    for offer in offers:
        problem = offer_problem(offer)
        if problem is None and offer.offer_id in seen:
            problem = "offer_id", "is the id of an earlier offer"
        if problem is None:
            candidate = Candidate(
                offer.offer_id,
                offer.partner_id,
                offer.category,
                offer.budget,
                offer.scope == LOCAL_SCOPE,
            )
            try:
                _ = candidate.record
            except ValueError as error:
                problem = "offer_id", str(error)
        if problem is not None:
            left_out.append(describe(offer.offer_id, *problem))
            continue
        seen.add(offer.offer_id)
        kept.append(offer)
        candidates.append(candidate)
    if left_out:
        log.warning(
            "%d offers left out of the catalog, they cannot be served: %s%s",
            len(left_out),
            "; ".join(left_out[:LOGGED_EXCLUSIONS]),
            " …" if len(left_out) > LOGGED_EXCLUSIONS else "",
        )
    return tuple(kept), tuple(candidates), left_out


def catalog_from_dataset(
    dataset: Dataset, bundle: Bundle, occasions: Occasions | None = None
) -> Catalog:
    """The catalog of a validated data set (members, purchases for the members' occasion
    facts (`occasions`' tier-upgrade settings, default ones when None), partners, offers)."""
    occasions = occasions or Occasions()
    members = dataset.members
    signup_days = members[Columns.signup_date].to_numpy(dtype="datetime64[D]").astype(np.int64)
    profiles = {
        member_id: Member(region, tier, signup_day)
        for member_id, region, tier, signup_day in zip(
            members[Columns.member_id],
            members[Columns.region],
            members[Columns.tier],
            signup_days.tolist(),
            strict=True,
        )
    }
    facts = member_facts(
        members,
        dataset.purchases,
        upgrade_share=occasions.tier_upgrade_share,
        upgrade_days=occasions.tier_upgrade_days,
    )
    return build_catalog(catalog_offers(dataset.offers, dataset.partners), profiles, bundle, facts)


def _profile_order(member: Member) -> tuple[str, str, int]:
    """Sort key of profiles (an unknown signup day first)."""
    return member.region, member.tier, -1 if member.signup_day is None else member.signup_day


def catalog_offers(table: pd.DataFrame, partners: pd.DataFrame) -> list[Offer]:
    """The offers of a validated offers table, with partner names, scopes and regions."""
    from perkrank.features.offer_features import partner_scopes, regions_of_offers

    partner_names = dict(zip(partners[Columns.partner_id], partners[Columns.name], strict=True))
    scopes = partner_scopes(partners)
    budget_column = table[Columns.budget]
    budgets = [
        None if missing else int(budget)
        for budget, missing in zip(budget_column.fillna(0), budget_column.isna(), strict=True)
    ]
    records = table.to_dict("records")
    return [
        Offer(
            offer_id=record[Columns.offer_id],
            partner_id=record[Columns.partner_id],
            partner_name=partner_names[record[Columns.partner_id]],
            scope=scopes[record[Columns.partner_id]],
            category=record[Columns.category],
            title=record[Columns.title],
            reward=record[Columns.reward],
            min_tier=record[Columns.min_tier],
            valid_from=record[Columns.valid_from].date(),
            valid_to=record[Columns.valid_to].date(),
            regions=regions,
            budget=budget,
            occasion=record.get(Columns.occasion) or None,
            exclusive_tier=record.get(Columns.exclusive_tier) or None,
            reward_cost=_amount(record.get(Columns.reward_cost)),
            partner_funding=_amount(record.get(Columns.partner_funding)),
        )
        for record, regions, budget in zip(
            records, regions_of_offers(table, partners), budgets, strict=True
        )
    ]


def _amount(value: object) -> float:
    """A value cell as a float: empty (None, NaN) is 0."""
    return 0.0 if value is None or value != value else float(value)  # NaN != NaN


def load_catalog(data_dir: Path, bundle: Bundle, occasions: Occasions | None = None) -> Catalog:
    """Read and validate the data directory, then build its catalog (raises DataValidationError)."""
    from perkrank.features.loader import load_dataset

    return catalog_from_dataset(load_dataset(data_dir), bundle, occasions)
