"""Bounded, strict request inputs: the key is checked before a body is read, bodies are
limited before they are parsed, 422s echo little, body types are strict, an events batch
lists every problem at once, and a stream cursor out of range is a client error.

Most tests drive the ASGI app directly with a `receive` that counts the body chunks the app
asked for, so that "never read" is observed, not inferred; one goes through a real server on
127.0.0.1 with a declared 54 MB body that is never sent.
"""

import asyncio
import http.client
import json
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from perkrank.serving.api.limits import trimmed_error
from perkrank.serving.state.memory import MemoryStateStore

APP = {"X-API-Key": "app-key-for-tests-0001"}
ADMIN = {"X-API-Key": "admin-key-for-tests-0001"}
JSON = {"Content-Type": "application/json"}
CSV = {"Content-Type": "text/csv"}
DECLARED_54_MB = {"Content-Length": str(54 * 1000 * 1000)}
JSON_LIMIT = 1000
UPLOAD_LIMIT = 4000
LARGEST_STREAM_ID = f"{2**64 - 1}-{2**64 - 1}"


def limited_app(make_small_app, store=None):
    """The small app with a 1000-byte JSON limit and a 4000-byte upload limit."""
    return make_small_app(
        store or MemoryStateStore(), max_json_body_bytes=JSON_LIMIT, max_upload_bytes=UPLOAD_LIMIT
    )


def call(app, method, path, headers, chunks=(b"x" * 500,) * 4) -> tuple[int, dict, int]:
    """Send one request straight to the ASGI app; its status, JSON body, and how many of the
    body `chunks` (sent without Content-Length unless `headers` declare one) the app read."""
    read = 0

    async def receive() -> dict:
        nonlocal read
        if read < len(chunks):
            read += 1
            return {"type": "http.request", "body": chunks[read - 1], "more_body": True}
        return {"type": "http.request", "body": b"", "more_body": False}

    messages = []

    async def send(message: dict) -> None:
        messages.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(name.lower().encode(), value.encode()) for name, value in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    asyncio.run(app(scope, receive, send))
    body = b"".join(message.get("body", b"") for message in messages[1:])
    return messages[0]["status"], json.loads(body), read


# ---------------------------------------------------------------- key first, bounded bodies


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("POST", "/v1/events", JSON, 401),
        ("PUT", "/v1/members/alice/preferences", JSON, 401),
        ("PATCH", "/v1/members/alice/preferences", JSON, 401),
        ("DELETE", "/v1/admin/members/alice", APP | JSON, 403),
        ("PUT", "/v1/caps", JSON | {"X-API-Key": "wrong-key-wrong-key"}, 401),
        ("PUT", "/v1/caps", APP | JSON, 403),
        ("PUT", "/v1/admin/offers", CSV, 401),
        ("PUT", "/v1/admin/offers", APP | CSV, 403),
        ("POST", "/v1/admin/reload", APP | JSON, 403),
    ],
)
def test_a_request_without_the_right_key_never_has_its_body_read(
    make_small_app, method, path, headers, status
):
    app = limited_app(make_small_app)

    declared, declared_body, declared_read = call(app, method, path, headers | DECLARED_54_MB)
    chunked, _, chunked_read = call(app, method, path, headers)

    assert (declared, chunked) == (status, status)
    assert "key" in declared_body["detail"]
    assert (declared_read, chunked_read) == (0, 0)


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("POST", "/v1/events", APP | JSON),
        ("PUT", "/v1/members/alice/preferences", ADMIN | JSON),
        ("PUT", "/v1/caps", ADMIN | JSON),
    ],
)
def test_a_json_body_declared_over_the_limit_is_refused_with_413_unread(
    make_small_app, method, path, headers
):
    app = limited_app(make_small_app)

    status, body, read = call(app, method, path, headers | {"Content-Length": "1001"})

    assert (status, read) == (413, 0)
    assert body == {"detail": "the request body is larger than 1000 bytes (max_json_body_bytes)"}


@pytest.mark.parametrize(
    ("path", "headers", "limit", "setting"),
    [
        ("/v1/events", APP | JSON, JSON_LIMIT, "max_json_body_bytes"),
        ("/v1/admin/offers", ADMIN | CSV, UPLOAD_LIMIT, "max_upload_bytes"),
    ],
)
def test_a_chunked_body_is_cut_off_with_413_as_soon_as_it_passes_the_limit(
    make_small_app, path, headers, limit, setting
):
    app = limited_app(make_small_app)
    method = "PUT" if "admin" in path else "POST"

    status, body, read = call(app, method, path, headers, chunks=(b"x" * 400,) * 100)

    assert status == 413
    assert body["detail"] == f"the request body is larger than {limit} bytes ({setting})"
    assert read == limit // 400 + 1


def test_an_offers_file_may_be_larger_than_a_json_body(make_small_app):
    app = limited_app(make_small_app)
    file = (b"x" * 500,) * 6  # 3000 bytes: over the JSON limit, within the upload limit

    status, body, read = call(app, "PUT", "/v1/admin/offers", ADMIN | CSV, chunks=file)

    assert (status, read) == (409, 6)  # read whole; the small app has no partners table
    assert "partners" in body["detail"]


def test_a_real_server_refuses_a_declared_54_mb_body_without_waiting_for_it(
    make_small_app, live_server
):
    def post_headers_only(url: str, headers: dict) -> tuple[int, dict]:
        address = urlsplit(url)
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
        try:
            connection.putrequest("POST", "/v1/events")
            for name, value in (headers | JSON | DECLARED_54_MB).items():
                connection.putheader(name, value)
            connection.endheaders()  # not one byte of the body follows
            response = connection.getresponse()
            return response.status, json.loads(response.read())
        finally:
            connection.close()

    with live_server(make_small_app(MemoryStateStore())) as url:
        without_key = post_headers_only(url, {})
        with_key = post_headers_only(url, APP)

    assert without_key == (401, {"detail": "missing API key: send a valid key in X-API-Key"})
    assert with_key == (
        413,
        {"detail": "the request body is larger than 1048576 bytes (max_json_body_bytes)"},
    )


# ---------------------------------------------------------------- 422s


def test_a_422_echoes_at_most_a_short_prefix_of_a_large_input(make_small_app):
    client = TestClient(make_small_app(MemoryStateStore()))
    large = "y" * 500_000

    whole_body = client.post("/v1/events", content=json.dumps(large), headers=APP | JSON)
    one_field = client.put(
        "/v1/members/alice/preferences",
        json={"opted_out_categories": [large]},
        headers=ADMIN,
    )

    for response in (whole_body, one_field):
        assert response.status_code == 422
        assert len(response.content) < 1000
        (error,) = response.json()["detail"]
        assert error["input"] == "y" * 100 + "…"
    assert whole_body.json()["detail"][0]["loc"] == ["body"]
    assert one_field.json()["detail"][0]["loc"] == ["body", "opted_out_categories", 0]
    assert one_field.json()["detail"][0]["type"] == "string_too_long"


def test_a_cap_rule_422_quotes_a_large_value_only_in_part(make_small_app):
    client = TestClient(make_small_app(MemoryStateStore()))
    rule = {"name": "n" * 200, "scope": "member_offer", "limit": 1, "window": "w" * 200_000}

    response = client.put("/v1/caps", json={"rules": [rule]}, headers=ADMIN)

    assert response.status_code == 422
    assert len(response.content) < 2000
    problems = {problem["field"]: problem for problem in response.json()["detail"]}
    assert set(problems) == {"name", "window"}  # the name breaks its pattern too
    assert problems["window"]["name"] == "n" * 100 + "…"
    assert problems["window"]["msg"].startswith("Value error, unknown window 'www")


def test_a_trimmed_error_keeps_its_shape_and_cuts_what_it_quotes():
    error = {
        "type": "string_pattern_mismatch",
        "loc": ("body", "events", 0, "member_id"),
        "msg": "m" * 1000,
        "input": {"member_id": "z" * 1000},
        "ctx": {"pattern": "p" * 1000, "ge": 3, "error": ValueError("bad")},
    }

    trimmed = trimmed_error(error)

    assert trimmed == {
        "type": "string_pattern_mismatch",
        "loc": ["body", "events", 0, "member_id"],
        "msg": "m" * 300 + "…",
        "ctx": {"pattern": "p" * 100 + "…", "ge": 3, "error": "bad"},
    }
    assert trimmed_error(error | {"input": {"member_id": "z"}})["input"] == {"member_id": "z"}
    assert trimmed_error(error | {"input": None})["input"] is None


# ---------------------------------------------------------------- strict types


@pytest.mark.parametrize(
    ("path", "body", "loc"),
    [
        ("/v1/members/alice/preferences", {"opt_out_all": "yes"}, ["body", "opt_out_all"]),
        ("/v1/members/alice/preferences", {"personalization": 0}, ["body", "personalization"]),
        (
            "/v1/members/alice/preferences",
            {"opted_out_partners": [7]},
            ["body", "opted_out_partners", 0],
        ),
        (
            "/v1/caps",
            {"rules": [{"name": "r", "scope": "member_offer", "limit": "3", "window": "day"}]},
            ["rules", 0, "limit"],
        ),
        (
            "/v1/caps",
            {"rules": [{"name": "r", "scope": "member_offer", "limit": 3.0, "window": "day"}]},
            ["rules", 0, "limit"],
        ),
    ],
)
def test_body_values_of_the_wrong_json_type_are_not_coerced(make_small_app, path, body, loc):
    client = TestClient(make_small_app(MemoryStateStore()))

    response = client.put(path, json=body, headers=ADMIN)

    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["detail"]] == [loc]
    assert client.get("/v1/members/alice/preferences", headers=ADMIN).json()["opt_out_all"] is False
    assert client.get("/v1/caps", headers=ADMIN).json()["version"] == 1


def test_an_event_with_a_number_for_an_identifier_is_rejected(make_small_app):
    client = TestClient(make_small_app(MemoryStateStore()))
    event = {"type": "click", "member_id": 42, "offer_id": "glow-beauty", "channel": "app"}
    ts = datetime.now(UTC).isoformat()

    response = client.post("/v1/events", json={"events": [event | {"ts": ts}]}, headers=APP)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "events", 0, "member_id"]


# ---------------------------------------------------------------- events batches


def test_an_events_batch_reports_field_offer_and_time_problems_in_one_422(make_small_app):
    client = TestClient(make_small_app(MemoryStateStore()))
    now = datetime.now(UTC).timestamp()
    good = {"type": "click", "member_id": "alice", "offer_id": "glow-beauty", "channel": "app"}
    batch = [
        good | {"ts": datetime.fromtimestamp(now, UTC).isoformat()},
        good | {"type": "purchase", "ts": datetime.fromtimestamp(now, UTC).isoformat()},
        good | {"offer_id": "no-such-offer", "ts": datetime.fromtimestamp(now, UTC).isoformat()},
        good | {"ts": datetime.fromtimestamp(now - 8 * 86400, UTC).isoformat()},
        {"type": "click", "offer_id": "glow-beauty", "channel": "fax", "ts": "noon"},
        "not an event",
    ]

    response = client.post("/v1/events", json={"events": batch}, headers=APP)

    assert response.status_code == 422
    assert {tuple(error["loc"]) for error in response.json()["detail"]} == {
        ("body", "events", 1, "type"),
        ("body", "events", 2, "offer_id"),
        ("body", "events", 3, "ts"),
        ("body", "events", 4, "member_id"),
        ("body", "events", 4, "channel"),
        ("body", "events", 4, "ts"),
        ("body", "events", 5),
    }
    assert client.get("/v1/admin/events", headers=ADMIN).json()["events"] == []


# ---------------------------------------------------------------- stream cursors


def store_errors() -> float:
    return REGISTRY.get_sample_value("perkrank_store_errors_total") or 0.0


@pytest.mark.parametrize(
    "after", [f"{2**64}-0", f"0-{2**64}", "99999999999999999999-1", f"{2**64 - 1}-{2**64}"]
)
def test_a_cursor_beyond_64_bit_stream_ids_is_a_client_error(store, make_small_app, after):
    client = TestClient(make_small_app(store))
    errors_before = store_errors()

    response = client.get(f"/v1/admin/events?after={after}", headers=ADMIN)

    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["query", "after"]
    assert "at most 18446744073709551615" in error["msg"]
    assert store_errors() == errors_before


def test_nothing_follows_the_largest_stream_id(store, make_small_app):
    client = TestClient(make_small_app(store))

    response = client.get(f"/v1/admin/events?after={LARGEST_STREAM_ID}", headers=ADMIN)

    assert response.status_code == 200
    assert response.json() == {"events": [], "next_after": LARGEST_STREAM_ID}
