"""Events as training interactions: which events add purchase rows, and reading exports."""

import pandas as pd
import pytest

from perkrank.export import EVENT_COLUMNS, write_table
from perkrank.features.dataset import Dataset
from perkrank.features.event_interactions import (
    EVENT_ROWS,
    offer_response_counts,
    read_events,
    with_events,
)


def dataset() -> Dataset:
    members = pd.DataFrame({"member_id": ["alice", "bob"], "region": ["north"] * 2})
    purchases = pd.DataFrame(
        {
            "member_id": ["alice"],
            "ts": pd.to_datetime(["2025-01-05 10:00:00"]),
            "partner_id": ["P1"],
            "category": ["Coffee"],
            "amount": [3.5],
            "channel": ["store"],
        }
    )
    return Dataset(members, purchases, pd.DataFrame(), pd.DataFrame())


def events(*rows: tuple[str, str]) -> pd.DataFrame:
    """Events of (type, member) on offer P2|Fuel, in the app, on 2025-02-01 noon."""
    return pd.DataFrame(
        {
            "type": [kind for kind, _ in rows],
            "member_id": [member for _, member in rows],
            "partner_id": "P2",
            "category": "Fuel",
            "channel": "app",
            "ts": pd.Timestamp("2025-02-01 12:00:00"),
        }
    )


@pytest.mark.parametrize(
    ("rows", "weights", "added"),
    [
        ([("impression", "bob")], EVENT_ROWS, 0),
        ([("click", "bob")], EVENT_ROWS, 0),
        ([("redemption", "bob")], EVENT_ROWS, 1),
        ([("redemption", "stranger")], EVENT_ROWS, 0),
        ([("click", "bob"), ("redemption", "bob")], {"click": 1, "redemption": 2}, 3),
        ([("impression", "alice"), ("redemption", "alice")], {"redemption": 1}, 1),
    ],
)
def test_events_add_purchase_rows_by_type_for_known_members(rows, weights, added):
    before = dataset()
    after, count = with_events(before, events(*rows), weights)

    assert count == added
    assert len(after.purchases) == len(before.purchases) + added
    new = after.purchases.iloc[len(before.purchases) :]
    assert (new["partner_id"] == "P2").all() and (new["amount"] == 0).all()
    assert list(after.purchases.columns) == list(before.purchases.columns)
    assert after.purchases["ts"].dtype == before.purchases["ts"].dtype


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_read_events_reads_both_export_formats_with_naive_utc_times(tmp_path, suffix):
    row = {name: "" for name, _ in EVENT_COLUMNS} | {
        "type": "redemption",
        "member_id": "bob",
        "partner_id": "P2",
        "category": "Fuel",
        "channel": "app",
        "ts": "2025-02-01T12:00:00+00:00",
    }
    write_table([[row]], tmp_path / f"events{suffix}", EVENT_COLUMNS)

    read = read_events(tmp_path / f"events{suffix}")

    assert read["ts"].tolist() == [pd.Timestamp("2025-02-01 12:00:00")]
    assert with_events(dataset(), read)[1] == 1


def test_read_events_refuses_another_format(tmp_path):
    with pytest.raises(ValueError, match=r"events\.json"):
        read_events(tmp_path / "events.json")


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_offer_response_counts_count_impressions_and_redemptions_per_offer(tmp_path, suffix):
    blank = {name: "" for name, _ in EVENT_COLUMNS} | {"ts": "2025-02-01T12:00:00+00:00"}
    kinds = [("o1", "impression")] * 3 + [("o1", "click"), ("o1", "redemption")]
    kinds += [("o2", "impression"), ("o3", "redemption")]
    rows = [blank | {"offer_id": offer, "type": kind} for offer, kind in kinds]
    write_table([rows], tmp_path / f"events{suffix}", EVENT_COLUMNS)

    counts = offer_response_counts(tmp_path / f"events{suffix}")

    assert counts.to_dict("index") == {
        "o1": {"impression": 3, "redemption": 1},
        "o2": {"impression": 1, "redemption": 0},
        "o3": {"impression": 0, "redemption": 1},
    }
