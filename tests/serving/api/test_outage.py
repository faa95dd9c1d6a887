"""Redis outages: every request fails with 503 (never offers that skipped opt-outs or
caps), readyz turns 503, and service comes back by itself once Redis does.

Each test runs its own redis-server on a free port (the `private_redis` fixture) and stops,
freezes or restarts only it.
The app talks to it with the production store timeout, over real HTTP.
"""

import asyncio
import signal
import time
from collections.abc import Iterator

import httpx
import pytest

from perkrank.serving.state.redis_store import RedisStateStore

STORE_TIMEOUT_MS = 100
"""ServeConfig.store_timeout_ms's default."""
APP = {"X-API-Key": "app-key-for-tests-0001"}
UNAVAILABLE = {"detail": "state store unavailable; retry shortly"}


@pytest.fixture
def base_url(private_redis, make_small_app, live_server) -> Iterator[str]:
    store = RedisStateStore(private_redis.url, "perkrank-outage", STORE_TIMEOUT_MS)
    with live_server(make_small_app(store)) as url:
        yield url
    asyncio.run(store.close())


def assert_unavailable(http: httpx.Client) -> None:
    """Offers, preferences, events and readiness answer 503 (timed in benchmarks/live_timings)."""
    event = {
        "type": "click",
        "member_id": "alice",
        "offer_id": "glow-beauty",
        "channel": "app",
        "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    calls = [("GET", f"/v1/members/{member_id}/offers", {}) for member_id in ("alice", "bob")] * 3
    calls += [
        ("GET", "/v1/members/alice/preferences", {}),
        ("POST", "/v1/events", {"json": {"events": [event]}}),
    ]
    for method, path, options in calls:
        response = http.request(method, path, headers=APP, **options)
        assert response.status_code == 503, response.text
        assert response.json() == UNAVAILABLE
        assert response.headers["Retry-After"] == "1"
    ready = http.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["status"] == "unavailable"


def offers(http: httpx.Client, member_id: str) -> list[str]:
    response = http.get(f"/v1/members/{member_id}/offers", headers=APP)
    assert response.status_code == 200, response.text
    return [item["offer_id"] for item in response.json()["offers"]]


def test_stopped_redis_gives_503s_and_a_restart_brings_offers_back(private_redis, base_url):
    with httpx.Client(base_url=base_url, timeout=5) as http:
        assert len(offers(http, "bob")) == 2

        private_redis.stop()
        assert_unavailable(http)
        private_redis.start()

        assert len(offers(http, "bob")) == 2
        assert http.get("/readyz").status_code == 200


def test_frozen_redis_times_out_into_503s_and_recovers(private_redis, base_url):
    with httpx.Client(base_url=base_url, timeout=5) as http:
        opt_out = {"opt_out_all": True}
        admin = {"X-API-Key": "admin-key-for-tests-0001"}
        assert http.put("/v1/members/alice/preferences", json=opt_out, headers=admin).is_success
        assert offers(http, "alice") == []

        private_redis.process.send_signal(signal.SIGSTOP)
        assert_unavailable(http)
        private_redis.process.send_signal(signal.SIGCONT)

        assert offers(http, "alice") == []
        assert len(offers(http, "bob")) == 2
        assert http.get("/readyz").status_code == 200
