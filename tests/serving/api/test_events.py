"""Events over HTTP: `POST /v1/events` counts them against the caps that count them,
`GET /v1/admin/events` pages through the kept ones, and the CLI exports them.

The HTTP tests go through the app, and the export test through a real server and the CLI.
"""

import csv
import time
from datetime import UTC, datetime, timedelta

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from perkrank.cli import main
from perkrank.config import CapRule
from perkrank.serving.state.memory import MemoryStateStore

DAY = 86400
APP = {"X-API-Key": "app-key-for-tests-0001"}
ADMIN = {"X-API-Key": "admin-key-for-tests-0001"}
ONE_REDEMPTION_A_MONTH = CapRule(
    name="redemption_month", scope="member_offer", limit=1, window="month", counts="redemption"
)


# ---------------------------------------------------------------- the API


def iso(seconds_from_now: float = 0) -> str:
    moment = datetime.now(UTC) + timedelta(seconds=seconds_from_now)
    return moment.isoformat().replace("+00:00", "Z")


def body(*events) -> dict:
    defaults = {"type": "click", "member_id": "alice", "offer_id": "glow-beauty", "channel": "app"}
    return {"events": [defaults | {"ts": iso()} | fields for fields in events]}


def offers(client, member_id="alice") -> list[str]:
    response = client.get(f"/v1/members/{member_id}/offers", headers=APP)
    assert response.status_code == 200, response.text
    return [item["offer_id"] for item in response.json()["offers"]]


def test_a_posted_redemption_stops_the_offer_for_the_month(store, make_small_app):
    client = TestClient(make_small_app(store, rules=(ONE_REDEMPTION_A_MONTH,)))
    assert offers(client) == ["glow-beauty", "fresh-grocery"]
    redemption = {"type": "redemption", "event_id": "r-1"}

    response = client.post("/v1/events", json=body(redemption), headers=APP)
    repeated = client.post("/v1/events", json=body(redemption), headers=APP)

    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 1, "duplicates": 0}
    assert repeated.json() == {"accepted": 0, "duplicates": 1}
    assert offers(client) == ["fresh-grocery"]
    assert set(offers(client, "bob")) == {"fresh-grocery", "glow-beauty"}


def test_a_bad_batch_names_every_problem_and_records_nothing(make_small_app):
    client = TestClient(make_small_app(MemoryStateStore()))
    batch = body(
        {},
        {"offer_id": "no-such-offer"},
        {"ts": iso(3600)},
        {"ts": iso(-8 * DAY)},
    )

    response = client.post("/v1/events", json=batch, headers=APP)

    assert response.status_code == 422
    problems = {tuple(error["loc"]): error["msg"] for error in response.json()["detail"]}
    assert problems == {
        ("body", "events", 1, "offer_id"): "unknown offer: not in the catalog in force",
        ("body", "events", 2, "ts"): "more than 300 s ahead",
        ("body", "events", 3, "ts"): "more than 7 days ago",
    }
    page = client.get("/v1/admin/events", headers=ADMIN).json()
    assert page == {"events": [], "next_after": "0-0"}


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"type": "purchase"}, "type", "'impression', 'click' or 'redemption'"),
        ({"member_id": "bad id!"}, "member_id", "should match pattern"),
        ({"event_id": "x" * 65}, "event_id", "should match pattern"),
        ({"channel": "fax"}, "channel", "'store', 'app', 'web', 'push', 'sms' or 'email'"),
        ({"ts": time.time()}, "ts", "ISO 8601 text with an offset"),
        ({"ts": "2026-06-15T10:00:00"}, "ts", "timezone"),
        ({"score": 3}, "score", "Extra inputs are not permitted"),
    ],
)
def test_invalid_events_are_rejected_naming_index_and_field(make_small_app, fields, field, message):
    client = TestClient(make_small_app(MemoryStateStore()))

    response = client.post("/v1/events", json=body({}, fields), headers=APP)

    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "events", 1, field]
    assert message in error["msg"]


def test_a_batch_larger_than_the_limit_is_refused_with_413(make_small_app):
    client = TestClient(make_small_app(MemoryStateStore(), max_events_per_request=3))

    too_many = client.post("/v1/events", json=body({}, {}, {}, {}), headers=APP)
    empty = client.post("/v1/events", json={"events": []}, headers=APP)

    assert too_many.status_code == 413
    assert too_many.json()["detail"] == "a batch holds at most 3 events; this one has 4: split it"
    assert empty.status_code == 422
    assert client.post("/v1/events", json=body({}, {}, {}), headers=APP).status_code == 200


def test_events_need_an_app_key_and_reading_them_an_admin_key(make_small_app):
    client = TestClient(make_small_app(MemoryStateStore()))

    assert client.post("/v1/events", json=body({})).status_code == 401
    assert client.get("/v1/admin/events", headers=APP).status_code == 403
    assert client.get("/v1/admin/events?after=1-x", headers=ADMIN).status_code == 422


def test_kept_events_read_page_by_page_with_offer_fields(store, make_small_app):
    client = TestClient(make_small_app(store))
    sent = body(*({"member_id": f"m-{n}", "offer_id": "fresh-grocery"} for n in range(3)))
    client.post("/v1/events", json=sent, headers=APP)

    first = client.get("/v1/admin/events?count=2", headers=ADMIN).json()
    after = first["next_after"]
    second = client.get(f"/v1/admin/events?count=2&after={after}", headers=ADMIN).json()

    kept = first["events"] + second["events"]
    assert [item["member_id"] for item in kept] == ["m-0", "m-1", "m-2"]
    assert kept[0]["partner_id"] == "P2"
    assert kept[0]["category"] == "Grocery"
    assert kept[0]["event_id"] is None
    sent_ts = datetime.fromisoformat(sent["events"][0]["ts"])
    assert datetime.fromisoformat(kept[0]["ts"]) == sent_ts


# ---------------------------------------------------------------- export


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_export_writes_every_kept_event_through_the_admin_api(
    store, make_small_app, live_server, tmp_path, suffix
):
    app = make_small_app(store)
    client = TestClient(app)
    sent = body(*({"member_id": f"m-{n}", "event_id": f"e-{n}"} for n in range(5)))
    client.post("/v1/events", json=sent, headers=APP)
    out = tmp_path / f"events{suffix}"

    with live_server(app) as base_url:
        arguments = ["events", "export", "--out", str(out), "--url", base_url]
        code = main([*arguments, "--api-key", ADMIN["X-API-Key"], "--page-size", "2"])

    assert code == 0
    if suffix == ".csv":
        with out.open(newline="", encoding="utf-8") as file:
            rows = list(csv.DictReader(file))
        timestamps = [datetime.fromisoformat(row["ts"]) for row in rows]
    else:
        table = pq.read_table(out)
        assert str(table.schema.field("ts").type) == "timestamp[us, tz=UTC]"
        rows = table.to_pylist()
        timestamps = [row["ts"] for row in rows]
    assert list(rows[0]) == [
        "event_id",
        "type",
        "member_id",
        "offer_id",
        "partner_id",
        "category",
        "channel",
        "ts",
        "decision_id",
    ]
    assert [row["event_id"] for row in rows] == [f"e-{n}" for n in range(5)]
    assert {(row["offer_id"], row["partner_id"], row["type"]) for row in rows} == {
        ("glow-beauty", "P1", "click")
    }
    assert timestamps[0] == datetime.fromisoformat(sent["events"][0]["ts"])
    assert list(tmp_path.iterdir()) == [out]


def test_export_refuses_a_file_name_it_cannot_write_a_format_for(tmp_path, capsys):
    out = tmp_path / "events.json"

    code = main(["events", "export", "--out", str(out), "--api-key", "any-admin-key-0001"])

    assert code == 2
    assert f"{out}: use a .csv or .parquet file name" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_failed_export_leaves_no_file_and_keeps_an_old_one(
    make_small_app, live_server, tmp_path, capsys
):
    out = tmp_path / "events.csv"
    out.write_text("old export\n")

    with live_server(make_small_app(MemoryStateStore())) as base_url:
        arguments = ["events", "export", "--out", str(out), "--url", base_url]
        code = main([*arguments, "--api-key", "not-the-admin-key-0001"])

    assert code == 2
    assert "HTTP 401" in capsys.readouterr().err
    assert out.read_text() == "old export\n"
    assert list(tmp_path.iterdir()) == [out]
