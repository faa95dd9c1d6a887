"""Shared feature-test data: a small hand-written data set that meets the data contract."""

from collections.abc import Callable
from pathlib import Path

import pytest

VALID_TABLES: dict[str, str] = {
    "members": """\
member_id,region,tier,birth_date,signup_date
m1,north,gold,1980-05-17,2024-01-10
m2,south,base,,2025-02-01
m3,north,silver,1990-12-01,2025-03-15
""",
    "purchases": """\
member_id,ts,partner_id,category,amount,channel
m1,2025-06-01 10:15:00,P1,Grocery,23.50,store
m1,2025-06-03T08:00:00+02:00,P2,Beauty,40,app
m2,2025-06-04 12:00:00,P1,Fuel,61.2,web
m3,2025-06-05,P3,Travel,310,app
""",
    "partners": """\
partner_id,name,scope,regions,categories
P1,"FreshMart, Fuel & More",federal,,Grocery;Fuel
P2,Nordic Spa,local,north; east,Beauty
P3,SkyTrips,federal,,Travel
""",
    "offers": """\
offer_id,partner_id,category,title,regions,min_tier,valid_from,valid_to,budget,reward
O1,P1,Grocery,Double points on groceries,,base,2025-07-01,2025-07-31,1000,2x points
O2,P2,Beauty,Spa day discount,north,silver,2025-07-01,2025-08-15,,15% off
O3,P3,Travel,Miles bonus,,gold,2025-07-10,2025-07-10,50,500 miles
""",
}
"""The valid data set as CSV text per table: 3 members, 4 purchases, 3 partners, 3 offers."""


def write_tables(directory: Path) -> Path:
    """Write `VALID_TABLES` as `<name>.csv` files into `directory` (created) and return it."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in VALID_TABLES.items():
        (directory / f"{name}.csv").write_text(text, encoding="utf-8")
    return directory


@pytest.fixture
def write_valid_dataset() -> Callable[[Path], Path]:
    """`write_tables`, for test modules (they cannot import this conftest)."""
    return write_tables


@pytest.fixture
def valid_data_dir(tmp_path: Path) -> Path:
    """A fresh directory holding the valid data set as CSV files."""
    return write_tables(tmp_path / "data")
