"""The loader parses valid data into the contract's dtypes and names file, row and field of
every problem in invalid data."""

import gzip
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from perkrank.cli import main
from perkrank.features.loader import DataValidationError, load_dataset
from perkrank.features.problems import LISTED_PROBLEMS


def replace_text(path: Path, old: str, new: str) -> None:
    """Replace the one occurrence of `old` in a text file."""
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} must occur once in {path.name}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def validation_error(data_dir: Path) -> DataValidationError:
    with pytest.raises(DataValidationError) as caught:
        load_dataset(data_dir)
    return caught.value


def snapshot(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


def test_valid_data_set_loads_with_the_contract_dtypes(valid_data_dir):
    dataset = load_dataset(valid_data_dir)

    assert dataset.row_counts() == {"members": 3, "purchases": 4, "partners": 3, "offers": 3}
    members, purchases, partners, offers = (
        dataset.members,
        dataset.purchases,
        dataset.partners,
        dataset.offers,
    )
    for frame, text_columns in [
        (members, ["member_id", "region", "tier"]),
        (purchases, ["member_id", "partner_id", "category", "channel"]),
        (partners, ["partner_id", "name", "scope"]),
        (offers, ["offer_id", "partner_id", "category", "title", "min_tier", "reward"]),
    ]:
        for column in text_columns:
            assert frame[column].dtype == object
            assert all(type(value) is str for value in frame[column])
    for frame, date_columns in [
        (members, ["birth_date", "signup_date"]),
        (purchases, ["ts"]),
        (offers, ["valid_from", "valid_to"]),
    ]:
        for column in date_columns:
            assert frame[column].dtype == "datetime64[ns]"
    assert purchases["amount"].dtype == "float64"
    assert offers["budget"].dtype == "Int64"

    assert members["birth_date"].isna().tolist() == [False, True, False]
    assert purchases["ts"].tolist() == [
        pd.Timestamp("2025-06-01 10:15:00"),
        pd.Timestamp("2025-06-03 06:00:00"),  # 08:00 at +02:00, stored as naive UTC
        pd.Timestamp("2025-06-04 12:00:00"),
        pd.Timestamp("2025-06-05 00:00:00"),
    ]
    assert purchases["amount"].tolist() == [23.5, 40.0, 61.2, 310.0]
    assert partners["name"][0] == "FreshMart, Fuel & More"
    assert partners["regions"].tolist() == [(), ("north", "east"), ()]
    assert partners["categories"].tolist() == [("Grocery", "Fuel"), ("Beauty",), ("Travel",)]
    assert offers["regions"].tolist() == [(), ("north",), ()]
    assert offers["budget"].tolist() == [1000, pd.NA, 50]
    assert offers["valid_to"][2] == pd.Timestamp("2025-07-10")


@pytest.mark.parametrize(
    ("file", "old", "new", "expected"),
    [
        pytest.param(
            "members.csv",
            "m3,north,silver,1990-12-01,2025-03-15",
            "m3,north,silver,1990-12-01,2025-13-01",
            "members.csv row 4, field signup_date: '2025-13-01' is not a date (YYYY-MM-DD",
            id="bad date",
        ),
        pytest.param(
            "purchases.csv",
            "m2,2025-06-04 12:00:00,",
            "m2,yesterday noon,",
            "purchases.csv row 4, field ts: 'yesterday noon' is not a timestamp",
            id="bad timestamp",
        ),
        pytest.param(
            "purchases.csv",
            ",61.2,",
            ",sixty,",
            "purchases.csv row 4, field amount: 'sixty' is not a number ≥ 0",
            id="bad number",
        ),
        pytest.param(
            "purchases.csv",
            ",61.2,",
            ",-61.2,",
            "purchases.csv row 4, field amount: '-61.2' is not a number ≥ 0",
            id="negative amount",
        ),
        pytest.param(
            "offers.csv",
            ",1000,",
            ",12.5,",
            "offers.csv row 2, field budget: '12.5' is not a whole number ≥ 0",
            id="fractional budget",
        ),
        pytest.param(
            "members.csv",
            "m2,south,base,",
            "m2,south,platinum,",
            "members.csv row 3, field tier: 'platinum' is not one of base, silver, gold, vip",
            id="tier not in choices",
        ),
        pytest.param(
            "purchases.csv",
            "P3,Travel,310,app",
            "P3,Travel,310,phone",
            "purchases.csv row 5, field channel: 'phone' is not one of store, app, web",
            id="channel not in choices",
        ),
        pytest.param(
            "members.csv",
            "m2,south,base,,2025-02-01",
            "m2,,base,,2025-02-01",
            "members.csv row 3, field region: is empty",
            id="empty required cell",
        ),
        pytest.param(
            "offers.csv",
            "O3,P3,Travel",
            "O1,P3,Travel",
            "offers.csv row 4, field offer_id: 'O1' is a duplicate of row 2",
            id="duplicate id",
        ),
        pytest.param(
            "purchases.csv",
            "m3,2025-06-05",
            "m9,2025-06-05",
            "purchases.csv row 5, field member_id: 'm9' is not in members.csv",
            id="unknown member",
        ),
        pytest.param(
            "offers.csv",
            "O2,P2,Beauty",
            "O2,P7,Beauty",
            "offers.csv row 3, field partner_id: 'P7' is not in partners.csv",
            id="unknown partner",
        ),
        pytest.param(
            "offers.csv",
            "2025-07-01,2025-08-15",
            "2025-07-01,2025-06-15",
            "offers.csv row 3, field valid_to: 2025-06-15 is before valid_from 2025-07-01",
            id="valid_to before valid_from",
        ),
        pytest.param(
            "partners.csv",
            "local,north; east,",
            "local,,",
            "partners.csv row 3, field regions: a local partner needs at least one region",
            id="local partner without regions",
        ),
        pytest.param(
            "offers.csv",
            "Spa day discount,north,",
            "Spa day discount,north;west,",
            "offers.csv row 3, field regions: west not among the regions of local partner P2",
            id="offer region outside its local partner's",
        ),
        pytest.param(
            "purchases.csv",
            "P1,Fuel,",
            "P1,Fuel|Gas,",
            "purchases.csv row 4, field category: 'Fuel|Gas' contains '|'",
            id="item separator in category",
        ),
        pytest.param(
            "offers.csv",
            "Spa day discount",
            "Spa day\x1fdiscount",
            "offers.csv row 3, field title: 'Spa day\\x1fdiscount' holds U+001F, a control "
            "character; text must be printable",
            id="unit separator in a title",
        ),
        pytest.param(
            "offers.csv",
            "O2,P2",
            "O\x1e2,P2",
            "offers.csv row 3, field offer_id: 'O\\x1e2' holds U+001E, a control character",
            id="record separator in an offer id",
        ),
        pytest.param(
            "offers.csv",
            "Miles bonus",
            '"Miles\nbonus"',
            "offers.csv row 4, field title: 'Miles\\nbonus' holds U+000A, a control character",
            id="line break in a quoted title",
        ),
        pytest.param(
            "offers.csv",
            "15% off",
            "15%\x85off",
            "offers.csv row 3, field reward: '15%\\x85off' holds U+0085, a control character",
            id="C1 control in a reward",
        ),
        pytest.param(
            "partners.csv",
            "Nordic Spa",
            "Nordic\u2028Spa",
            "partners.csv row 3, field name: 'Nordic\\u2028Spa' holds U+2028, a control",
            id="line separator in a partner name",
        ),
        pytest.param(
            "partners.csv",
            "Grocery;Fuel",
            "Grocery;Fu\tel",
            "partners.csv row 2, field categories: 'Grocery;Fu\\tel' holds U+0009, a control",
            id="tab inside a list item",
        ),
        pytest.param(
            "members.csv",
            "m2,south",
            "m2,s" + "o" * 64,
            f"members.csv row 3, field region: 's{'o' * 38}…' is longer than 64 characters",
            id="region longer than an id may be",
        ),
        pytest.param(
            "partners.csv",
            "north; east",
            "north; e" + "a" * 64,
            "partners.csv row 3, field regions: 'north; eaaaa",
            id="list item longer than an id may be",
        ),
    ],
)
def test_bad_cell_is_reported_with_file_row_and_field(valid_data_dir, file, old, new, expected):
    replace_text(valid_data_dir / file, old, new)

    error = validation_error(valid_data_dir)

    assert error.problem_count == 1
    assert str(error).startswith(expected)
    assert error.problems[0].file == file


def test_printable_text_of_any_script_loads_verbatim(valid_data_dir):
    title = "Crème brûlée -20%\u00a0🎉 عرض =SUM(A1) <b>x</b>"
    replace_text(valid_data_dir / "offers.csv", "Spa day discount", title)
    replace_text(valid_data_dir / "offers.csv", "O3,", f"{'O' * 64},")

    offers = load_dataset(valid_data_dir).offers

    assert offers["title"].tolist()[1] == title
    assert offers["offer_id"].tolist()[2] == "O" * 64


def test_control_characters_in_parquet_text_are_reported_by_record_row(valid_data_dir):
    (valid_data_dir / "partners.csv").unlink()
    partners = {
        "partner_id": ["P1", "P2", "P3"],
        "name": ["Fresh", "Spa", "Sky"],
        "scope": ["federal", "local", "federal"],
        "regions": [[], ["north"], []],
        "categories": [["Grocery", "Fuel"], ["Beauty"], ["Tra\x1fvel"]],
    }
    pq.write_table(pa.table(partners), valid_data_dir / "partners.parquet")

    error = validation_error(valid_data_dir)

    assert [str(problem) for problem in error.problems] == [
        "partners.parquet row 4, field categories: 'Tra\\x1fvel' holds U+001F, a control "
        "character; text must be printable"
    ]


def test_missing_required_column_is_reported_with_file_and_field(valid_data_dir):
    (valid_data_dir / "members.csv").write_text(
        "member_id,region,signup_date\nm1,north,2024-01-10\nm2,south,2025-02-01\n"
        "m3,north,2025-03-15\n",
        encoding="utf-8",
    )

    error = validation_error(valid_data_dir)

    assert str(error) == "members.csv, field tier: required column is missing"
    assert (error.problems[0].row, error.problems[0].field) == (None, "tier")


def test_optional_columns_may_be_left_out_and_unknown_columns_are_ignored(valid_data_dir):
    (valid_data_dir / "members.csv").write_text(
        "member_id,region,tier,signup_date,favourite_colour\n"
        "m1,north,gold,2024-01-10,red\nm2,south,base,2025-02-01,\nm3,north,silver,2025-03-15,blue\n",
        encoding="utf-8",
    )

    members = load_dataset(valid_data_dir).members

    assert list(members.columns) == ["member_id", "region", "tier", "birth_date", "signup_date"]
    assert members["birth_date"].isna().all()
    assert members["birth_date"].dtype == "datetime64[ns]"


def test_empty_file_is_reported(valid_data_dir):
    (valid_data_dir / "partners.csv").write_bytes(b"")

    error = validation_error(valid_data_dir)

    assert str(error) == "partners.csv: is empty (no header)"


def test_file_with_only_a_header_is_reported(valid_data_dir):
    (valid_data_dir / "offers.csv").write_text(
        "offer_id,partner_id,category,title,regions,min_tier,valid_from,valid_to,budget,reward\n",
        encoding="utf-8",
    )

    error = validation_error(valid_data_dir)

    assert str(error) == "offers.csv: has no rows below the header"


def test_file_that_is_not_utf8_is_reported_with_row_and_field(valid_data_dir):
    (valid_data_dir / "members.csv").write_bytes(
        "note,member_id,region,tier,birth_date,signup_date\n"
        "moved,m1,north,gold,,2024-01-10\n"
        ",m2,Tromsø,base,,2025-02-01\n".encode("latin-1")
    )

    error = validation_error(valid_data_dir)

    assert str(error) == "members.csv row 3, field region: is not UTF-8 text; save it as UTF-8"


def test_missing_file_is_reported(valid_data_dir):
    (valid_data_dir / "offers.csv").unlink()

    error = validation_error(valid_data_dir)

    assert str(error) == (
        "offers.csv: file is missing (expected one of offers.csv, offers.csv.gz, offers.parquet)"
    )


def test_two_files_for_one_table_are_reported(valid_data_dir):
    text = (valid_data_dir / "members.csv").read_bytes()
    (valid_data_dir / "members.csv.gz").write_bytes(gzip.compress(text))

    error = validation_error(valid_data_dir)

    assert str(error) == "members.csv: members.csv and members.csv.gz both exist; keep exactly one"


def test_row_with_the_wrong_number_of_cells_is_reported(valid_data_dir):
    replace_text(valid_data_dir / "purchases.csv", "61.2,web", "61.2,web,extra")

    error = validation_error(valid_data_dir)

    assert str(error) == "purchases.csv row 4: expected 6 cells as in the header, found 7"


def test_blank_lines_are_skipped_but_still_counted_as_rows(valid_data_dir):
    replace_text(valid_data_dir / "members.csv", "\nm2,", "\n\nm2,")
    replace_text(valid_data_dir / "members.csv", "m3,north,silver,", "m3,north,bronze,")

    error = validation_error(valid_data_dir)

    assert str(error).startswith("members.csv row 5, field tier: 'bronze'")


def test_problems_in_different_files_are_reported_together(valid_data_dir):
    (valid_data_dir / "offers.csv").unlink()
    replace_text(valid_data_dir / "members.csv", "m2,south,base,", "m2,south,basic,")
    replace_text(valid_data_dir / "purchases.csv", "2025-06-01 10:15:00", "2025-06-31 10:15:00")
    replace_text(valid_data_dir / "partners.csv", "P3,SkyTrips,federal", "P3,SkyTrips,global")

    lines = str(validation_error(valid_data_dir)).splitlines()

    assert len(lines) == 4
    assert lines[0].startswith("offers.csv: file is missing")
    assert lines[1].startswith("members.csv row 3, field tier: 'basic'")
    assert lines[2].startswith("purchases.csv row 2, field ts: '2025-06-31 10:15:00'")
    assert lines[3].startswith("partners.csv row 4, field scope: 'global'")


def test_long_problem_lists_are_cut_with_a_count_of_the_rest(valid_data_dir):
    rows = "".join(f"x{number},north,platinum,,2025-01-01\n" for number in range(60))
    with (valid_data_dir / "members.csv").open("a", encoding="utf-8") as members:
        members.write(rows)

    error = validation_error(valid_data_dir)

    lines = str(error).splitlines()
    assert error.problem_count == 60
    assert len(lines) == LISTED_PROBLEMS + 1
    assert lines[0].startswith("members.csv row 5, field tier: 'platinum'")
    assert lines[-1] == f"… and {60 - LISTED_PROBLEMS} more problems"


def test_gzipped_and_parquet_tables_load_the_same_as_csv(valid_data_dir, tmp_path):
    expected = load_dataset(valid_data_dir)
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    partners = (valid_data_dir / "partners.csv").read_bytes()
    (other_dir / "partners.csv.gz").write_bytes(gzip.compress(partners))
    midnight = [datetime(2024, 1, 10), datetime(2025, 2, 1), datetime(2025, 3, 15)]
    members = {
        "member_id": ["m1", "m2", "m3"],
        "region": ["north", "south", "north"],
        "tier": ["gold", "base", "silver"],
        "birth_date": pa.array([date(1980, 5, 17), None, date(1990, 12, 1)], pa.date32()),
        "signup_date": pa.array(midnight, pa.timestamp("ns")),
    }
    pq.write_table(pa.table(members), other_dir / "members.parquet")
    times = [
        datetime(2025, 6, 1, 10, 15),
        datetime(2025, 6, 3, 6, 0),
        datetime(2025, 6, 4, 12, 0),
        datetime(2025, 6, 5),
    ]
    purchases = {
        "member_id": ["m1", "m1", "m2", "m3"],
        "ts": pa.array(times, pa.timestamp("us", tz="UTC")),
        "partner_id": ["P1", "P2", "P1", "P3"],
        "category": ["Grocery", "Beauty", "Fuel", "Travel"],
        "amount": [23.5, 40.0, 61.2, 310.0],
        "channel": ["store", "app", "web", "app"],
    }
    pq.write_table(pa.table(purchases), other_dir / "purchases.parquet")
    offers = {
        "offer_id": ["O1", "O2", "O3"],
        "partner_id": ["P1", "P2", "P3"],
        "category": ["Grocery", "Beauty", "Travel"],
        "title": ["Double points on groceries", "Spa day discount", "Miles bonus"],
        "regions": pa.array([[], ["north"], None], pa.list_(pa.string())),
        "min_tier": ["base", "silver", "gold"],
        "valid_from": [date(2025, 7, 1), date(2025, 7, 1), date(2025, 7, 10)],
        "valid_to": [date(2025, 7, 31), date(2025, 8, 15), date(2025, 7, 10)],
        "budget": pa.array([1000, None, 50], pa.int64()),
        "reward": ["2x points", "15% off", "500 miles"],
    }
    pq.write_table(pa.table(offers), other_dir / "offers.parquet")

    loaded = load_dataset(other_dir)

    for name in ("members", "purchases", "partners", "offers"):
        pd.testing.assert_frame_equal(getattr(loaded, name), getattr(expected, name))


def test_parquet_problems_are_reported_by_record_row(valid_data_dir):
    (valid_data_dir / "offers.csv").unlink()
    offers = {
        "offer_id": ["O1", "O2"],
        "partner_id": ["P1", "P1"],
        "category": ["Grocery", "Fuel"],
        "title": ["A", "B"],
        "min_tier": ["base", "diamond"],
        "valid_from": [date(2025, 7, 1), date(2025, 7, 1)],
        "valid_to": [date(2025, 7, 31), date(2025, 7, 31)],
        "reward": ["x", "y"],
    }
    pq.write_table(pa.table(offers), valid_data_dir / "offers.parquet")

    error = validation_error(valid_data_dir)

    assert str(error).startswith("offers.parquet row 3, field min_tier: 'diamond'")


def test_cli_validate_prints_every_problem_and_exits_non_zero(valid_data_dir, capsys):
    replace_text(valid_data_dir / "members.csv", "m2,south,base,", "m2,south,basic,")
    replace_text(valid_data_dir / "offers.csv", "O2,P2,Beauty", "O2,P7,Beauty")
    before = snapshot(valid_data_dir)

    exit_code = main(["validate", str(valid_data_dir)])

    captured = capsys.readouterr()
    assert exit_code == 1
    assert "members.csv row 3, field tier: 'basic'" in captured.err
    assert "offers.csv row 3, field partner_id: 'P7'" in captured.err
    assert captured.out == ""
    assert snapshot(valid_data_dir) == before


def test_cli_validate_reports_row_counts_of_valid_data(valid_data_dir, capsys):
    before = snapshot(valid_data_dir)

    exit_code = main(["validate", str(valid_data_dir)])

    assert exit_code == 0
    assert capsys.readouterr().out.splitlines() == [
        "members: 3 rows ok",
        "purchases: 4 rows ok",
        "partners: 3 rows ok",
        "offers: 3 rows ok",
    ]
    assert snapshot(valid_data_dir) == before
