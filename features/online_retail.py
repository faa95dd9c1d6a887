"""Import the UCI Online Retail transactions as perkrank's four input tables, at item level.

Mapping (one raw line = one invoice line):
    member    CustomerID, written as a float (`17850.0` → "C17850"); region = the slug of its
              Country (`United Kingdom` → "united_kingdom"), tier "base", signup_date = the day
              of its first kept purchase, no birth date.
    purchase  a kept line: ts = InvoiceDate, amount = Quantity × UnitPrice, channel "web",
              partner_id = the StockCode, category = its product family (below), so that
              `vocabulary.item_id(partner_id, category)` is one stock code.
    partner   one federal partner per stock code, named by its description, selling one category.
    offer     one offer per stock code (offer_id = "O" + stock code), base tier, everywhere,
              valid from the first to the last day of the data, so evaluation ranks products.

Product family: the last word of the description that is not a colour, size or pattern,
folded to the singular ("WHITE HANGING HEART T-LIGHT HOLDER" → "holder", "PACK OF 72 RETROSPOT
CAKE CASES" → "case", "JUMBO BAG RED RETROSPOT" → "bag"); it becomes LightFM's `category=` item
feature.

Quirks handled (a line is dropped when any applies):
    - blank CustomerID (about a quarter of the lines: guest checkouts);
    - cancellations: InvoiceNo starting with "C" (their Quantity is negative);
    - Quantity ≤ 0 outside cancellations (stock adjustments, damages) and UnitPrice ≤ 0
      (free samples, "adjust bad debt" lines on invoices starting with "A");
    - StockCodes that are not products: anything but 5 digits plus optional letters, i.e.
      POST, DOT, M, D, C2, S, B, CRUK, PADS, BANK CHARGES, AMAZONFEE, DCGS…, gift_0001_…;
    - a stock code with several descriptions (typos, later renames) is named by its most
      frequent description among kept lines (ties: alphabetical), whitespace collapsed;
    - a customer listed under several countries (8 in the data) gets the country of most of
      their kept lines (ties: alphabetical);
    - customers without any kept line (only cancellations or non-products) are not members.
Identical lines (the same product twice on one invoice) are kept: each is a purchase.
"""

import os
import re
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from perkrank.features.columns import Columns
from perkrank.features.loader import load_dataset
from perkrank.features.schema import MEMBERS, OFFERS, PARTNERS, PURCHASES

RAW_COLUMNS: tuple[str, ...] = (
    "InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice",
    "CustomerID", "Country",
)  # fmt: skip
RAW_TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
PRODUCT_CODE = r"\d{5}[A-Z]*"
"""Stock codes of products; every other code is postage, a fee, a voucher or an adjustment."""
CANCELLATION_PREFIX = "C"
MEMBER_PREFIX = "C"
OFFER_PREFIX = "O"
TIER = "base"
CHANNEL = "web"
SCOPE = "federal"
REWARD = "featured product"
UNKNOWN_REGION = "unspecified"
UNKNOWN_FAMILY = "other"
AMOUNT_DECIMALS = 4

DESCRIPTORS = """
    pink blue red green white black cream ivory gold silver purple yellow orange brown grey gray
    turquoise lilac fuschia fuchsia natural pastel multicolour multi colour colours coloured
    rose copper bronze clear aqua teal mint lavender peach beige navy tan chocolate
    small large medium mini big jumbo giant tiny cm mm metre meter
    design designs set sets pack of the and with in asst assorted vintage retrospot polkadot
    spot spotty dotty dots stripe stripes striped floral paisley glitter antique french english
    christmas london love heart hearts girl boy dolly doll
"""
DESCRIPTOR_WORDS = frozenset(DESCRIPTORS.split())
"""Words that describe a product rather than name what it is; skipped when picking its family."""


def import_online_retail(source: Path, out_dir: Path) -> dict[str, int]:
    """Write members, purchases, partners and offers CSVs from the raw file; rows per table.

    The tables are written to a staging directory next to `out_dir`, checked with
    `load_dataset`, and only then moved into `out_dir`: the four files appear together or
    not at all.
    """
    lines = kept_lines(read_raw(Path(source)))
    products = product_table(lines)
    tables = {
        MEMBERS.name: _members_table(lines),
        PURCHASES.name: _purchases_table(lines, products),
        PARTNERS.name: _partners_table(products),
        OFFERS.name: _offers_table(products, lines[Columns.ts].min(), lines[Columns.ts].max()),
    }
    return write_validated(tables, Path(out_dir))


def read_raw(source: Path) -> pd.DataFrame:
    """The raw CSV (optionally gzipped) with every cell as stripped text, blanks as ""."""
    raw = pd.read_csv(
        source, dtype=str, keep_default_na=False, usecols=list(RAW_COLUMNS), encoding="utf-8"
    )
    return raw.apply(lambda column: column.str.strip())


def kept_lines(raw: pd.DataFrame) -> pd.DataFrame:
    """Product purchases by known customers: member_id, ts, stock_code, description, amount, region.

    Lines are sorted by time (stably, so same-time lines keep their file order).
    """
    quantity = pd.to_numeric(raw["Quantity"])
    unit_price = pd.to_numeric(raw["UnitPrice"])
    stock_code = raw["StockCode"].str.upper()
    customer_number = raw["CustomerID"].str.replace(r"\.0*$", "", regex=True)
    keep = (
        (raw["CustomerID"] != "")
        & ~raw["InvoiceNo"].str.upper().str.startswith(CANCELLATION_PREFIX)
        & (quantity > 0)
        & (unit_price > 0)
        & stock_code.str.fullmatch(PRODUCT_CODE)
    )
    lines = pd.DataFrame(
        {
            Columns.member_id: MEMBER_PREFIX + customer_number[keep],
            Columns.ts: pd.to_datetime(raw.loc[keep, "InvoiceDate"], format=RAW_TIMESTAMP_FORMAT),
            "stock_code": stock_code[keep],
            "description": raw.loc[keep, "Description"].str.replace(r"\s+", " ", regex=True),
            Columns.amount: (quantity[keep] * unit_price[keep]).round(AMOUNT_DECIMALS),
            Columns.region: raw.loc[keep, "Country"].map(region_slug),
        }
    )
    return lines.sort_values(Columns.ts, kind="stable", ignore_index=True)


def region_slug(country: str) -> str:
    """A country as a region id: lower case, runs of other characters as "_"."""
    return re.sub(r"[^a-z0-9]+", "_", country.lower()).strip("_") or UNKNOWN_REGION


def product_family(description: str) -> str:
    """The coarse family of a product: the last word of its description naming a thing."""
    words = [word for word in re.findall(r"[a-z]+", description.lower()) if len(word) > 1]
    things = [word for word in words if word not in DESCRIPTOR_WORDS]
    chosen = things or words
    return _singular(chosen[-1]) if chosen else UNKNOWN_FAMILY


def _singular(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if re.search(r"(x|ch|sh|ss)es$", word):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us")) and len(word) > 3:
        return word[:-1]
    return word


def product_table(lines: pd.DataFrame) -> pd.DataFrame:
    """One row per stock code (sorted): its name (most frequent description) and family."""
    described = lines[lines["description"] != ""]
    names = _most_frequent(described, "stock_code", "description")
    codes = pd.Index(sorted(lines["stock_code"].unique()), name="stock_code")
    names = names.reindex(codes)
    names = names.fillna(pd.Series(codes, index=codes))
    families = [
        product_family(name) if name != code else UNKNOWN_FAMILY
        for code, name in zip(codes, names, strict=True)
    ]
    return pd.DataFrame(
        {"stock_code": codes, Columns.name: names.to_numpy(), Columns.category: families}
    ).reset_index(drop=True)


def _most_frequent(frame: pd.DataFrame, key: str, value: str) -> pd.Series:
    """Per `key`, the `value` on most rows (ties: the alphabetically first)."""
    counts = frame.groupby([key, value]).size().rename("rows").reset_index()
    counts = counts.sort_values([key, "rows", value], ascending=[True, False, True])
    return counts.drop_duplicates(key).set_index(key)[value]


def _members_table(lines: pd.DataFrame) -> pd.DataFrame:
    regions = _most_frequent(lines, Columns.member_id, Columns.region)
    first_purchase = lines.groupby(Columns.member_id)[Columns.ts].min()
    return pd.DataFrame(
        {
            Columns.member_id: regions.index,
            Columns.region: regions.to_numpy(),
            Columns.tier: TIER,
            Columns.birth_date: "",
            Columns.signup_date: first_purchase.reindex(regions.index)
            .dt.strftime("%Y-%m-%d")
            .to_numpy(),
        }
    )[list(MEMBERS.column_names)]


def _purchases_table(lines: pd.DataFrame, products: pd.DataFrame) -> pd.DataFrame:
    category_of = products.set_index("stock_code")[Columns.category]
    return pd.DataFrame(
        {
            Columns.member_id: lines[Columns.member_id],
            Columns.ts: lines[Columns.ts].dt.strftime(RAW_TIMESTAMP_FORMAT),
            Columns.partner_id: lines["stock_code"],
            Columns.category: lines["stock_code"].map(category_of),
            Columns.amount: lines[Columns.amount],
            Columns.channel: CHANNEL,
        }
    )[list(PURCHASES.column_names)]


def _partners_table(products: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            Columns.partner_id: products["stock_code"],
            Columns.name: products[Columns.name],
            Columns.scope: SCOPE,
            Columns.regions: "",
            Columns.categories: products[Columns.category],
        }
    )[list(PARTNERS.column_names)]


def _offers_table(
    products: pd.DataFrame, first_ts: pd.Timestamp, last_ts: pd.Timestamp
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            Columns.offer_id: OFFER_PREFIX + products["stock_code"],
            Columns.partner_id: products["stock_code"],
            Columns.category: products[Columns.category],
            Columns.title: products[Columns.name],
            Columns.regions: "",
            Columns.min_tier: TIER,
            Columns.valid_from: f"{first_ts:%Y-%m-%d}",
            Columns.valid_to: f"{last_ts:%Y-%m-%d}",
            Columns.budget: "",
            Columns.reward: REWARD,
            Columns.occasion: "",
            Columns.exclusive_tier: "",
            Columns.reward_cost: "",
            Columns.partner_funding: "",
        }
    )[list(OFFERS.column_names)]


def write_validated(tables: dict[str, pd.DataFrame], out_dir: Path) -> dict[str, int]:
    """Write the tables into a staging directory, validate them, then move them to `out_dir`."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for name, table in tables.items():
            table.to_csv(staging / f"{name}.csv", index=False)
        row_counts = load_dataset(staging).row_counts()
        out_dir.mkdir(exist_ok=True)
        for name in tables:
            os.replace(staging / f"{name}.csv", out_dir / f"{name}.csv")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return row_counts
