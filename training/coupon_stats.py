"""`models.coupon_stage.CouponStats` from the Complete Journey's coupon tables, as of a cutoff:
only purchases (`ts < cutoff`) and redemptions (`redemption_date < cutoff`) before it count,
and the exposures of campaigns starting before it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from perkrank.features.columns import Columns
from perkrank.features.complete_journey import CouponTables
from perkrank.features.ids import IdMap
from perkrank.models.coupon_stage import GROUP_OF_TYPE, HALF_LIFE_DAYS, CouponStats
from perkrank.training import coupon_evaluation as ce

OFFER_PREFIX = "C"
"""An offer id is this + the coupon key ("<campaign>-<upc>"), as the importer writes it."""


def offer_ids(index: ce.CouponIndex, rows: np.ndarray | None = None) -> np.ndarray:
    """The offer id of each coupon of `index` (or of its `rows`)."""
    keys = index.coupons.external_ids if rows is None else index.coupons.external_ids[rows]
    return np.char.add(OFFER_PREFIX, np.asarray(keys, dtype=str))


def member_ids(tables: CouponTables) -> np.ndarray:
    """Every member with a purchase line or an exposure, sorted."""
    return np.array(sorted(set(tables.purchases.member_id) | set(tables.exposures.member_id)))


def coupon_stats(tables: CouponTables, index: ce.CouponIndex, cutoff: pd.Timestamp) -> CouponStats:
    """The arrays of every member and offer as of `cutoff`."""
    members = IdMap(member_ids(tables))
    bought = tables.purchases[tables.purchases[Columns.ts] < cutoff]
    rows = members.rows(bought.member_id)
    days = (cutoff - bought[Columns.ts]).dt.total_seconds().to_numpy() / 86_400
    recent = np.exp2(-days / HALF_LIFE_DAYS)
    products, items = index.products.rows(bought.product_id), index.items.rows(bought.item_id)
    makers, kinds = index.product_manufacturers[products], index.product_types[products]

    def counts(values: np.ndarray, columns: np.ndarray, width: int) -> sp.csr_matrix:
        return sp.csr_matrix((values, (rows, columns)), shape=(len(members), width))

    ones = np.ones(len(rows))
    earlier = tables.redemptions[tables.redemptions["redemption_date"] < cutoff]
    upcs = index.coupons.external_ids.astype(str)
    upc_of = np.array([key.split("-", 1)[1] for key in upcs])
    upc_codes = IdMap(sorted(set(upc_of)))
    redeemed = index.coupons.rows(ce.coupon_key(earlier["campaign_id"], earlier["coupon_upc"]))
    redeemers = members.rows(earlier.member_id)
    known = (redeemed >= 0) & (redeemers >= 0)
    popularity = earlier.groupby("coupon_upc").size()
    campaign_of = pd.Series([key.split("-", 1)[0] for key in upcs])
    types = tables.campaigns.set_index("campaign_id")["campaign_type"]
    return CouponStats(
        member_ids=members.external_ids.astype(str),
        offer_ids=offer_ids(index),
        offer_products=index.coupon_products,
        offer_items=index.coupon_items,
        offer_upcs=upc_codes.rows(upc_of),
        offer_groups=campaign_of.map(types).map(GROUP_OF_TYPE).to_numpy(np.int8),
        offer_popularity=popularity.reindex(upc_of).fillna(0).to_numpy(np.float64),
        offer_redemption_rate=_redemption_rate(tables, earlier, cutoff, upc_of),
        offer_category_rate=_category_rate(tables, index, redeemed[redeemed >= 0], cutoff),
        member_lines=np.bincount(rows, minlength=len(members)).astype(np.float64),
        member_products=counts(ones, products, len(index.products)),
        member_products_recent=counts(recent, products, len(index.products)),
        member_items=counts(ones, items, len(index.items)),
        member_items_recent=counts(recent, items, len(index.items)),
        member_redeemed=sp.csr_matrix(
            (np.ones(int(known.sum())), (redeemers[known], redeemed[known])),
            shape=(len(members), len(index.coupons)),
        ),
        offer_manufacturers=index.coupon_manufacturers,
        offer_types=index.coupon_types,
        member_manufacturers=counts(ones, makers, len(index.manufacturers)),
        member_manufacturers_recent=counts(recent, makers, len(index.manufacturers)),
        member_types=counts(ones, kinds, len(index.types)),
        member_types_recent=counts(recent, kinds, len(index.types)),
    )


def _redemption_rate(
    tables: CouponTables, earlier: pd.DataFrame, cutoff: pd.Timestamp, upc_of: np.ndarray
) -> np.ndarray:
    """Per offer: redemptions of its UPC / exposures of campaigns starting before `cutoff`
    that offered the UPC (0 where none did)."""
    campaigns = tables.campaigns
    before = campaigns.loc[campaigns.start_date < cutoff, "campaign_id"]
    offered = tables.coupons[tables.coupons["campaign_id"].isin(before)]
    offered = offered.drop_duplicates(["campaign_id", "coupon_upc"])
    exposed = tables.exposures.groupby("campaign_id").size()
    exposures = (
        offered.assign(exposed=offered["campaign_id"].map(exposed).fillna(0))
        .groupby("coupon_upc")["exposed"]
        .sum()
        .astype(np.float64)
    )
    redeemed = earlier.groupby("coupon_upc").size().astype(np.float64)
    upcs = pd.Index(upc_of)
    return (
        redeemed.reindex(upcs).fillna(0) / np.maximum(exposures.reindex(upcs).fillna(0), 1)
    ).to_numpy(np.float64)


def _category_rate(
    tables: CouponTables, index: ce.CouponIndex, redeemed: np.ndarray, cutoff: pd.Timestamp
) -> np.ndarray:
    """Per offer, summed over its items: redemptions (`redeemed`: offer rows) of the offers
    covering the item / exposures of those of campaigns starting before `cutoff` (an offer
    counts once per item it shares; 0 where no started campaign's offer shares one)."""
    campaigns = tables.campaigns.set_index("campaign_id")
    campaign_of = pd.Series([key.split("-", 1)[0] for key in index.coupons.external_ids])
    exposed = tables.exposures.groupby("campaign_id").size()
    started = campaign_of.map(campaigns["start_date"]) < cutoff
    exposures = np.where(started, campaign_of.map(exposed).fillna(0), 0.0).astype(np.float64)
    redemptions = np.bincount(redeemed, minlength=len(index.coupons)).astype(np.float64)
    shared = index.coupon_items @ sp.csr_matrix(index.coupon_items.T)
    return (shared @ redemptions) / np.maximum(shared @ exposures, 1.0)
