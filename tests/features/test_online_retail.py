"""The Online Retail importer writes customers' product purchases as valid contract files."""

import gzip
from pathlib import Path

import pandas as pd
import pytest

from perkrank.features.loader import DataValidationError, load_dataset
from perkrank.features.online_retail import import_online_retail, product_family, region_slug

HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
RAW_LINES = """\
536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom
536365,71053,WHITE METAL LANTERN,2,2010-12-01 08:26:00,3.39,17850.0,United Kingdom
536366,POST,POSTAGE,1,2010-12-01 09:00:00,18.00,12583.0,France
536367,85123A,WHITE HANGING HEART T-LIGHT HOLDER,4,2010-12-02 10:00:00,2.55,,United Kingdom
C536368,85123A,WHITE HANGING HEART T-LIGHT HOLDER,-2,2010-12-02 11:00:00,2.55,17850.0,United Kingdom
536369,22423,REGENCY CAKESTAND 3 TIER,1,2010-12-03 12:00:00,0.00,12583.0,France
536370,22423,REGENCY CAKESTAND 3 TIER,-5,2010-12-03 13:00:00,10.95,12583.0,France
536371,22423,REGENCY CAKESTAND 3 TIER,2,2010-12-04 14:30:00,12.75,12583.0,France
536372,M,Manual,1,2010-12-05 09:00:00,5.00,12583.0,France
536373,gift_0001_20,Dotcomgiftshop Gift Voucher £20.00,1,2010-12-05 10:00:00,17.02,12583.0,France
536374,85123a,WHITE HANGING HEART T-LIGHT HOLDR,1,2010-12-06 08:00:00,2.95,12583.0,France
C536375,71053,WHITE METAL LANTERN,-1,2010-12-06 09:00:00,3.39,14000.0,EIRE
536376,BANK CHARGES,Bank Charges,1,2010-12-06 10:00:00,15.00,14001.0,EIRE
536377,71053,WHITE METAL LANTERN,1,2010-12-06 11:00:00,3.39,12583.0,Germany
536378,85123A,WHITE HANGING HEART T-LIGHT HOLDER,1,2010-12-07 09:15:00,2.55,17850.0,United Kingdom
"""
"""One line per quirk: postage, blank customer id, cancellation, zero price, negative quantity
outside a cancellation, manual and voucher codes, a lower-case suffix with a misspelt
description, customers with only a cancellation or only bank charges, a second country."""

EXPECTED_MEMBERS = [
    ("C12583", "france", "base", "2010-12-04"),
    ("C17850", "united_kingdom", "base", "2010-12-01"),
]
EXPECTED_PURCHASES = [
    ("C17850", "2010-12-01 08:26:00", "85123A", "holder", 15.3),
    ("C17850", "2010-12-01 08:26:00", "71053", "lantern", 6.78),
    ("C12583", "2010-12-04 14:30:00", "22423", "tier", 25.5),
    ("C12583", "2010-12-06 08:00:00", "85123A", "holder", 2.95),
    ("C12583", "2010-12-06 11:00:00", "71053", "lantern", 3.39),
    ("C17850", "2010-12-07 09:15:00", "85123A", "holder", 2.55),
]
EXPECTED_PARTNERS = [
    ("22423", "REGENCY CAKESTAND 3 TIER", "federal", (), ("tier",)),
    ("71053", "WHITE METAL LANTERN", "federal", (), ("lantern",)),
    ("85123A", "WHITE HANGING HEART T-LIGHT HOLDER", "federal", (), ("holder",)),
]


def write_raw(path: Path, lines: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as file:
        file.write(HEADER + lines)
    return path


def files_of(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


@pytest.fixture
def imported(tmp_path: Path) -> tuple[Path, dict[str, int]]:
    source = write_raw(tmp_path / "raw" / "online_retail.csv.gz", RAW_LINES)
    out_dir = tmp_path / "out" / "data"
    return out_dir, import_online_retail(source, out_dir)


def test_members_are_customers_with_a_kept_purchase_in_their_main_country(imported):
    members = load_dataset(imported[0]).members

    rows = list(
        zip(
            members["member_id"],
            members["region"],
            members["tier"],
            members["signup_date"].dt.strftime("%Y-%m-%d"),
            strict=True,
        )
    )
    assert rows == EXPECTED_MEMBERS
    assert members["birth_date"].isna().all()


def test_only_product_purchases_of_known_customers_with_positive_quantity_and_price_are_kept(
    imported,
):
    purchases = load_dataset(imported[0]).purchases

    rows = list(
        zip(
            purchases["member_id"],
            purchases["ts"].dt.strftime("%Y-%m-%d %H:%M:%S"),
            purchases["partner_id"],
            purchases["category"],
            purchases["amount"].round(6),
            strict=True,
        )
    )
    assert rows == EXPECTED_PURCHASES
    assert set(purchases["channel"]) == {"web"}


def test_every_stock_code_is_a_partner_named_by_its_most_frequent_description(imported):
    partners = load_dataset(imported[0]).partners

    rows = list(
        zip(
            partners["partner_id"],
            partners["name"],
            partners["scope"],
            partners["regions"],
            partners["categories"],
            strict=True,
        )
    )
    assert rows == EXPECTED_PARTNERS


def test_one_offer_per_stock_code_runs_everywhere_over_the_whole_period(imported):
    dataset = load_dataset(imported[0])
    offers = dataset.offers

    assert list(offers["offer_id"]) == ["O22423", "O71053", "O85123A"]
    assert list(zip(offers["partner_id"], offers["category"], strict=True)) == [
        (partner_id, categories[0]) for partner_id, _, _, _, categories in EXPECTED_PARTNERS
    ]
    assert set(offers["valid_from"]) == {pd.Timestamp("2010-12-01")}
    assert set(offers["valid_to"]) == {pd.Timestamp("2010-12-07")}
    assert set(offers["min_tier"]) == {"base"}
    assert offers["regions"].map(len).eq(0).all()
    assert offers["budget"].isna().all()


def test_returned_counts_are_the_rows_of_the_written_files(imported):
    out_dir, counts = imported

    assert counts == load_dataset(out_dir).row_counts()
    assert counts == {"members": 2, "purchases": 6, "partners": 3, "offers": 3}


def test_a_malformed_quantity_fails_the_import_and_leaves_the_previous_files(imported, tmp_path):
    out_dir, _ = imported
    before = files_of(out_dir)
    broken = write_raw(
        tmp_path / "broken" / "raw.csv.gz",
        RAW_LINES + "536379,22423,REGENCY CAKESTAND 3 TIER,two,2010-12-08 10:00:00,12.75,"
        "12583.0,France\n",
    )

    with pytest.raises(ValueError):
        import_online_retail(broken, out_dir)

    assert files_of(out_dir) == before
    assert [path.name for path in out_dir.parent.iterdir()] == [out_dir.name]


def test_files_that_fail_validation_are_never_moved_into_place(imported, tmp_path):
    out_dir, _ = imported
    before = files_of(out_dir)
    out_of_range = write_raw(
        tmp_path / "ancient" / "raw.csv.gz",
        RAW_LINES + "536380,22423,REGENCY CAKESTAND 3 TIER,1,1600-01-01 10:00:00,12.75,"
        "12583.0,France\n",
    )

    with pytest.raises(DataValidationError):
        import_online_retail(out_of_range, out_dir)

    assert files_of(out_dir) == before
    assert [path.name for path in out_dir.parent.iterdir()] == [out_dir.name]


@pytest.mark.parametrize(
    ("description", "family"),
    [
        ("WHITE HANGING HEART T-LIGHT HOLDER", "holder"),
        ("PACK OF 72 RETROSPOT CAKE CASES", "case"),
        ("JUMBO BAG RED RETROSPOT", "bag"),
        ("SET OF 3 WOODEN BOXES", "box"),
        ("PINK", "pink"),
        ("", "other"),
    ],
)
def test_product_family_is_the_last_word_naming_a_thing_in_the_singular(description, family):
    assert product_family(description) == family


def test_region_slug_lowercases_and_joins_words_with_underscores():
    assert region_slug("United Kingdom") == "united_kingdom"
    assert region_slug("EIRE") == "eire"
    assert region_slug("") == "unspecified"
