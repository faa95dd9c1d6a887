"""How fast live changes and outages reach `perkrank serve` processes: the timings the tests
check only as conditions (tests assert that a change arrives, never how fast).

- **Cap propagation:** a cap change PUT through one process (1 worker) until every process of a
  second `perkrank serve --workers 2` obeys it (six requests on new connections all see it).
  The processes poll the store every `REFRESH_SECONDS`, so the ratio to that interval is the
  machine-independent figure.
- **503 under an outage:** offers requests while Redis is frozen (SIGSTOP) and while it is
  stopped, against the /healthz floor of the same process in the same run: one at a time,
  and `CONCURRENT` at once (each timed from its own send; target: every one within 250 ms).

Setup: synthetic data (`perkrank generate`), a bundle (`perkrank train --no-register`), a
private redis-server on a free loopback port. Results: benchmarks/results/live_timings.md.

    .venv/bin/python -m benchmarks.live_timings [--rounds 10] [--requests 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from benchmarks.redis_server import free_port, redis_server
from perkrank.serving.live import REFRESH_SECONDS

RESULTS = Path(__file__).with_name("results")
APP_KEY, ADMIN_KEY = "bench-app-key-0001", "bench-admin-key-0001"
APP, ADMIN = {"X-API-Key": APP_KEY}, {"X-API-Key": ADMIN_KEY}
OPEN = {"rules": [{"name": "open", "scope": "member_offer", "limit": 1000, "window": "day"}]}
PAUSED = {"rules": [{"name": "paused", "scope": "member_channel", "limit": 0, "window": "day"}]}
OFFERS_PATH = "/v1/members/M000001/offers?channel=app&limit=5"
LISTENING_LINE, STARTED_LINE = "Uvicorn running on", "Application startup complete"
CONCURRENT = 64
"""Requests sent at once in the concurrent outage rows (the default max_in_flight)."""


def perkrank(*arguments: str, cwd: Path) -> str:
    command = [sys.executable, "-m", "perkrank.cli", *arguments]
    return subprocess.run(command, cwd=cwd, check=True, capture_output=True, text=True).stdout


@contextmanager
def serve(work: Path, environment: dict[str, str], workers: int) -> Iterator[str]:
    """`perkrank serve` on a free port; yields its URL once every worker started."""
    port = free_port()
    command = [sys.executable, "-m", "perkrank.cli", "serve", "--data", "data"]
    command += ["--model", "bundle", "--port", str(port), "--workers", str(workers)]
    process = subprocess.Popen(
        command,
        cwd=work,
        env=environment,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    log, listening, started = [], False, 0
    for line in process.stderr:  # ends if the process does
        log.append(line)
        listening = listening or LISTENING_LINE in line
        started += STARTED_LINE in line
        if listening and started == workers:
            break
    if process.poll() is not None:
        raise RuntimeError("perkrank serve failed:\n" + "".join(log))
    # Keep reading its log: a full pipe would block the server on its next log line.
    threading.Thread(target=process.stderr.read, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.communicate(timeout=60)


def seconds_until(condition: Callable[[], bool]) -> float:
    started = time.perf_counter()
    while not condition():
        pass
    return time.perf_counter() - started


def offers_on_new_connections(url: str, count: int = 6) -> list[int]:
    """How many offers each of `count` requests on new connections got."""
    return [len(httpx.get(url + OFFERS_PATH, headers=APP).json()["offers"]) for _ in range(count)]


def obeyed(paused: bool, *urls: str) -> bool:
    """Every process of every server gives no offers (paused) or some (open)."""
    counts = [count for url in urls for count in offers_on_new_connections(url)]
    return all(count == 0 for count in counts) if paused else all(counts)


def propagation(single: str, pair: str, rounds: int) -> list[float]:
    """Seconds from a PUT through `single` until every process of both obeys it."""
    seconds = []
    for round_number in range(rounds):
        paused = round_number % 2 == 0
        caps = PAUSED if paused else OPEN
        assert httpx.put(single + "/v1/caps", json=caps, headers=ADMIN).status_code == 200
        seconds.append(seconds_until(lambda paused=paused: obeyed(paused, single, pair)))
    return seconds


def request_milliseconds(
    http: httpx.Client, path: str, headers: dict, count: int, status: int = 200
) -> list[float]:
    """Milliseconds of `count` sequential requests, each checked to answer `status`."""
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        answered = http.get(path, headers=headers).status_code
        timings.append((time.perf_counter() - started) * 1000)
        assert answered == status, f"{path}: {answered}, expected {status}"
    return timings


def concurrent_milliseconds(url: str, path: str, rounds: int, status: int) -> list[float]:
    """Milliseconds of `rounds` × `CONCURRENT` GETs of `path` sent at once per round, one per
    open keep-alive connection (raw HTTP/1.1: the client's own cost stays small), each timed
    from its own write to its whole response and checked to answer `status`."""
    host, port = url.removeprefix("http://").split(":")
    headers = "".join(f"{name}: {value}\r\n" for name, value in APP.items())
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{headers}\r\n".encode()

    async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> float:
        started = time.perf_counter()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        answered = int(head.split(b" ", 2)[1])
        assert answered == status, f"{path}: {answered}, expected {status}"
        return (time.perf_counter() - started) * 1000

    async def main() -> list[float]:
        connections = [await asyncio.open_connection(host, int(port)) for _ in range(CONCURRENT)]
        timings: list[float] = []
        try:
            for _ in range(rounds):
                timings += await asyncio.gather(*(exchange(*pair) for pair in connections))
        finally:
            for _, writer in connections:
                writer.close()
        return timings

    return asyncio.run(main())


def outage(redis: subprocess.Popen, url: str, requests: int) -> dict[str, list[float]]:
    rounds = max(1, requests // 10)
    with httpx.Client(base_url=url, timeout=60) as http:
        timings = {
            "healthz": request_milliseconds(http, "/healthz", {}, requests),
            "offers": request_milliseconds(http, OFFERS_PATH, APP, requests),
            f"healthz, {CONCURRENT} concurrent": concurrent_milliseconds(
                url, "/healthz", rounds, 200
            ),
            f"offers, {CONCURRENT} concurrent": concurrent_milliseconds(
                url, OFFERS_PATH, rounds, 200
            ),
        }
        redis.send_signal(signal.SIGSTOP)
        timings["offers, Redis frozen (503)"] = request_milliseconds(
            http, OFFERS_PATH, APP, requests, 503
        )
        timings[f"offers, {CONCURRENT} concurrent, Redis frozen (503)"] = concurrent_milliseconds(
            url, OFFERS_PATH, rounds, 503
        )
        redis.send_signal(signal.SIGCONT)
        seconds_until(lambda: http.get("/readyz").status_code == 200)
        redis.terminate()
        redis.wait(timeout=30)
        timings["offers, Redis stopped (503)"] = request_milliseconds(
            http, OFFERS_PATH, APP, requests, 503
        )
        timings[f"offers, {CONCURRENT} concurrent, Redis stopped (503)"] = concurrent_milliseconds(
            url, OFFERS_PATH, rounds, 503
        )
    return timings


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "max": max(values)}


def write_report(result: dict) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "live_timings.json").write_text(json.dumps(result, indent=2) + "\n")
    prop = result["propagation_seconds"]
    lines = [
        "# Live timings",
        "",
        f"Machine: {os.cpu_count()} cores, shared; `python -m benchmarks.live_timings`. "
        f"{result['rounds']} cap changes, {result['requests']} requests per outage row.",
        "",
        "## Cap change → every process obeys",
        "",
        "| median s | max s | median / poll interval | max / poll interval |",
        "|---:|---:|---:|---:|",
        f"| {prop['median']:.3f} | {prop['max']:.3f} | "
        f"{prop['median'] / REFRESH_SECONDS:.2f} | {prop['max'] / REFRESH_SECONDS:.2f} |",
        "",
        f"Poll interval `REFRESH_SECONDS` = {REFRESH_SECONDS} s. Each check is 12 offers "
        "requests on new connections (6 per server), so the figure includes their time.",
        "",
        "## Requests during an outage (one process, store timeout 100 ms)",
        "",
        f"Concurrent rows: {CONCURRENT} requests sent at once on open connections, "
        f"{result['requests'] // 10 or 1} rounds, each request timed from its own send "
        "(target for the 503 rows: max ≤ 250 ms).",
        "",
        "The ratios divide by the /healthz median of the same kind (one at a time, or "
        f"{CONCURRENT} at once): the floor of this process and client on this machine.",
        "",
        "| request | median ms | max ms | median / healthz median | max / healthz median |",
        "|---|---:|---:|---:|---:|",
    ]
    outage_ms = result["outage_ms"]
    for name, values in outage_ms.items():
        kind = f"healthz, {CONCURRENT} concurrent" if "concurrent" in name else "healthz"
        floor = outage_ms[kind]["median"]
        lines.append(
            f"| {name} | {values['median']:.2f} | {values['max']:.2f} | "
            f"{values['median'] / floor:.1f} | {values['max'] / floor:.1f} |"
        )
    (RESULTS / "live_timings.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--requests", type=int, default=30)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="perkrank-live-") as scratch:
        work = Path(scratch)
        perkrank("generate", "--out", "data", "--members", "2000", "--months", "6", cwd=work)
        trained = perkrank("train", "--data", "data", "--no-register", "--out", "train", cwd=work)
        bundle = next(line for line in trained.splitlines() if line.startswith("bundle: "))
        (work / "bundle").symlink_to(work / bundle.removeprefix("bundle: "))
        with redis_server() as (redis, port):
            environment = os.environ | {
                "PERKRANK_REDIS_URL": f"redis://127.0.0.1:{port}/0",
                "PERKRANK_CATALOG_DATE": "2025-06-15",
                "PERKRANK_APP_API_KEYS": f"bench:{APP_KEY}",
                "PERKRANK_ADMIN_API_KEYS": f"ops:{ADMIN_KEY}",
            }
            with serve(work, environment, 1) as single, serve(work, environment, 2) as pair:
                assert httpx.put(single + "/v1/caps", json=OPEN, headers=ADMIN).is_success
                seconds_until(lambda: obeyed(False, single, pair))
                seconds = propagation(single, pair, arguments.rounds)
                timings = outage(redis, single, arguments.requests)
    result = {
        "rounds": arguments.rounds,
        "requests": arguments.requests,
        "propagation_seconds": summary(seconds),
        "outage_ms": {name: summary(values) for name, values in timings.items()},
    }
    write_report(result)
    print((RESULTS / "live_timings.md").read_text())


if __name__ == "__main__":
    main()
