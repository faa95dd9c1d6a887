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
    redemption_rate    redemptions of the UPC / exposures of earlier campaigns offering it.
A member the arrays do not know has no purchases and no redemptions (personal features 0).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from perkrank.features.ids import IdMap
from perkrank.models.linear_ranker import LinearRanker

FEATURES = (
    "coupon_popularity", "category_share", "product_share", "past_redemptions", "coupon_size",
    "product_lines", "product_recent", "category_recent", "same_coupon", "redemption_rate",
)  # fmt: skip
HALF_LIFE_DAYS = 30.0
CANDIDATE_OFFSET = 1e6
"""Added to the logits of offers the stage knows, so they rank above the others' scores."""
RANKER_FILE, STATS_FILE = "ranker.json", "coupon_stats.npz"
MATRICES = (
    "offer_products", "offer_items", "member_products", "member_products_recent",
    "member_items", "member_items_recent", "member_redeemed",
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
    offer_popularity: np.ndarray
    offer_redemption_rate: np.ndarray
    member_lines: np.ndarray
    member_products: sp.csr_matrix
    """Members × products: purchase lines (`_recent`: recency-weighted)."""
    member_products_recent: sp.csr_matrix
    member_items: sp.csr_matrix
    member_items_recent: sp.csr_matrix
    member_redeemed: sp.csr_matrix
    """Members × offers: redemptions."""


def feature_arrays(
    stats: CouponStats, member_rows: np.ndarray, offer_rows: np.ndarray
) -> np.ndarray:
    """float64 (members × offers × `FEATURES`) for stats rows (`member_rows` -1: unknown)."""
    member_rows, offer_rows = np.asarray(member_rows), np.asarray(offer_rows)
    known = (member_rows >= 0).astype(np.float64)[:, np.newaxis]
    rows = np.maximum(member_rows, 0)
    products, items = stats.offer_products[offer_rows], stats.offer_items[offer_rows]

    def per_offer(matrix: sp.csr_matrix, covers: sp.csr_matrix) -> np.ndarray:
        return (matrix[rows] @ covers.T).toarray() * known

    product_lines = per_offer(stats.member_products, products)
    category_lines = per_offer(stats.member_items, items)
    lines = np.maximum(stats.member_lines[rows], 1.0)[:, np.newaxis]
    redeemed = stats.member_redeemed[rows]
    overlap = (stats.offer_items @ items.T).toarray() > 0
    same_upc = stats.offer_upcs[:, np.newaxis] == stats.offer_upcs[offer_rows][np.newaxis]
    ones = np.ones((len(rows), 1))
    columns = {
        "coupon_popularity": ones * stats.offer_popularity[offer_rows],
        "category_share": category_lines / lines,
        "product_share": product_lines / lines,
        "past_redemptions": (redeemed @ overlap.astype(np.float64)) * known,
        "coupon_size": ones * np.asarray(products.sum(axis=1), dtype=np.float64).ravel(),
        "product_lines": product_lines,
        "product_recent": per_offer(stats.member_products_recent, products),
        "category_recent": per_offer(stats.member_items_recent, items),
        "same_coupon": (redeemed @ same_upc.astype(np.float64)) * known,
        "redemption_rate": ones * stats.offer_redemption_rate[offer_rows],
    }
    return np.stack([np.asarray(columns[name]) for name in FEATURES], axis=2)


@dataclass(frozen=True)
class CouponStage:
    """The ranker (over a subset of `FEATURES`, in its own order) and the arrays it reads."""

    ranker: LinearRanker
    stats: CouponStats

    def __post_init__(self) -> None:
        unknown = set(self.ranker.feature_names) - set(FEATURES)
        if unknown:
            raise ValueError(f"the coupon ranker reads unknown features: {sorted(unknown)}")

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
    def columns(self) -> list[int]:
        """Positions in `FEATURES` of the ranker's features."""
        return [FEATURES.index(name) for name in self.ranker.feature_names]

    def scores(
        self, member_ids: list[str] | np.ndarray, offer_ids: list[str] | np.ndarray
    ) -> np.ndarray:
        """float64 (members × offers): the ranker's logit; NaN for offers the stage does not
        know."""
        offer_rows = self.offers.rows(offer_ids)
        known = offer_rows >= 0
        values = feature_arrays(self.stats, self.members.rows(member_ids), offer_rows[known])
        result = np.full((len(member_ids), len(offer_rows)), np.nan)
        flat = values[:, :, self.columns].reshape(-1, len(self.columns))
        result[:, known] = self.ranker.predict(flat).reshape(len(member_ids), int(known.sum()))
        return result

    def member_scores(self, member_id: str, offer_ids: list[str], other: np.ndarray) -> np.ndarray:
        """The order serving uses: offers the stage knows by `CANDIDATE_OFFSET` + the logit,
        the rest by `other` (their previous scores)."""
        logits = self.scores([member_id], offer_ids)[0]
        return np.where(np.isnan(logits), np.asarray(other, np.float64), CANDIDATE_OFFSET + logits)


def save_coupon_stage(stage: CouponStage, directory: Path) -> Path:
    """Write `stage` into `directory` (created): the ranker as JSON, the arrays as npz."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / RANKER_FILE).write_text(stage.ranker.to_json())
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
    return CouponStage(LinearRanker.from_json((directory / RANKER_FILE).read_text()), stats)
