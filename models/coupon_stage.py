"""The coupon ranker as every scorer runs it: (member, offer) features of campaign coupons from
arrays held in memory, and a linear ranker's logit over them. numpy and scipy.sparse only, so
serving loads and scores it; the Complete Journey benchmark scores its campaigns through the
same `CouponStage.scores`.

An offer is a campaign's coupon (offer id "C<campaign>-<upc>", as the importer writes it); it
covers products and, through them, items (department × category). Every array describes the
data dated before one cutoff (`training.coupon_stats` builds them; serving's cutoff is the
bundle's, the benchmark's each campaign's start); `models.coupon_features` computes the
features (`FEATURES`) from them.

Each offer belongs to a group (`GROUPS`, by its campaign's type: Type A campaigns mail a
retailer-chosen 16 of ~200 coupons, Type B/C every coupon), and each group has its own ranker.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from perkrank.features.ids import IdMap
from perkrank.models.coupon_features import FEATURES, Campaigns, feature_arrays
from perkrank.models.linear_ranker import LinearRanker

GROUPS = ("Type A", "Type B/C")
"""Offer groups, each scored by its own ranker; `CouponStats.offer_groups` holds positions."""
GROUP_OF_TYPE = {"Type A": 0, "Type B": 1, "Type C": 1}
HALF_LIFE_DAYS = 30.0
CANDIDATE_OFFSET = 1e6
"""Added to the logits of offers the stage knows, so they rank above the others' scores."""
RANKER_FILE, STATS_FILE = "rankers.json", "coupon_stats.npz"
MATRICES = (
    "offer_products", "offer_items", "member_products", "member_products_recent",
    "member_items", "member_items_recent", "member_redeemed", "offer_manufacturers",
    "offer_types", "member_manufacturers", "member_manufacturers_recent", "member_types",
    "member_types_recent",
)  # fmt: skip


@dataclass(frozen=True)
class CouponStats:
    """What the features read, as of one cutoff (see the module docstring)."""

    member_ids: np.ndarray
    offer_ids: np.ndarray
    offer_products: sp.csr_matrix
    """Offers × products, 1 where the offer covers the product."""
    offer_items: sp.csr_matrix
    """Offers × items, 1 where the offer covers a product of the item."""
    offer_upcs: np.ndarray
    """int code of each offer's UPC (the same UPC recurs across campaigns)."""
    offer_groups: np.ndarray
    """Position in `GROUPS` of each offer."""
    offer_popularity: np.ndarray
    offer_redemption_rate: np.ndarray
    offer_category_rate: np.ndarray
    member_lines: np.ndarray
    member_products: sp.csr_matrix
    """Members × products: purchase lines (`_recent`: recency-weighted)."""
    member_products_recent: sp.csr_matrix
    member_items: sp.csr_matrix
    member_items_recent: sp.csr_matrix
    member_redeemed: sp.csr_matrix
    """Members × offers: redemptions."""
    offer_manufacturers: sp.csr_matrix
    """Offers × manufacturers (`offer_types`: × product types), 1 where it covers a product."""
    offer_types: sp.csr_matrix
    member_manufacturers: sp.csr_matrix
    """Members × manufacturers (× product types): purchase lines (`_recent` as above)."""
    member_manufacturers_recent: sp.csr_matrix
    member_types: sp.csr_matrix
    member_types_recent: sp.csr_matrix

    @cached_property
    def product_offers(self) -> sp.csr_matrix:
        """Products × offers: `offer_products` transposed (a product's offers are a row)."""
        return sp.csr_matrix(self.offer_products.T)

    @cached_property
    def item_offers(self) -> sp.csr_matrix:
        """Items × offers: `offer_items` transposed."""
        return sp.csr_matrix(self.offer_items.T)

    @cached_property
    def manufacturer_offers(self) -> sp.csr_matrix:
        return sp.csr_matrix(self.offer_manufacturers.T)

    @cached_property
    def type_offers(self) -> sp.csr_matrix:
        return sp.csr_matrix(self.offer_types.T)

    @cached_property
    def offer_sizes(self) -> np.ndarray:
        """Products each offer covers."""
        return np.diff(self.offer_products.indptr).astype(np.float64)

    @cached_property
    def upc_count(self) -> int:
        return int(self.offer_upcs.max(initial=-1)) + 1

    @cached_property
    def offer_log_sizes(self) -> np.ndarray:
        return np.log1p(self.offer_sizes)

    @cached_property
    def campaigns(self) -> Campaigns:
        """Each offer's campaign, indexed once (`CouponStage` builds it when it is made)."""
        campaigns = [str(offer).split("-", 1)[0] for offer in self.offer_ids]
        return Campaigns.of(np.unique(np.asarray(campaigns, dtype=str), return_inverse=True)[1])


@dataclass(frozen=True)
class CouponStage:
    """A ranker per offer group (over a subset of `FEATURES`, in its own order; keys:
    `GROUPS`) and the arrays they read."""

    rankers: Mapping[str, LinearRanker]
    stats: CouponStats

    def __post_init__(self) -> None:
        self.stats.campaigns  # noqa: B018 (index the campaigns once, not on the first request)
        if set(self.rankers) != set(GROUPS):
            raise ValueError(f"the coupon stage needs a ranker per group {GROUPS}")
        for group, ranker in self.rankers.items():
            unknown = set(ranker.feature_names) - set(FEATURES)
            if unknown:
                raise ValueError(f"the {group} ranker reads unknown features: {sorted(unknown)}")

    @cached_property
    def members(self) -> IdMap:
        return IdMap(self.stats.member_ids)

    @cached_property
    def offers(self) -> IdMap:
        return IdMap(self.stats.offer_ids)

    def member_row(self, member_id: str) -> int | None:
        """The member's row in the arrays (None: unknown)."""
        return self.members.get(member_id)

    def scores(
        self, member_ids: list[str] | np.ndarray, offer_ids: list[str] | np.ndarray
    ) -> np.ndarray:
        """float64 (members × offers): the logit of the offer's group's ranker, over the
        features that ranker reads only; NaN for offers the stage does not know."""
        offer_rows, member_rows = self.offers.rows(offer_ids), self.members.rows(member_ids)
        groups = np.where(offer_rows >= 0, self.stats.offer_groups[offer_rows], -1)
        result = np.full((len(member_ids), len(offer_rows)), np.nan)
        for position, group in enumerate(GROUPS):
            part = np.flatnonzero(groups == position)
            if not len(part):
                continue
            ranker = self.rankers[group]
            names = ranker.feature_names
            values = feature_arrays(self.stats, member_rows, offer_rows[part], names)
            logits = ranker.predict(values.reshape(-1, len(names)))
            result[:, part] = logits.reshape(len(member_ids), len(part))
        return result

    def member_scores(self, member_id: str, offer_ids: list[str], other: np.ndarray) -> np.ndarray:
        """The order serving uses: offers the stage knows by `CANDIDATE_OFFSET` + the logit,
        the rest by `other` (their previous scores)."""
        return self.stage_scores(member_id, offer_ids, other)[0]

    def stage_scores(
        self, member_id: str, offer_ids: list[str], other: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """`member_scores`, and the positions of the offers the stage knows (ascending)."""
        logits = self.scores([member_id], offer_ids)[0]
        known = ~np.isnan(logits)
        scores = np.where(known, CANDIDATE_OFFSET + logits, np.asarray(other, np.float64))
        return scores, np.flatnonzero(known)


def save_coupon_stage(stage: CouponStage, directory: Path) -> Path:
    """Write `stage` into `directory` (created): the ranker as JSON, the arrays as npz."""
    directory.mkdir(parents=True, exist_ok=True)
    rankers = {group: json.loads(ranker.to_json()) for group, ranker in stage.rankers.items()}
    (directory / RANKER_FILE).write_text(json.dumps(rankers, indent=1))
    arrays = {}
    for field in dataclasses.fields(CouponStats):
        value = getattr(stage.stats, field.name)
        if field.name in MATRICES:
            matrix = sp.csr_matrix(value)
            arrays |= {
                f"{field.name}.data": matrix.data,
                f"{field.name}.indices": matrix.indices,
                f"{field.name}.indptr": matrix.indptr,
                f"{field.name}.shape": np.asarray(matrix.shape),
            }
        else:
            arrays[field.name] = np.asarray(value)
    with open(directory / STATS_FILE, "wb") as file:
        np.savez(file, **arrays)
    return directory


def load_coupon_stage(directory: Path) -> CouponStage:
    """A stage written by `save_coupon_stage` (ValueError naming the file if it is not one)."""
    path = directory / STATS_FILE
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    try:
        for name in MATRICES:
            parts = [arrays.pop(f"{name}.{part}") for part in ("data", "indices", "indptr")]
            arrays[name] = sp.csr_matrix(tuple(parts), shape=tuple(arrays.pop(f"{name}.shape")))
        stats = CouponStats(**arrays)
    except (KeyError, TypeError) as error:
        raise ValueError(f"{path}: not coupon statistics: {error}") from error
    rankers = json.loads((directory / RANKER_FILE).read_text())
    return CouponStage(
        {group: LinearRanker.from_json(json.dumps(ranker)) for group, ranker in rankers.items()},
        stats,
    )
