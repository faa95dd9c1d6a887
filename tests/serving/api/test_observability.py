"""Metrics, request ids and JSON logs: what operators see, and that no member data is in it."""

import asyncio
import dataclasses
import io
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from perkrank.config import CapRule
from perkrank.serving.api.logs import JsonFormatter
from perkrank.serving.state.memory import MemoryStateStore
from perkrank.serving.state.redis_store import RedisStateStore

APP_KEY = "app-key-for-tests-0001"
ADMIN_KEY = "admin-key-for-tests-0001"
APP = {"X-API-Key": APP_KEY}
ADMIN = {"X-API-Key": ADMIN_KEY}
OFFERS_ROUTE = "/v1/members/{member_id}/offers"
SECRET_MEMBER = "member.secret.4711"
"""A member id that must never show up in metrics or logs."""


def metrics(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of GET /metrics: (name, sorted labels) → value."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert SECRET_MEMBER not in response.text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def sample(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def delta(before, after, name, **labels) -> float:
    return sample(after, name, **labels) - sample(before, name, **labels)


def unreachable_store() -> RedisStateStore:
    """A Redis store pointed at a port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return RedisStateStore(f"redis://127.0.0.1:{port}/0", "perkrank-down", 200)


def get_offers(client, member_id, **headers) -> httpx.Response:
    return client.get(f"/v1/members/{member_id}/offers", headers=APP | headers)


def test_requests_are_timed_by_route_template_never_by_member_id(make_small_app):
    client = TestClient(make_small_app(MemoryStateStore()))
    before = metrics(client)

    for _ in range(3):
        assert get_offers(client, SECRET_MEMBER).status_code == 200
    assert client.get(f"/v1/members/{SECRET_MEMBER}/nothing-here").status_code == 404

    after = metrics(client)
    offers = {"method": "GET", "route": OFFERS_ROUTE, "status": "200"}
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    count = "perkrank_request_duration_seconds_count"
    assert delta(before, after, count, **offers) == 3
    assert delta(before, after, count, **unmatched) == 1
    bucket = "perkrank_request_duration_seconds_bucket"
    assert delta(before, after, bucket, **offers, le="2.5") == 3


def test_offers_served_and_suppressed_are_counted_by_channel_and_reason(make_small_app):
    rules = (CapRule(name="once", scope="member_offer", limit=1, window="day"),)
    client = TestClient(make_small_app(MemoryStateStore(), rules=rules))
    opt_out = {"opted_out_categories": ["Grocery"]}
    client.put("/v1/members/alice/preferences", json=opt_out, headers=ADMIN)
    before = metrics(client)

    first = get_offers(client, "alice").json()["offers"]
    second = client.get("/v1/members/alice/offers?channel=web", headers=APP).json()["offers"]

    after = metrics(client)

    assert [item["offer_id"] for item in first] == ["glow-beauty"]
    assert second == []
    served, suppressed = "perkrank_offers_served_total", "perkrank_offers_suppressed_total"
    assert delta(before, after, served, channel="app") == 1
    assert delta(before, after, served, channel="web") == 0
    assert delta(before, after, suppressed, reason="opt_out") == 2
    assert delta(before, after, suppressed, reason="cap") == 1
    assert delta(before, after, suppressed, reason="eligibility") == 2


def test_versions_in_force_are_gauges_and_follow_a_model_swap(make_small_app):
    app = make_small_app(MemoryStateStore())
    client = TestClient(app)

    first = metrics(client)
    holder = app.state.holder
    holder.swap(
        dataclasses.replace(
            holder.current, model_version="small-2", caps_version=3, catalog_version=2
        )
    )
    get_offers(client, "alice")
    second = metrics(client)

    assert sample(first, "perkrank_model_info", version="small-1") == 1
    assert sample(first, "perkrank_caps_version") == 0
    assert sample(second, "perkrank_model_info", version="small-1") == 0
    assert sample(second, "perkrank_model_info", version="small-2") == 1
    assert sample(second, "perkrank_caps_version") == 3
    assert sample(second, "perkrank_catalog_version") == 2


def test_events_and_store_errors_are_counted(make_small_app):
    client = TestClient(make_small_app(MemoryStateStore()))
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    click = {"type": "click", "member_id": "alice", "offer_id": "glow-beauty", "channel": "app"}
    batch = {"events": [click | {"ts": now, "event_id": "e-1"}] * 2}
    down = TestClient(make_small_app(unreachable_store()))
    before = metrics(client)

    client.post("/v1/events", json=batch, headers=APP)
    assert get_offers(down, "alice").status_code == 503
    assert down.get("/readyz").status_code == 503

    after = metrics(client)
    for name, labels, expected in [
        ("perkrank_events_total", {"result": "accepted"}, 1),
        ("perkrank_events_total", {"result": "duplicate"}, 1),
        ("perkrank_store_errors_total", {}, 2),
    ]:
        assert delta(before, after, name, **labels) == expected


@pytest.mark.parametrize(
    ("sent", "kept"),
    [(None, False), ("edge-42.a:b_c", True), ("has space", False), ("x" * 65, False)],
)
def test_every_response_carries_a_request_id_that_the_offers_body_repeats(
    make_small_app, sent, kept
):
    client = TestClient(make_small_app(MemoryStateStore()))
    headers = {} if sent is None else {"X-Request-ID": sent}

    offers = get_offers(client, "alice", **headers)
    health = client.get("/healthz", headers=headers)

    request_id = offers.headers["X-Request-ID"]
    assert offers.json()["request_id"] == request_id
    assert (request_id == sent) is kept
    if not kept:
        assert len(request_id) == 32
        assert health.headers["X-Request-ID"] not in (request_id, sent)


def test_access_lines_are_json_with_route_status_duration_and_request_id(make_small_app, caplog):
    client = TestClient(make_small_app(MemoryStateStore()))
    with caplog.at_level(logging.INFO, logger="perkrank.access"):
        get_offers(client, SECRET_MEMBER, **{"X-Request-ID": "req-1"})

    (record,) = [record for record in caplog.records if record.name == "perkrank.access"]
    line = json.loads(JsonFormatter().format(record))
    assert set(line) == {
        "ts",
        "level",
        "logger",
        "message",
        "request_id",
        "method",
        "route",
        "status",
        "duration_ms",
    }
    assert line["request_id"] == "req-1"
    assert (line["route"], line["status"], line["level"]) == (OFFERS_ROUTE, 200, "INFO")
    assert line["message"] == f"GET {OFFERS_ROUTE} 200"
    assert 0 < line["duration_ms"] < 10_000
    assert line["ts"].endswith("+00:00")
    assert SECRET_MEMBER not in JsonFormatter().format(record)


def test_log_lines_within_a_request_carry_its_id(make_small_app):
    client = TestClient(make_small_app(unreachable_store()))
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    serving_log = logging.getLogger("perkrank.serving")
    serving_log.addHandler(handler)
    try:
        get_offers(client, "alice", **{"X-Request-ID": "req-2"})
    finally:
        serving_log.removeHandler(handler)

    (line,) = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert line["request_id"] == "req-2"
    assert line["level"] == "WARNING"
    assert line["message"].startswith("state store unavailable: Redis at 127.0.0.1:")


# ---------------------------------------------------------------- several processes


@contextmanager
def two_workers(perkrank_serve, files, redis_url, key_prefix, stderr_path) -> Iterator[str]:
    """`perkrank serve --workers 2` on a free port, sharing one Redis, until the block ends;
    yields its base URL. Its stderr goes to `stderr_path`."""
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("PROMETHEUS_")
    }
    environment |= {
        "PERKRANK_REDIS_URL": redis_url,
        "PERKRANK_KEY_PREFIX": key_prefix,
        "PERKRANK_CATALOG_DATE": "2026-06-15",
        "PERKRANK_CAPS_PATH": str(files["caps"]),
        "PERKRANK_APP_API_KEYS": APP_KEY,
        "PERKRANK_ADMIN_API_KEYS": ADMIN_KEY,
    }
    arguments = ["--workers", "2", "--data", str(files["data"]), "--model", str(files["bundle"])]
    with perkrank_serve(arguments, environment, stderr_path, processes=2) as base_url:
        yield base_url


async def fetch_offers(base_url, member_ids) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=8)
    async with httpx.AsyncClient(base_url=base_url, headers=APP, limits=limits) as http:
        return await asyncio.gather(*(http.get(f"/v1/members/{m}/offers") for m in member_ids))


def test_workers_share_metrics_and_log_json_without_member_ids_or_keys(
    perkrank_serve, small_service_files, redis_url, redis_key_prefix, tmp_path
):
    stderr_path = tmp_path / "stderr.log"
    files = small_service_files
    with two_workers(perkrank_serve, files, redis_url, redis_key_prefix, stderr_path) as base_url:
        responses = asyncio.run(fetch_offers(base_url, ["alice", SECRET_MEMBER] * 20))
        with httpx.Client(base_url=base_url) as http:
            scrapes = [metrics(http) for _ in range(4)]

    assert {response.status_code for response in responses} == {200}
    served = sum(len(response.json()["offers"]) for response in responses)
    count = {"method": "GET", "route": OFFERS_ROUTE, "status": "200"}
    for samples in scrapes:
        assert sample(samples, "perkrank_request_duration_seconds_count", **count) == 40
        assert sample(samples, "perkrank_offers_served_total", channel="app") == served
    model_info = {
        dict(labels)["pid"]: (dict(labels)["version"], value)
        for (name, labels), value in scrapes[-1].items()
        if name == "perkrank_model_info"
    }
    assert model_info
    assert set(model_info.values()) == {("local:bundle", 1)}

    text = stderr_path.read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    assert {"ts", "level", "logger", "message", "request_id"} <= set(lines[0])
    access = [line for line in lines if line["logger"] == "perkrank.access"]
    offers_lines = [line for line in access if line["route"] == OFFERS_ROUTE]
    assert len(offers_lines) == 40
    assert len({line["request_id"] for line in offers_lines}) == 40
    assert any(line["logger"].startswith("uvicorn") for line in lines)
    for secret in (SECRET_MEMBER, APP_KEY, ADMIN_KEY):
        assert secret not in text
