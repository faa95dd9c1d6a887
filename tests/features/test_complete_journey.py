"""The Complete Journey importer writes households' sampled purchases as valid contract files
and builds the coupon tables from the raw files."""

from pathlib import Path

import pandas as pd

from perkrank.features.complete_journey import (
    coupon_tables,
    department_slug,
    import_complete_journey,
    read_raw,
)
from perkrank.features.loader import load_dataset
from tests.features.complete_journey_raw import write_raw


def test_import_writes_the_four_tables(tmp_path: Path) -> None:
    rows = import_complete_journey(write_raw(tmp_path / "raw"), tmp_path / "data")
    assert rows == {"members": 3, "purchases": 3, "partners": 3, "offers": 4}
    dataset = load_dataset(tmp_path / "data")
    members = dataset.members
    assert members["member_id"].tolist() == ["H10", "H20", "H30"]
    assert members["region"].tolist() == ["store_7", "unspecified", "unspecified"]
    assert (members["signup_date"] == pd.Timestamp("2017-01-05")).all()
    purchases = dataset.purchases
    assert purchases["ts"].tolist() == [
        pd.Timestamp("2017-01-05 23:30:00"),
        pd.Timestamp("2017-01-12 10:00:00"),
        pd.Timestamp("2017-02-20 10:00:00"),
    ]
    assert purchases["partner_id"].tolist() == ["grocery", "meat", "grocery"]
    assert purchases["category"].tolist() == ["BAG SNACKS", "BEEF", "BAG SNACKS"]
    assert purchases["amount"].tolist() == [2.5, 8.0, 1.0]
    partners = dataset.partners
    assert partners["partner_id"].tolist() == ["drug_gm", "grocery", "meat"]
    assert partners["name"].tolist() == ["DRUG GM", "GROCERY", "MEAT"]
    assert partners["categories"].tolist() == [("UNKNOWN",), ("BAG SNACKS",), ("BEEF",)]
    offers = dataset.offers
    assert offers["offer_id"].tolist() == ["C1-111", "C1-222", "C2-111", "C2-333"]
    assert offers["partner_id"].tolist() == ["grocery", "meat", "grocery", "drug_gm"]
    assert offers["title"].tolist() == [
        "coupon 111 (2 products)",
        "coupon 222 (1 products)",
        "coupon 111 (1 products)",
        "coupon 333 (1 products)",
    ]
    assert offers["valid_from"].dt.strftime("%Y-%m-%d").tolist() == [
        "2017-01-10", "2017-01-10", "2017-03-01", "2017-03-01",
    ]  # fmt: skip
    assert offers["valid_to"].dt.strftime("%Y-%m-%d").tolist() == [
        "2017-02-10", "2017-02-10", "2017-04-01", "2017-04-01",
    ]  # fmt: skip


def test_coupon_tables_drop_duplicates_and_unknown_products(tmp_path: Path) -> None:
    tables = coupon_tables(read_raw(write_raw(tmp_path / "raw")))
    assert tables.coupons.values.tolist() == [
        ["1", "111", "100", "grocery|BAG SNACKS"],
        ["1", "111", "101", "grocery|BAG SNACKS"],
        ["1", "222", "300", "meat|BEEF"],
        ["2", "111", "100", "grocery|BAG SNACKS"],
        ["2", "333", "200", "drug_gm|UNKNOWN"],
    ]
    assert tables.exposures.values.tolist() == [
        ["1", "H10"], ["1", "H20"], ["2", "H10"], ["2", "H30"],
    ]  # fmt: skip
    assert tables.redemptions[["campaign_id", "member_id", "coupon_upc"]].values.tolist() == [
        ["1", "H10", "111"],
        ["2", "H30", "333"],
    ]
    assert tables.redemptions["redemption_date"].tolist() == [
        pd.Timestamp("2017-01-20"),
        pd.Timestamp("2017-03-05"),
    ]
    assert tables.purchases["product_id"].tolist() == ["100", "300", "101"]


def test_department_slug() -> None:
    assert department_slug("DRUG GM") == "drug_gm"
    assert department_slug("ELECT &PLUMBING") == "elect_plumbing"
