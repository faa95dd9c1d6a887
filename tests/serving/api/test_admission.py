"""Admission: a burst above `max_in_flight` waits in the queue and is answered; only a full
queue or a passed deadline is refused, with a JSON 503 and Retry-After. Real servers on
127.0.0.1; requests held in progress by a gated store, so no outcome depends on timing."""

import asyncio
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
from prometheus_client.parser import text_string_to_metric_families

from perkrank.serving.state.memory import MemoryStateStore

APP_KEY = "app-key-for-tests-0001"
APP = {"X-API-Key": APP_KEY}
OFFERS = "/v1/members/alice/offers"
BUSY = {"detail": "server busy; retry shortly"}


class GatedStore(MemoryStateStore):
    """Offers requests wait in `select` until `gate` opens; `entered` tells one arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.entered = threading.Event()

    async def select(self, request):
        self.entered.set()
        await asyncio.to_thread(self.gate.wait, 60)
        return await super().select(request)


def metric(http: httpx.Client, name: str, **labels: str) -> float:
    """One sample of /metrics (0 when absent); /metrics is never queued."""
    for family in text_string_to_metric_families(http.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def wait_until_queued(http: httpx.Client, count: int) -> None:
    """Poll the queue gauge until `count` requests wait (bounded: 10,000 scrapes)."""
    for _ in range(10_000):
        if metric(http, "perkrank_requests_queued") == count:
            return
    raise AssertionError(f"never {count} queued")


def test_a_full_queue_refuses_at_once_with_json_and_retry_after(make_small_app, live_server):
    store = GatedStore()
    app = make_small_app(store, max_in_flight=1, max_queued=1, queue_timeout_ms=60_000)
    with (
        live_server(app) as url,
        httpx.Client(base_url=url, headers=APP, timeout=60) as http,
        ThreadPoolExecutor(2) as pool,
    ):
        refused_before = metric(http, "perkrank_requests_refused_total", reason="queue_full")
        running = pool.submit(http.get, OFFERS)
        assert store.entered.wait(30)
        queued = pool.submit(http.get, OFFERS)
        wait_until_queued(http, 1)

        refused = http.get(OFFERS)
        assert refused.status_code == 503
        assert refused.json() == BUSY
        assert refused.headers["Retry-After"] == "1"
        assert refused.headers["content-type"] == "application/json"
        assert http.get("/healthz").status_code == 200  # probes skip the queue

        store.gate.set()
        assert running.result().status_code == 200
        assert queued.result().status_code == 200
        assert metric(http, "perkrank_requests_queued") == 0
        after = metric(http, "perkrank_requests_refused_total", reason="queue_full")
        assert after == refused_before + 1


def test_a_request_queued_past_its_deadline_gets_503(make_small_app, live_server):
    store = GatedStore()
    app = make_small_app(store, max_in_flight=1, max_queued=8, queue_timeout_ms=20)
    with (
        live_server(app) as url,
        httpx.Client(base_url=url, headers=APP, timeout=60) as http,
        ThreadPoolExecutor(1) as pool,
    ):
        timed_out_before = metric(http, "perkrank_requests_refused_total", reason="queue_timeout")
        running = pool.submit(http.get, OFFERS)
        assert store.entered.wait(30)

        late = http.get(OFFERS)  # the only slot stays taken until the gate opens
        assert late.status_code == 503
        assert late.json() == BUSY
        assert late.headers["Retry-After"] == "1"

        store.gate.set()
        assert running.result().status_code == 200
        assert http.get(OFFERS).status_code == 200  # the slot came back
        after = metric(http, "perkrank_requests_refused_total", reason="queue_timeout")
        assert after == timed_out_before + 1


async def burst(base_url: str, count: int) -> list[httpx.Response]:
    """`count` offers requests at once, each on its own connection."""
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base_url, headers=APP, limits=limits, timeout=60) as http:
        return await asyncio.gather(*(http.get(OFFERS) for _ in range(count)))


def test_a_burst_of_200_to_one_perkrank_serve_process_is_all_answered(
    perkrank_serve, small_service_files, redis_url, redis_key_prefix, tmp_path
):
    files = small_service_files
    environment = os.environ | {
        "PERKRANK_REDIS_URL": redis_url,
        "PERKRANK_KEY_PREFIX": redis_key_prefix,
        "PERKRANK_STORE_TIMEOUT_MS": "2000",
        # max_in_flight and max_queued keep their defaults; the deadline is generous because
        # this machine is shared (how fast a burst drains is for benchmarks, not tests).
        "PERKRANK_QUEUE_TIMEOUT_MS": "30000",
        "PERKRANK_CATALOG_DATE": "2026-06-15",
        "PERKRANK_CAPS_PATH": str(files["caps"]),
        "PERKRANK_APP_API_KEYS": APP_KEY,
        "PERKRANK_ADMIN_API_KEYS": "admin-key-for-tests-0001",
    }
    arguments = ["--data", str(files["data"]), "--model", str(files["bundle"])]
    with perkrank_serve(arguments, environment, tmp_path / "serve.log") as base_url:
        responses = asyncio.run(burst(base_url, 200))
    assert [response.status_code for response in responses] == [200] * 200
    assert all(response.json()["offers"] for response in responses)
