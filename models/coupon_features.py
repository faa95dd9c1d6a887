"""(member, offer) features of campaign coupons from `models.coupon_stage.CouponStats`, the
arrays serving holds: numpy gathers over one member's few non-zeros, only the columns a ranker
reads.

Every array describes the data dated before one cutoff (`training.coupon_stats` builds them;
serving's cutoff is the bundle's, the benchmark's each campaign's start). Features
(`FEATURES`, per member × offer):
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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

if TYPE_CHECKING:
    from perkrank.models.coupon_stage import CouponStats

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


@dataclass(frozen=True)
class Campaigns:
    """Offers grouped by campaign: what `RELATIVE` and `RANKS` read, built once per arrays so a
    request only gathers its campaigns' offers."""

    codes: np.ndarray
    """Code (0 …) of each offer's campaign."""
    sizes: np.ndarray
    """float64: offers per campaign."""
    offers: tuple[np.ndarray, ...]
    """Per campaign: its offers' rows."""

    @classmethod
    def of(cls, codes: np.ndarray) -> Campaigns:
        """The index of offers with these campaign `codes` (0 …)."""
        codes = np.asarray(codes, np.int64).ravel()
        sizes = np.bincount(codes)
        offers = np.split(np.argsort(codes, kind="stable"), np.cumsum(sizes)[:-1])
        return cls(codes, sizes.astype(np.float64), tuple(offers))

    def relative(self, values: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """`values[rows]` over their mean across each offer's campaign (`values`: one per
        offer); 0 where that mean is 0."""
        sums = np.bincount(self.codes, values, minlength=len(self.sizes))
        means = (sums / self.sizes)[self.codes[rows]]
        return np.divide(values[rows], means, out=np.zeros(len(means)), where=means > 0)

    def ranks(self, values: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Per offer of `rows`: the share of its campaign's other offers with a lower value (a
        campaign of one offer: 0); only the campaigns of `rows` are sorted."""
        codes = self.codes[rows]
        present = np.flatnonzero(np.bincount(codes, minlength=len(self.sizes)))
        if len(present) == 1:  # the usual request: one campaign's offers
            return self._ranks(values, rows, int(present[0]))
        ranks = np.empty(len(rows))
        for code in present.tolist():
            here = codes == code
            ranks[here] = self._ranks(values, rows[here], code)
        return ranks

    def _ranks(self, values: np.ndarray, rows: np.ndarray, code: int) -> np.ndarray:
        """`ranks` of `rows`, all of campaign `code`."""
        peers = np.sort(values[self.offers[code]])
        return np.searchsorted(peers, values[rows]) / max(len(peers) - 1, 1)


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


SPREADS = {
    "product_lines": ("member_products", "product_offers"),
    "product_recent": ("member_products_recent", "product_offers"),
    "category_lines": ("member_items", "item_offers"),
    "category_recent": ("member_items_recent", "item_offers"),
    "manufacturer_lines": ("member_manufacturers", "manufacturer_offers"),
    "manufacturer_recent": ("member_manufacturers_recent", "manufacturer_offers"),
    "type_lines": ("member_types", "type_offers"),
    "type_recent": ("member_types_recent", "type_offers"),
}
"""Personal lines per offer: (members × keys matrix, keys × offers matrix) of `CouponStats`."""
SHARES = {
    "category_share": "category_lines", "product_share": "product_lines",
    "manufacturer_share": "manufacturer_lines", "type_share": "type_lines",
}  # fmt: skip
"""Shares: the lines over all the member's lines."""
STATIC = {
    "coupon_popularity": "offer_popularity", "coupon_size": "offer_sizes",
    "redemption_rate": "offer_redemption_rate", "category_rate": "offer_category_rate",
}  # fmt: skip
"""Columns that are not personal: `CouponStats` arrays."""


def member_features(
    stats: CouponStats, member_row: int, offer_rows: np.ndarray, names: Sequence[str] = FEATURES
) -> np.ndarray:
    """float64 (offers × `names`) of one member (stats row; -1: unknown): only the columns
    `names` read are computed, each personal one summed over the member's few non-zeros (numpy
    gathers, no sparse products); `RELATIVE` and `RANKS` only over the campaigns of
    `offer_rows` (`Campaigns`)."""
    offer_rows = np.asarray(offer_rows)
    columns = _Columns(stats, member_row)

    def column(name: str) -> np.ndarray:
        if name in RELATIVE:
            return stats.campaigns.relative(columns[RELATIVE[name]], offer_rows)
        if name in RANKS:
            return stats.campaigns.ranks(columns[RANKS[name]], offer_rows)
        return columns[name][offer_rows]

    return np.stack([column(name) for name in names], axis=1)


class _Columns(dict[str, np.ndarray]):
    """One member's columns over every offer of the arrays, each computed when first read."""

    def __init__(self, stats: CouponStats, member_row: int) -> None:
        super().__init__()
        self.stats, self.row, self.width = stats, member_row, len(stats.offer_ids)
        known = member_row >= 0
        self.lines = max(float(stats.member_lines[member_row]), 1.0) if known else 1.0

    def __missing__(self, name: str) -> np.ndarray:
        self[name] = value = self._compute(name)
        return value

    def _compute(self, name: str) -> np.ndarray:
        stats = self.stats
        if name in STATIC:
            return getattr(stats, STATIC[name])
        if name in SHARES:
            return self[SHARES[name]] / self.lines
        if name in ("product_share_x_size", "category_share_x_size"):
            return self[name.removesuffix("_x_size")] * stats.offer_log_sizes
        if self.row < 0:
            return np.zeros(self.width)
        if name in SPREADS:
            member, covers = (getattr(stats, matrix) for matrix in SPREADS[name])
            return _spread(covers, *_row(member, self.row), self.width)
        redeemed, counts = _row(stats.member_redeemed, self.row)
        if name == "same_coupon":
            upcs = np.bincount(stats.offer_upcs[redeemed], counts, minlength=stats.upc_count)
            return upcs[stats.offer_upcs].astype(np.float64)
        if name == "past_redemptions":
            past = np.zeros(self.width)
            for offer, count in zip(redeemed, counts, strict=True):
                items = _row(stats.offer_items, offer)[0]
                shared = _spread(stats.item_offers, items, np.ones(len(items)), self.width)
                past += count * (shared > 0)
            return past
        raise KeyError(name)


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
