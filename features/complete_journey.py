"""Import 84.51°'s Complete Journey (R package `completejourney`) as perkrank's four tables,
plus the coupon tables its offer-redemption benchmark needs, which the contract cannot hold.

Contract mapping (`import_complete_journey`):
    member    a household ("H" + household_id) in the transaction sample or in any campaign;
              region = "store_" + the store of most of its sampled lines (ties: lowest id;
              "unspecified" without lines), tier "base", no birth date, signup_date = the first
              day in the raw files (campaign 24 starts 2016-11-14) for every household.
    purchase  a sampled transaction line whose product is in `products`: ts = its local time
              (America/New_York) written without offset, so its date is the campaign calendar's
              date; amount = sales_value; channel "store"; item = department × category.
    partner   one federal partner per department (`partner_id` = slug of the department),
              selling the categories of its products.
    item      `vocabulary.item_id(department slug, product_category)`; an empty category is
              "UNKNOWN".
    offer     one per (campaign, coupon_upc): offer_id "C<campaign>-<upc>", valid between the
              campaign's dates, base tier, everywhere; partner and category = those of most of
              its products (ties: alphabetical). This is lossy: a coupon covers 1 … 14,477
              products in 1 … 84 categories, and an offer has one item.

Why the benchmark does not read offers from the contract: an offer names one item and the
contract has no exposure or redemption table. `coupon_tables` therefore builds, from the raw
files, the evaluation tables: campaigns (type, dates), coupon → product lines, exposures
(household × campaign) and redemptions (duplicates dropped).
"""

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from perkrank.features.columns import Columns
from perkrank.features.online_retail import write_validated
from perkrank.features.schema import MEMBERS, OFFERS, PARTNERS, PURCHASES
from perkrank.features.vocabulary import item_id

MEMBER_PREFIX = "H"
STORE_PREFIX = "store_"
UNKNOWN_REGION = "unspecified"
UNKNOWN_CATEGORY = "UNKNOWN"
TIER = "base"
CHANNEL = "store"
SCOPE = "federal"
REWARD = "coupon"
TS_FORMAT = "%Y-%m-%d %H:%M:%S"
RAW_FILES = {
    "campaign_descriptions": "campaign_descriptions.csv",
    "campaigns": "campaigns.csv",
    "coupons": "coupons.csv.gz",
    "coupon_redemptions": "coupon_redemptions.csv",
    "products": "products.csv.gz",
    "transactions": "transactions_sample.csv.gz",
}
"""Raw tables read from the source directory (demographics and promotions are not used)."""


@dataclass(frozen=True)
class CouponTables:
    """The benchmark's evaluation tables, built from the raw files (ids as strings).

    campaigns:   campaign_id, campaign_type ("Type A/B/C"), start_date, end_date (Timestamps).
    coupons:     campaign_id, coupon_upc, product_id, item_id (one row per distinct product).
    exposures:   campaign_id, member_id: the campaigns each household received.
    redemptions: campaign_id, member_id, coupon_upc, redemption_date (first redemption only).
    purchases:   member_id, ts, product_id, item_id: the kept transaction lines.
    products:    product_id, manufacturer ("M" + manufacturer_id), product_type (item_id +
                 "|" + product_type): every known product.
    """

    campaigns: pd.DataFrame
    coupons: pd.DataFrame
    exposures: pd.DataFrame
    redemptions: pd.DataFrame
    purchases: pd.DataFrame
    products: pd.DataFrame


def missing_raw_files(source: Path) -> list[str]:
    """The names of `RAW_FILES` that `source` lacks."""
    return [name for name in RAW_FILES.values() if not (Path(source) / name).is_file()]


def read_raw(source: Path) -> dict[str, pd.DataFrame]:
    """Each raw table with every cell as stripped text, blanks as ""."""
    tables = {}
    for name, file_name in RAW_FILES.items():
        table = pd.read_csv(Path(source) / file_name, dtype=str, keep_default_na=False)
        tables[name] = table.apply(lambda column: column.str.strip())
    return tables


def department_slug(department: str) -> str:
    """A department as a partner id: lower case, runs of other characters as "_"."""
    return re.sub(r"[^a-z0-9]+", "_", department.lower()).strip("_") or UNKNOWN_CATEGORY.lower()


def product_items(products: pd.DataFrame) -> pd.DataFrame:
    """product_id, partner_id (department slug), category and item_id of every product."""
    partner = products["department"].map(department_slug)
    category = products["product_category"].replace("", UNKNOWN_CATEGORY)
    return pd.DataFrame(
        {
            "product_id": products["product_id"],
            Columns.partner_id: partner,
            Columns.category: category,
            Columns.name: products["department"],
            Columns.item_id: [item_id(p, c) for p, c in zip(partner, category, strict=True)],
        }
    )


def coupon_tables(raw: dict[str, pd.DataFrame]) -> CouponTables:
    """The evaluation tables of `CouponTables` from the raw tables."""
    items = product_items(raw["products"]).set_index("product_id")
    campaigns = raw["campaign_descriptions"].assign(
        start_date=lambda frame: pd.to_datetime(frame["start_date"]),
        end_date=lambda frame: pd.to_datetime(frame["end_date"]),
    )
    coupons = raw["coupons"].drop_duplicates(["campaign_id", "coupon_upc", "product_id"])
    coupons = coupons[coupons["product_id"].isin(items.index)]
    coupons = coupons.assign(item_id=coupons["product_id"].map(items[Columns.item_id]))
    redemptions = raw["coupon_redemptions"].sort_values("redemption_date", kind="stable")
    redemptions = redemptions.drop_duplicates(["campaign_id", "household_id", "coupon_upc"])
    return CouponTables(
        campaigns=campaigns.reset_index(drop=True),
        coupons=coupons[["campaign_id", "coupon_upc", "product_id", "item_id"]].reset_index(
            drop=True
        ),
        exposures=pd.DataFrame(
            {
                "campaign_id": raw["campaigns"]["campaign_id"],
                Columns.member_id: MEMBER_PREFIX + raw["campaigns"]["household_id"],
            }
        ).drop_duplicates(ignore_index=True),
        redemptions=pd.DataFrame(
            {
                "campaign_id": redemptions["campaign_id"],
                Columns.member_id: MEMBER_PREFIX + redemptions["household_id"],
                "coupon_upc": redemptions["coupon_upc"],
                "redemption_date": pd.to_datetime(redemptions["redemption_date"]),
            }
        ).reset_index(drop=True),
        purchases=_kept_lines(raw, items),
        products=pd.DataFrame(
            {
                "product_id": raw["products"]["product_id"].to_numpy(),
                "manufacturer": ("M" + raw["products"]["manufacturer_id"]).to_numpy(),
                "product_type": (
                    items[Columns.item_id] + "|" + raw["products"]["product_type"].to_numpy()
                ).to_numpy(),
            }
        ),
    )


def _kept_lines(raw: dict[str, pd.DataFrame], items: pd.DataFrame) -> pd.DataFrame:
    """Transaction lines whose product is known, sorted by local time (stably)."""
    lines = raw["transactions"]
    lines = lines[lines["product_id"].isin(items.index)]
    local = pd.to_datetime(lines["transaction_timestamp"].str.slice(0, 19), format="ISO8601")
    kept = pd.DataFrame(
        {
            Columns.member_id: MEMBER_PREFIX + lines["household_id"],
            Columns.ts: local,
            "product_id": lines["product_id"],
            Columns.item_id: lines["product_id"].map(items[Columns.item_id]),
            Columns.partner_id: lines["product_id"].map(items[Columns.partner_id]),
            Columns.category: lines["product_id"].map(items[Columns.category]),
            Columns.amount: pd.to_numeric(lines["sales_value"]),
            "store_id": lines["store_id"],
        }
    )
    return kept.sort_values(Columns.ts, kind="stable", ignore_index=True)


def import_complete_journey(source: Path, out_dir: Path) -> dict[str, int]:
    """Write members, purchases, partners and offers CSVs from the raw files; rows per table.

    Written to a staging directory next to `out_dir`, checked with `load_dataset`, then moved:
    the four files appear together or not at all.
    """
    raw = read_raw(Path(source))
    tables = coupon_tables(raw)
    items = product_items(raw["products"])
    first_day = min(tables.campaigns["start_date"].min(), tables.purchases[Columns.ts].min())
    frames = {
        MEMBERS.name: _members_table(tables, first_day),
        PURCHASES.name: _purchases_table(tables.purchases),
        PARTNERS.name: _partners_table(items),
        OFFERS.name: _offers_table(tables),
    }
    return write_validated(frames, Path(out_dir))


def _members_table(tables: CouponTables, first_day: pd.Timestamp) -> pd.DataFrame:
    lines = tables.purchases
    counts = lines.groupby([Columns.member_id, "store_id"]).size().rename("lines").reset_index()
    counts["store"] = pd.to_numeric(counts["store_id"])
    order = [Columns.member_id, "lines", "store"]
    counts = counts.sort_values(order, ascending=[True, False, True])
    stores = counts.drop_duplicates(Columns.member_id).set_index(Columns.member_id)["store_id"]
    members = sorted(set(lines[Columns.member_id]) | set(tables.exposures[Columns.member_id]))
    regions = (STORE_PREFIX + stores).reindex(members).fillna(UNKNOWN_REGION)
    return pd.DataFrame(
        {
            Columns.member_id: members,
            Columns.region: regions.to_numpy(),
            Columns.tier: TIER,
            Columns.birth_date: "",
            Columns.signup_date: f"{first_day:%Y-%m-%d}",
        }
    )[list(MEMBERS.column_names)]


def _purchases_table(lines: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            Columns.member_id: lines[Columns.member_id],
            Columns.ts: lines[Columns.ts].dt.strftime(TS_FORMAT),
            Columns.partner_id: lines[Columns.partner_id],
            Columns.category: lines[Columns.category],
            Columns.amount: lines[Columns.amount],
            Columns.channel: CHANNEL,
        }
    )[list(PURCHASES.column_names)]


def _partners_table(items: pd.DataFrame) -> pd.DataFrame:
    names = _most_frequent(items, Columns.partner_id, Columns.name)
    categories = items.groupby(Columns.partner_id)[Columns.category].agg(
        lambda values: ";".join(sorted(set(values)))
    )
    return pd.DataFrame(
        {
            Columns.partner_id: names.index,
            Columns.name: names.to_numpy(),
            Columns.scope: SCOPE,
            Columns.regions: "",
            Columns.categories: categories.reindex(names.index).to_numpy(),
        }
    )[list(PARTNERS.column_names)]


def _offers_table(tables: CouponTables) -> pd.DataFrame:
    coupons = tables.coupons
    coupons = coupons.assign(key=coupons["campaign_id"] + "-" + coupons["coupon_upc"])
    main_item = _most_frequent(coupons, "key", Columns.item_id)
    products = coupons.groupby("key")["product_id"].nunique().reindex(main_item.index)
    first = coupons.drop_duplicates("key").set_index("key").reindex(main_item.index)
    dates = tables.campaigns.set_index("campaign_id").reindex(first["campaign_id"])
    partner_category = main_item.str.split("|", n=1, expand=True)
    return pd.DataFrame(
        {
            Columns.offer_id: "C" + main_item.index,
            Columns.partner_id: partner_category[0].to_numpy(),
            Columns.category: partner_category[1].to_numpy(),
            Columns.title: [
                f"coupon {upc} ({count} products)"
                for upc, count in zip(first["coupon_upc"], products, strict=True)
            ],
            Columns.regions: "",
            Columns.min_tier: TIER,
            Columns.valid_from: dates["start_date"].dt.strftime("%Y-%m-%d").to_numpy(),
            Columns.valid_to: dates["end_date"].dt.strftime("%Y-%m-%d").to_numpy(),
            Columns.budget: "",
            Columns.reward: REWARD,
            Columns.occasion: "",
            Columns.exclusive_tier: "",
            Columns.reward_cost: "",
            Columns.partner_funding: "",
        }
    )[list(OFFERS.column_names)]


def _most_frequent(frame: pd.DataFrame, key: str, value: str) -> pd.Series:
    """Per `key` (sorted), the `value` on most rows (ties: the alphabetically first)."""
    counts = frame.groupby([key, value]).size().rename("rows").reset_index()
    counts = counts.sort_values([key, "rows", value], ascending=[True, False, True])
    return counts.drop_duplicates(key).set_index(key)[value]
