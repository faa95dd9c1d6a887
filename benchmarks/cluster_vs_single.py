"""The offers request's store call (`select`) on one Redis server and on a three-primary Redis
Cluster: latency (p50, p99) one call at a time, and calls per second with `IN_FLIGHT` at once,
same machine, same run.

Two rule sets: member caps only (on Cluster one script call on the member's slot, as on one
server), and member caps with an offer_total cap and budgets on half the offers (on Cluster
also a reservation call on the offers' slots before it and a release after it). The floor is
a PING round trip to the single server through redis-py in the same run.

Setup: a private redis-server and a private three-primary cluster on free loopback ports
(no persistence), `CANDIDATES` candidates of 200 offers per request, `LIMIT` chosen, a new
member per request. Results: benchmarks/results/cluster_vs_single.{md,json}.

    .venv/bin/python -m benchmarks.cluster_vs_single [--requests 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import redis

from benchmarks.redis_cluster import RedisClusterProcesses
from benchmarks.redis_server import redis_server
from perkrank.config import CapRule
from perkrank.serving.domain.selection import Candidate, SelectionRequest
from perkrank.serving.state.ports import StateStore
from perkrank.serving.state.redis_cluster import RedisClusterStateStore
from perkrank.serving.state.redis_store import RedisStateStore

RESULTS = Path(__file__).with_name("results")
CANDIDATES, LIMIT, IN_FLIGHT, TIMEOUT_MS = 40, 10, 32, 2000
MEMBER_CAPS = [
    CapRule(name="offer_day", scope="member_offer", limit=3, window="day"),
    CapRule(name="partner_week", scope="member_partner", limit=5, window="week"),
    CapRule(name="channel_day", scope="member_channel", limit=50, window="day"),
]
OFFER_WIDE = [CapRule(name="offer_total", scope="offer_total", limit=10**9, window="total")]
OFFERS = [Candidate(f"offer-{n}", f"partner-{n % 20}", f"category-{n % 8}") for n in range(200)]
BUDGETED = [replace(offer, budget=10**9 if n % 2 else None) for n, offer in enumerate(OFFERS)]
CASES = [
    ("member caps", MEMBER_CAPS, OFFERS),
    ("+ offer_total cap, budgets", MEMBER_CAPS + OFFER_WIDE, BUDGETED),
]


def requests(
    count: int, rules: list[CapRule], offers: list[Candidate], seed: int
) -> list[SelectionRequest]:
    generator = random.Random(seed)
    made = []
    for n in range(count):
        candidates = generator.sample(offers, CANDIDATES)
        member_id = f"member-{seed}-{n}"
        made.append(
            SelectionRequest(member_id, "app", time.time(), LIMIT, 3, candidates, candidates, rules)
        )
    return made


async def one_at_a_time(call: Callable[[], Awaitable[object]], count: int) -> list[float]:
    """Milliseconds of `count` calls, each awaited before the next."""
    times = []
    for _ in range(count):
        start = time.perf_counter()
        await call()
        times.append((time.perf_counter() - start) * 1000)
    return times


async def latencies(store: StateStore, batch: list[SelectionRequest]) -> list[float]:
    calls = iter(batch)
    return await one_at_a_time(lambda: store.select(next(calls)), len(batch))


async def per_second(store: StateStore, batch: list[SelectionRequest]) -> float:
    """Selects per second with IN_FLIGHT in flight (each worker sends its next when one ends)."""
    calls = iter(batch)

    async def worker() -> None:
        for request in calls:
            await store.select(request)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
    return len(batch) / (time.perf_counter() - start)


def percentile(times: list[float], share: float) -> float:
    return statistics.quantiles(times, n=100, method="inclusive")[round(share * 100) - 1]


def measure(
    store: StateStore, rules: list[CapRule], offers: list[Candidate], count: int, seed: int
) -> dict[str, float]:
    async def run() -> dict[str, float]:
        await latencies(
            store, requests(200, rules, offers, seed + 1)
        )  # warm-up: connections, scripts
        times = await latencies(store, requests(count, rules, offers, seed))
        rate = await per_second(store, requests(count, rules, offers, seed + 2))
        return {
            "p50_ms": statistics.median(times),
            "p99_ms": percentile(times, 0.99),
            "selects_per_s": rate,
        }

    return asyncio.run(run())


def ping_floor_ms(port: int, count: int) -> float:
    client = redis.Redis(port=port)
    for _ in range(200):
        client.ping()
    times = []
    for _ in range(count):
        start = time.perf_counter()
        client.ping()
        times.append((time.perf_counter() - start) * 1000)
    client.close()
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    count = parser.parse_args().requests
    with tempfile.TemporaryDirectory() as directory, redis_server() as (_, port):
        cluster = RedisClusterProcesses(Path(directory))
        cluster.start()
        try:
            stores: dict[str, StateStore] = {
                "single": RedisStateStore(f"redis://127.0.0.1:{port}/0", "bench", TIMEOUT_MS),
                "cluster": RedisClusterStateStore(cluster.url, "bench", TIMEOUT_MS),
            }
            floor = ping_floor_ms(port, count)
            rows = []
            for seed, (case, rules, offers) in enumerate(CASES):
                found = {
                    name: measure(store, rules, offers, count, 10 * seed)
                    for name, store in stores.items()
                }
                rows.append({"rules": case, **found})
        finally:
            cluster.stop()
    write(rows, floor, count)


def write(rows: list[dict], floor: float, count: int) -> None:
    RESULTS.mkdir(exist_ok=True)
    document = {
        "requests": count,
        "candidates": CANDIDATES,
        "limit": LIMIT,
        "in_flight": IN_FLIGHT,
        "ping_floor_ms": floor,
        "rows": rows,
    }
    (RESULTS / "cluster_vs_single.json").write_text(json.dumps(document, indent=2) + "\n")
    lines = [
        "# Redis Cluster vs one Redis server: the offers request's store call",
        "",
        "Machine: 2 cores, shared; `python -m benchmarks.cluster_vs_single`. "
        f"{count} selects per row one at a time (a new member each, {CANDIDATES} candidates, "
        f"{LIMIT} chosen), then {count} "
        f"with {IN_FLIGHT} in flight. Cluster: three primaries on this machine, no replicas. "
        f"Floor: a redis-py PING round trip to the single server, median {floor:.3f} ms. "
        "The cores are shared with other jobs: p99 and selects/s swing between runs (p99 by "
        "10×); the p50 ratios are the figure to compare.",
        "",
        "| rules | store | p50 ms | p99 ms | p50 / floor | p99 / floor | selects/s |"
        " cluster p50 / single p50 | cluster p99 / single p99 |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        for name in ("single", "cluster"):
            found = row[name]
            ratios = (
                f"{row['cluster']['p50_ms'] / row['single']['p50_ms']:.2f} | "
                f"{row['cluster']['p99_ms'] / row['single']['p99_ms']:.2f}"
                if name == "cluster"
                else "1.0 | 1.0"
            )
            lines.append(
                f"| {row['rules']} | {name} | {found['p50_ms']:.3f} | {found['p99_ms']:.3f} | "
                f"{found['p50_ms'] / floor:.1f} | {found['p99_ms'] / floor:.1f} | "
                f"{found['selects_per_s']:.0f} | {ratios} |"
            )
    (RESULTS / "cluster_vs_single.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
