"""The load: open-loop schedules in generator processes, one rate at a time, the ramp that
stops at saturation, the `GET /healthz` floor, and the run with live changes (a cap change
and a model swap in the middle of its measured window).

Requests go out on schedule whatever the responses; latency counts from the scheduled send
time, so a slow server cannot hide its queueing.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import threading
import time
import urllib.request
from collections import Counter
from contextlib import suppress
from dataclasses import dataclass
from multiprocessing.pool import Pool
from typing import TYPE_CHECKING

import numpy as np

from benchmarks.serve_load.client import Client
from benchmarks.serve_load.machine import cpu_seconds
from benchmarks.serve_load.setup import ADMIN_KEY, APP_KEY, set_champion

if TYPE_CHECKING:
    from perkrank.config import RegistryConfig

UNKNOWN_MEMBER_SHARE = 0.05
APP_CHANNEL_SHARE = 0.7
LIMIT = 10
GENERATORS = 2
CONNECTIONS_PER_GENERATOR = 8
MAX_IN_FLIGHT_PER_GENERATOR = 200
"""Scheduled requests beyond this many unanswered ones are not sent (counted as errors)."""
REQUEST_TIMEOUT_SECONDS = 10.0
FLOOR_PATH = "/healthz"
"""No key, store or model: the server's HTTP stack and the generators alone."""
SATURATED_SHARE = 0.9
"""A rate whose achieved rate falls below this share of the target ends the ramp."""


@dataclass(frozen=True)
class LoadSpec:
    """One generator process's share of one rate."""

    base_url: str
    paths: list[str]
    rate: float
    warm_up_seconds: float
    duration_seconds: float


@dataclass(frozen=True)
class Runner:
    """Runs rates against one server with a pool of GENERATORS generator processes; each
    result is also printed to stderr as one JSON line."""

    pool: Pool
    members: list[str]
    base_url: str
    pids: dict[str, int]
    """Processes whose CPU seconds are counted, by name."""
    warm_up: float
    duration: float

    def floor(self, rates: list[float]) -> list[dict]:
        """`GET FLOOR_PATH` at each rate."""
        return [_printed(self.run(rate, FLOOR_PATH)) for rate in rates]

    def ramp(self, rates: list[float]) -> list[dict]:
        """Offer requests at each rate, up to the first one achieved below SATURATED_SHARE."""
        results = []
        for rate in rates:
            result = _printed(self.run(rate))
            results.append(result)
            if result["achieved_rate"] < SATURATED_SHARE * rate:
                break
        return results

    def live(self, rate: float, registry: RegistryConfig) -> dict:
        """Offer requests at `rate` while LiveChanges changes the caps and swaps the model."""
        changes = LiveChanges(self.base_url, registry, self.members[0], self.warm_up, self.duration)
        changes.start()
        result = self.run(rate)
        changes.join()
        result["live_changes"] = changes.facts
        return _printed(result)

    def run(self, rate: float, path: str | None = None) -> dict:
        """One rate split over the generator processes; merged percentiles and CPU per
        request. Requests are offer requests, or all for `path` when given."""
        return summarize(rate, *self.run_parts(rate, path))

    def run_parts(
        self, rate: float, path: str | None = None
    ) -> tuple[list[dict], dict[str, float], float]:
        """`run`'s raw material: each generator's result, CPU seconds by process, wall."""
        share = rate / GENERATORS
        count = int(share * (self.warm_up + self.duration)) + 1
        specs = [
            LoadSpec(
                self.base_url,
                [path] if path else request_paths(self.members, count, int(rate) * 100 + number),
                share,
                self.warm_up,
                self.duration,
            )
            for number in range(GENERATORS)
        ]
        cpu_before = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        wall_before = time.perf_counter()
        parts = self.pool.map(generate_load, specs)
        wall = time.perf_counter() - wall_before
        cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in self.pids.items()}
        cpu["load generators"] = sum(part["cpu_seconds"] for part in parts)
        return parts, cpu, wall


def _printed(result: dict) -> dict:
    print(json.dumps(result), file=sys.stderr, flush=True)
    return result


def request_paths(members: list[str], count: int, seed: int) -> list[str]:
    """`count` offer requests: mostly known members, a few unknown ones, app or web."""
    rng = random.Random(seed)
    paths = []
    for number in range(count):
        if rng.random() < UNKNOWN_MEMBER_SHARE:
            member_id = f"NEW-{seed}-{number}"
        else:
            member_id = rng.choice(members)
        channel = "app" if rng.random() < APP_CHANNEL_SHARE else "web"
        paths.append(f"/v1/members/{member_id}/offers?channel={channel}&limit={LIMIT}")
    return paths


def generate_load(spec: LoadSpec) -> dict:
    """Run one generator process's schedule (on uvloop when installed)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(send_on_schedule(spec))
    return uvloop.run(send_on_schedule(spec))


async def send_on_schedule(spec: LoadSpec) -> dict:
    """Send `spec.rate` req/s on schedule; latency from the scheduled time, for requests
    scheduled after the warm-up. Returns raw latencies, errors by kind and timings."""
    host, _, port = spec.base_url.removeprefix("http://").partition(":")
    client = Client(host, int(port), CONNECTIONS_PER_GENERATOR, APP_KEY)
    await client.open()
    total = int(spec.rate * (spec.warm_up_seconds + spec.duration_seconds))
    measured_from = int(spec.rate * spec.warm_up_seconds)
    send_lags: list[float] = []
    cpu_start = time.process_time()
    start = time.perf_counter() + 0.05
    sent = 0
    while sent < total:
        now = time.perf_counter()
        due = min(total, int((now - start) * spec.rate) + 1)
        for index in range(sent, due):
            scheduled = start + index / spec.rate
            measured = index >= measured_from
            if client.in_flight >= MAX_IN_FLIGHT_PER_GENERATOR:
                if measured:
                    client.errors["not sent: generator in-flight bound"] += 1
                continue
            if measured:
                send_lags.append(now - scheduled)
            client.send(spec.paths[index % len(spec.paths)], scheduled, measured)
        sent = max(sent, due)
        await asyncio.sleep(max(0.0, start + sent / spec.rate - time.perf_counter()))
    client.schedule_done = True
    if client.in_flight > 0:
        with suppress(TimeoutError):
            await asyncio.wait_for(client.all_answered.wait(), REQUEST_TIMEOUT_SECONDS)
    finished = time.perf_counter()
    client.errors["timeout"] += client.in_flight
    return {
        "latencies": client.latencies,
        "scheduled": client.scheduled,
        "send_lags": send_lags,
        "errors": {kind: count for kind, count in client.errors.items() if count},
        "measured": total - measured_from,
        "measure_seconds": finished - (start + measured_from / spec.rate),
        "responses": client.responses,
        "cpu_seconds": time.process_time() - cpu_start,
    }


def summarize(rate: float, parts: list[dict], cpu: dict[str, float], wall: float) -> dict:
    """Achieved rate, errors and latency percentiles (ms) of the measured window, from the
    generators' raw `parts` (latencies in seconds), with CPU per request (CPU seconds of the
    whole run over the responses it got, warm-up included) and cores busy."""
    latencies = np.concatenate([np.asarray(part["latencies"]) for part in parts]) * 1000
    send_lags = np.concatenate([np.asarray(part["send_lags"]) for part in parts]) * 1000
    errors: Counter[str] = Counter()
    for part in parts:
        errors.update(part["errors"])
    measured = sum(part["measured"] for part in parts)
    responses = sum(part["responses"] for part in parts)
    ok = len(latencies)

    def percentile(values: np.ndarray, q: float) -> float | None:
        return round(float(np.percentile(values, q)), 2) if len(values) else None

    return {
        "target_rate": rate,
        "achieved_rate": round(ok / max(part["measure_seconds"] for part in parts), 1),
        "requests": measured,
        "ok": ok,
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "p99_ms": percentile(latencies, 99),
        "max_ms": round(float(latencies.max()), 2) if ok else None,
        "send_lag_p99_ms": percentile(send_lags, 99),
        "cpu_ms_per_request": {
            name: round(seconds / max(responses, 1) * 1000, 3) for name, seconds in cpu.items()
        },
        "cores_busy": {name: round(seconds / wall, 2) for name, seconds in cpu.items()},
    }


class LiveChanges(threading.Thread):
    """During a measured window: a cap change at 1/3, a model swap (champion → version 2, then
    `POST /v1/admin/reload`) at 1/2; then waits until responses carry the new model."""

    def __init__(
        self, base_url: str, registry: RegistryConfig, member_id: str, start_in: float, span: float
    ) -> None:
        super().__init__(daemon=True)
        self.base_url, self.registry, self.member_id = base_url, registry, member_id
        self.start_in, self.span = start_in, span
        self.facts: dict = {}

    def run(self) -> None:
        started = time.perf_counter()
        caps = admin_call(self.base_url, "GET", "/v1/caps")
        rules = [rule | {"limit": rule["limit"] + 1} for rule in caps["rules"]]
        wait_until(started + self.start_in + self.span / 3)
        changed = admin_call(self.base_url, "PUT", "/v1/caps", {"rules": rules})
        self.facts["caps_version"] = f"{caps['version']} → {changed['version']}"
        self.facts["cap_change_at_s"] = round(time.perf_counter() - started, 2)
        model_before = self.model_version()
        wait_until(started + self.start_in + self.span / 2)
        swap_started = time.perf_counter()
        set_champion(self.registry, "2")
        admin_call(self.base_url, "POST", "/v1/admin/reload")
        self.facts["model_swap_asked_at_s"] = round(swap_started - started, 2)
        deadline = swap_started + 30
        model_after = self.model_version()
        while model_after == model_before and time.perf_counter() < deadline:
            model_after = self.model_version()
        self.facts["model_version"] = f"{model_before} → {model_after}"
        self.facts["model_swap_seconds"] = round(time.perf_counter() - swap_started, 2)

    def model_version(self) -> str:
        request = urllib.request.Request(
            f"{self.base_url}/v1/members/{self.member_id}/offers?limit=1",
            headers={"X-API-Key": APP_KEY},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.load(response)["model_version"]


def admin_call(base_url: str, method: str, path: str, body: dict | None = None) -> dict:
    """One admin API call with the benchmark's admin key; the decoded JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base_url + path,
        data=data,
        method=method,
        headers={"X-API-Key": ADMIN_KEY, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def wait_until(moment: float) -> None:
    """Sleep until `moment` (time.perf_counter); the benchmark's schedule, not a test."""
    time.sleep(max(0.0, moment - time.perf_counter()))
