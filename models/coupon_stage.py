"""The coupon ranker as every scorer runs it: (member, offer) features of campaign coupons from
arrays held in memory, and a linear ranker's logit over them. numpy and scipy.sparse only, so
serving loads and scores it; the Complete Journey benchmark scores its campaigns through the
same `CouponStage.scores`.

An offer is a campaign's coupon (offer id "C<campaign>-<upc>", as the importer writes it); it
covers products and, through them, items (department × category). Every array describes the
data dated before one cutoff (`training.coupon_stats` builds them; serving's cutoff is the
bundle's, the benchmark's each campaign's start). Features (`FEATURES`, per member × offer):
    coupon_popularity  redemptions of the offer's UPC by anyone;
    category_share     the member's purchase lines in the offer's items / all their lines;
    product_share      the same for the offer's exact products;
    past_redemptions   the member's redemptions of offers sharing an item with this one;
    coupon_size        products the offer covers (not personal);
    product_lines      the member's purchase lines of the offer's products;
    product_recent     the same, each line weighted 2^(−days before the cutoff / 30);
    category_recent    the same for the offer's items;
    same_coupon        the member's redemptions of the offer's UPC;
    redemption_rate    redemptions of the UPC / exposures of earlier campaigns offering it;
    category_rate      over the offer's items, redemptions of the offers covering them / the
                       exposures of those of campaigns already started (not personal);
    product_share_x_size, category_share_x_size   the share × log1p(coupon_size);
    manufacturer_share, type_share  the share of the member's lines from the offer's
                       manufacturers / product types (`_recent`: recency-weighted lines);
    `RELATIVE`         a base feature over its mean across the offer's campaign's offers (0
                       where that mean is 0): within a campaign, which coupon stands out;
    `RANKS`            the share of the campaign's other offers whose base feature is lower
                       (0 … 1; a campaign of one offer: 0).
A campaign's offers are every offer of the arrays with its campaign id (the offer id's
"<campaign>" part), whichever offers a request asks for.
A member the arrays do not know has no purchases and no redemptions (personal features 0).

Each offer belongs to a group (`GROUPS`, by its campaign's type: Type A campaigns mail a
retailer-chosen 16 of ~200 coupons, Type B/C every coupon), and each group has its own ranker.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from perkrank.features.ids import IdMap
from perkrank.models.linear_ranker import LinearRanker

RELATIVE = {
    "product_rel": "product_lines", "category_rel": "category_share",
    "manufacturer_rel": "manufacturer_share", "type_rel": "type_share",
    "product_recent_rel": "product_recent", "category_recent_rel": "category_recent",
    "size_rel": "coupon_size",
}  # fmt: skip
"""Campaign-relative features: the base feature / its mean over the offer's campaign's offers."""
RANKS = {"product_rank": "product_lines", "category_rank": "category_share",
         "manufacturer_rank": "manufacturer_share", "type_rank": "type_share"}  # fmt: skip
"""Campaign ranks: the share of the campaign's other offers with a lower base feature."""
FEATURES = (
    "coupon_popularity", "category_share", "product_share", "past_redemptions", "coupon_size",
    "product_lines", "product_recent", "category_recent", "same_coupon", "redemption_rate",
    "category_rate", "product_share_x_size", "category_share_x_size", "manufacturer_share",
    "manufacturer_recent", "type_share", "type_recent", *RELATIVE, *RANKS,
)  # fmt: skip
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
    def offer_campaigns(self) -> np.ndarray:
        """Code (0 …) of each offer's campaign, from its id "C<campaign>-<upc>"."""
        campaigns = [str(offer).split("-", 1)[0] for offer in self.offer_ids]
        return np.unique(np.asarray(campaigns, dtype=str), return_inverse=True)[1].ravel()


def campaign_relative(values: np.ndarray, campaigns: np.ndarray) -> np.ndarray:
    """`values` (one per offer) over their mean across each offer's campaign (`campaigns`:
    codes 0 …); 0 where that mean is 0."""
    sizes = np.bincount(campaigns).astype(np.float64)
    means = (np.bincount(campaigns, values, minlength=len(sizes)) / sizes)[campaigns]
    return np.divide(values, means, out=np.zeros(len(values)), where=means > 0)


def campaign_ranks(values: np.ndarray, campaigns: np.ndarray) -> np.ndarray:
    """Per offer: the share of its campaign's other offers with a lower value (a campaign of
    one offer: 0)."""
    sizes = np.bincount(campaigns)
    dense = np.unique(values, return_inverse=True)[1].ravel().astype(np.int64)
    keys = campaigns.astype(np.int64) * (int(dense.max(initial=0)) + 1) + dense
    lower = np.searchsorted(np.sort(keys), keys) - (np.cumsum(sizes) - sizes)[campaigns]
    return lower / np.maximum(sizes[campaigns] - 1, 1)


def feature_arrays(
    stats: CouponStats,
    member_rows: np.ndarray,
    offer_rows: np.ndarray,
    names: Sequence[str] = FEATURES,
) -> np.ndarray:
    """float64 (members × offers × `names`) for stats rows (`member_rows` -1: unknown)."""
    offer_rows = np.asarray(offer_rows)
    rows = [member_features(stats, int(row), offer_rows, names) for row in np.asarray(member_rows)]
    return np.stack(rows) if rows else np.zeros((0, len(offer_rows), len(names)))


def member_features(
    stats: CouponStats, member_row: int, offer_rows: np.ndarray, names: Sequence[str] = FEATURES
) -> np.ndarray:
    """float64 (offers × `names`) of one member (stats row; -1: unknown): each personal
    column is summed over the member's few non-zeros (numpy gathers, no sparse products)."""
    width = len(stats.offer_ids)
    personal = np.zeros((10, width))
    lines = 1.0
    if member_row >= 0:
        spreads = (
            (stats.member_products, stats.product_offers),
            (stats.member_products_recent, stats.product_offers),
            (stats.member_items, stats.item_offers),
            (stats.member_items_recent, stats.item_offers),
            (stats.member_manufacturers, stats.manufacturer_offers),
            (stats.member_manufacturers_recent, stats.manufacturer_offers),
            (stats.member_types, stats.type_offers),
            (stats.member_types_recent, stats.type_offers),
        )
        for column, (member, covers) in enumerate(spreads):
            personal[column if column < 4 else column + 2] = _spread(
                covers, *_row(member, member_row), width
            )
        redeemed, counts = _row(stats.member_redeemed, member_row)
        for offer, count in zip(redeemed, counts, strict=True):
            items = _row(stats.offer_items, offer)[0]
            personal[4] += count * (
                _spread(stats.item_offers, items, np.ones(len(items)), width) > 0
            )
        upcs = np.bincount(stats.offer_upcs[redeemed], counts, minlength=stats.upc_count)
        personal[5] = upcs[stats.offer_upcs]
        lines = max(float(stats.member_lines[member_row]), 1.0)
    product_lines, product_recent, category_lines, category_recent, past, same = personal[:6]
    maker_lines, maker_recent, type_lines, type_recent = personal[6:]
    log_size = np.log1p(stats.offer_sizes)
    columns = {
        "coupon_popularity": stats.offer_popularity,
        "category_share": category_lines / lines,
        "product_share": product_lines / lines,
        "past_redemptions": past,
        "coupon_size": stats.offer_sizes,
        "product_lines": product_lines,
        "product_recent": product_recent,
        "category_recent": category_recent,
        "same_coupon": same,
        "redemption_rate": stats.offer_redemption_rate,
        "category_rate": stats.offer_category_rate,
        "product_share_x_size": product_lines / lines * log_size,
        "category_share_x_size": category_lines / lines * log_size,
        "manufacturer_share": maker_lines / lines,
        "manufacturer_recent": maker_recent,
        "type_share": type_lines / lines,
        "type_recent": type_recent,
    }
    for name in names:
        if name in RELATIVE:
            columns[name] = campaign_relative(columns[RELATIVE[name]], stats.offer_campaigns)
        elif name in RANKS:
            columns[name] = campaign_ranks(columns[RANKS[name]], stats.offer_campaigns)
    return np.stack([columns[name][offer_rows] for name in names], axis=1)


def _row(matrix: sp.csr_matrix, row: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and values of one CSR row."""
    start, end = matrix.indptr[row], matrix.indptr[row + 1]
    return matrix.indices[start:end], matrix.data[start:end]


def _spread(matrix: sp.csr_matrix, rows: np.ndarray, weights: np.ndarray, width: int) -> np.ndarray:
    """Σ_k weights[k] · matrix[rows[k]] as a dense float64 vector of `width`."""
    starts = matrix.indptr[rows]
    lengths = matrix.indptr[np.asarray(rows) + 1] - starts
    total = int(lengths.sum())
    offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(total)
    values = np.repeat(np.asarray(weights, np.float64), lengths) * matrix.data[offsets]
    return np.bincount(matrix.indices[offsets], values, minlength=width).astype(np.float64)


@dataclass(frozen=True)
class CouponStage:
    """A ranker per offer group (over a subset of `FEATURES`, in its own order; keys:
    `GROUPS`) and the arrays they read."""

    rankers: Mapping[str, LinearRanker]
    stats: CouponStats

    def __post_init__(self) -> None:
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

    @cached_property
    def features(self) -> tuple[str, ...]:
        """The features some group's ranker reads, in `FEATURES` order."""
        used = {name for ranker in self.rankers.values() for name in ranker.feature_names}
        return tuple(name for name in FEATURES if name in used)

    @cached_property
    def columns(self) -> list[list[int]]:
        """Per group (`GROUPS` order): positions in `features` of its ranker's features."""
        return [
            [self.features.index(name) for name in self.rankers[group].feature_names]
            for group in GROUPS
        ]

    def scores(
        self, member_ids: list[str] | np.ndarray, offer_ids: list[str] | np.ndarray
    ) -> np.ndarray:
        """float64 (members × offers): the logit of the offer's group's ranker; NaN for offers
        the stage does not know."""
        offer_rows = self.offers.rows(offer_ids)
        known = np.flatnonzero(offer_rows >= 0)
        values = feature_arrays(
            self.stats, self.members.rows(member_ids), offer_rows[known], self.features
        )
        groups = self.stats.offer_groups[offer_rows[known]]
        result = np.full((len(member_ids), len(offer_rows)), np.nan)
        for position, group in enumerate(GROUPS):
            part = groups == position
            if not part.any():
                continue
            columns = self.columns[position]
            flat = values[:, part][:, :, columns].reshape(-1, len(columns))
            logits = self.rankers[group].predict(flat).reshape(len(member_ids), int(part.sum()))
            result[:, known[part]] = logits
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
