"""Many requests at once while Redis is frozen: each fails on its own timeout, never behind a
queue of reconnects. The offers pipe makes one connection attempt that all waiting requests
share, and the blocking calls let one call at a time try the store while the rest fail at
once; after SIGCONT the same process serves again. (How fast: benchmarks/live_timings.py.)"""

import asyncio
import signal

import httpx
import pytest

from perkrank.serving.state.redis_store import RedisStateStore

STORE_TIMEOUT_MS = 1000
"""Long enough that every one of the concurrent requests arrives within one attempt."""
APP = {"X-API-Key": "app-key-for-tests-0001"}
UNAVAILABLE = {"detail": "state store unavailable; retry shortly"}
CONCURRENT = 64


@pytest.fixture
def served(private_redis, make_small_app, live_server):
    store = RedisStateStore(private_redis.url, "perkrank-outage", STORE_TIMEOUT_MS)
    with live_server(make_small_app(store)) as url:
        yield url, store
    asyncio.run(store.close())


async def at_once(base_url: str, path: str) -> list[httpx.Response]:
    """`CONCURRENT` GETs of `path` at once."""
    limits = httpx.Limits(max_connections=CONCURRENT)
    async with httpx.AsyncClient(base_url=base_url, headers=APP, limits=limits, timeout=60) as http:
        return await asyncio.gather(*(http.get(path) for _ in range(CONCURRENT)))


def assert_all_unavailable(responses: list[httpx.Response]) -> None:
    assert [response.status_code for response in responses] == [503] * CONCURRENT
    assert all(response.json() == UNAVAILABLE for response in responses)
    assert all(response.headers["Retry-After"] == "1" for response in responses)


def test_concurrent_offers_share_one_reconnect_while_redis_is_frozen(private_redis, served):
    base_url, store = served
    offers = "/v1/members/bob/offers"
    with httpx.Client(base_url=base_url, headers=APP, timeout=60) as http:
        assert http.get(offers).status_code == 200
        private_redis.process.send_signal(signal.SIGSTOP)
        assert http.get(offers).status_code == 503  # the open connection timed out
        attempts = store.select_connection_attempts

        assert_all_unavailable(asyncio.run(at_once(base_url, offers)))
        assert store.select_connection_attempts - attempts <= 2  # the old lock: 64

        private_redis.process.send_signal(signal.SIGCONT)
        assert http.get(offers).status_code == 200


def test_concurrent_blocking_calls_fail_at_once_behind_one_probe(private_redis, served):
    base_url, store = served
    preferences = "/v1/members/alice/preferences"
    with httpx.Client(base_url=base_url, headers=APP, timeout=60) as http:
        assert http.get(preferences).status_code == 200
        private_redis.process.send_signal(signal.SIGSTOP)
        assert http.get("/readyz").status_code == 503  # the store is known to have failed
        probes = store.breaker.probes

        assert_all_unavailable(asyncio.run(at_once(base_url, preferences)))
        assert store.breaker.probes - probes <= 2  # one thread per request without it

        private_redis.process.send_signal(signal.SIGCONT)
        assert http.get(preferences).status_code == 200
        assert http.get("/readyz").status_code == 200
