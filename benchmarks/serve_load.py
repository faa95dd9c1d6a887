"""Open-loop load test of `perkrank serve` with real Redis, on 127.0.0.1 only.

Setup: 100,000 synthetic members, a catalog with ~2,000 offers valid today (the generator's
current-month offers, each cloned with new ids into more offers of the same partner, category,
regions and tier), a bundle trained on that data, a private redis-server on a free port, and
one `perkrank serve` process. Each rate runs for a fixed time; requests are sent on schedule
whatever the responses (open loop), and latency is measured from the scheduled send time, so
a slow server cannot hide its queueing. Results: benchmarks/results/serve_load.md and .json.

    .venv/bin/python benchmarks/serve_load.py [--rates 500,1000,2000,2500,3000] [--duration 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from perkrank.config import CONFIG_DIR, TrainConfig, load_config
from perkrank.demo import history_start
from perkrank.features.synthetic import generate

RESULTS = Path(__file__).parent / "results"
HOST = "127.0.0.1"
APP_KEY = "bench-app-key-0123456789"
MEMBERS = 100_000
ACTIVE_OFFERS = 2_000
GENERATORS = 2
CONNECTIONS_PER_GENERATOR = 16
MAX_IN_FLIGHT_PER_GENERATOR = 256
WARM_UP_SECONDS = 2.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def prepare(work_dir: Path) -> tuple[Path, Path, int]:
    """Data with ~2,000 offers valid today and a trained bundle (both cached in work_dir)."""
    data_dir, bundle_dir = work_dir / "data", work_dir / "train" / "bundle"
    if not (data_dir / "offers.csv").is_file():
        today = datetime.now(UTC).date()
        generate(data_dir, members=MEMBERS, months=12, seed=7, start=history_start(today, 12))
        widen_catalog(data_dir / "offers.csv", pd.Timestamp(today))
    if not (bundle_dir / "bundle.json").is_file():
        from perkrank.training.pipeline import train

        config = load_config(TrainConfig, CONFIG_DIR / "train.yaml")
        config = config.model_copy(
            update={
                "blend": config.blend.model_copy(update={"fit_weights": False}),
                "lightfm": config.lightfm.model_copy(update={"epochs": 5}),
                "bpr": config.bpr.model_copy(update={"iterations": 20}),
            }
        )
        train(data_dir, config, output_dir=work_dir / "train", register=False)
    offers = pd.read_csv(data_dir / "offers.csv", parse_dates=["valid_from", "valid_to"])
    today = pd.Timestamp(datetime.now(UTC).date())
    active = int(((offers["valid_from"] <= today) & (offers["valid_to"] >= today)).sum())
    return data_dir, bundle_dir, active


def widen_catalog(offers_file: Path, today: pd.Timestamp) -> None:
    """Clone today's offers (new ids, same partner, category, regions, tier) up to ~2,000."""
    offers = pd.read_csv(offers_file, dtype=str, keep_default_na=False)
    valid_from = pd.to_datetime(offers["valid_from"])
    valid_to = pd.to_datetime(offers["valid_to"])
    active = offers[(valid_from <= today) & (valid_to >= today)]
    copies = max(ACTIVE_OFFERS // max(len(active), 1) - 1, 0)
    clones = [
        active.assign(offer_id=active["offer_id"] + f"-c{copy}") for copy in range(1, copies + 1)
    ]
    pd.concat([offers, *clones]).to_csv(offers_file, index=False)


@contextmanager
def process(command: list[str], env: dict[str, str], log: Path):
    """A subprocess that is terminated (then killed) on exit, whatever happens."""
    with log.open("w") as output:
        child = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
        try:
            yield child
        finally:
            child.terminate()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()


def wait_until_ready(url: str, child: subprocess.Popen, timeout_seconds: float) -> None:
    """Poll `url` until it answers 200; fail if the process exits or time runs out."""
    import urllib.request

    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        try:  # wait a little for the process to exit; it staying up is the normal case
            child.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            continue
        raise RuntimeError(f"{child.args[0]} exited with {child.returncode}")
    raise TimeoutError(f"{url} not ready after {timeout_seconds}s")


async def generate_load(
    base_url: str, member_ids: list[str], rate: float, duration: float, seed: int
) -> dict:
    """Send `rate` req/s for `duration` s on schedule; latencies from the scheduled time."""
    import aiohttp

    rng = random.Random(seed)
    connector = aiohttp.TCPConnector(limit=CONNECTIONS_PER_GENERATOR)
    headers = {"X-API-Key": APP_KEY}
    latencies: list[float] = []
    errors: dict[str, int] = {}
    in_flight = asyncio.Semaphore(MAX_IN_FLIGHT_PER_GENERATOR)
    total = int(rate * duration)

    async def one(session: aiohttp.ClientSession, scheduled: float, url: str) -> None:
        try:
            async with session.get(url, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    errors[f"http {response.status}"] = errors.get(f"http {response.status}", 0) + 1
                    return
            latencies.append(time.perf_counter() - scheduled)
        except (aiohttp.ClientError, TimeoutError) as error:
            errors[type(error).__name__] = errors.get(type(error).__name__, 0) + 1
        finally:
            in_flight.release()

    tasks = []
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.perf_counter() + 0.05
        for index in range(total):
            scheduled = start + index / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if in_flight.locked():
                errors["generator saturated"] = errors.get("generator saturated", 0) + 1
                continue
            await in_flight.acquire()
            member_id = rng.choice(member_ids) if rng.random() < 0.95 else f"NEW{index}"
            channel = "app" if rng.random() < 0.7 else "web"
            url = f"{base_url}/v1/members/{member_id}/offers?channel={channel}&limit=10"
            tasks.append(asyncio.create_task(one(session, scheduled, url)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    return {"sent": total, "latencies": latencies, "errors": errors, "elapsed": elapsed}


def _generator(arguments: tuple) -> dict:
    return asyncio.run(generate_load(*arguments))


def run_rate(pool, base_url: str, member_ids: list[str], rate: float, duration: float) -> dict:
    """One rate, split over the generator processes; merged latency percentiles."""
    parts = pool.map(
        _generator,
        [(base_url, member_ids, rate / GENERATORS, duration, seed) for seed in range(GENERATORS)],
    )
    latencies = np.array([value for part in parts for value in part["latencies"]]) * 1000
    errors: dict[str, int] = {}
    for part in parts:
        for kind, count in part["errors"].items():
            errors[kind] = errors.get(kind, 0) + count
    elapsed = max(part["elapsed"] for part in parts)
    ok = len(latencies)
    percentile = lambda q: round(float(np.percentile(latencies, q)), 2) if ok else None  # noqa: E731
    return {
        "target_rate": rate,
        "achieved_rate": round(ok / elapsed, 1),
        "requests": ok,
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "p50_ms": percentile(50),
        "p95_ms": percentile(95),
        "p99_ms": percentile(99),
        "max_ms": round(float(latencies.max()), 2) if ok else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rates", default="500,1000,2000,2500,3000")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--work-dir", type=Path, default=Path("var/bench/serve"))
    arguments = parser.parse_args()
    rates = [float(rate) for rate in arguments.rates.split(",")]
    arguments.work_dir.mkdir(parents=True, exist_ok=True)
    data_dir, bundle_dir, active_offers = prepare(arguments.work_dir)
    member_ids = pd.read_csv(data_dir / "members.csv", usecols=["member_id"])["member_id"].tolist()

    redis_port, serve_port = free_port(), free_port()
    env = os.environ | {
        "PERKRANK_REDIS_URL": f"redis://{HOST}:{redis_port}/0",
        "PERKRANK_APP_API_KEYS": f"bench:{APP_KEY}",
        "PERKRANK_KEY_PREFIX": "bench",
    }
    base_url = f"http://{HOST}:{serve_port}"
    results = []
    with ExitStack() as stack:
        stack.enter_context(
            process(
                [
                    shutil.which("redis-server") or "redis-server",
                    "--bind",
                    HOST,
                    "--port",
                    str(redis_port),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ],
                env,
                arguments.work_dir / "redis.log",
            )
        )
        server = stack.enter_context(
            process(
                [
                    sys.executable,
                    "-m",
                    "perkrank.cli",
                    "serve",
                    "--data",
                    str(data_dir),
                    "--model",
                    str(bundle_dir),
                    "--port",
                    str(serve_port),
                ],
                env,
                arguments.work_dir / "serve.log",
            )
        )
        wait_until_ready(f"{base_url}/readyz", server, timeout_seconds=120)
        pool = stack.enter_context(multiprocessing.get_context("spawn").Pool(GENERATORS))
        run_rate(pool, base_url, member_ids, 200, WARM_UP_SECONDS)
        for rate in rates:
            results.append(run_rate(pool, base_url, member_ids, rate, arguments.duration))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    write(results, active_offers, arguments.duration)


def write(results: list[dict], active_offers: int, duration: float) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    setup = {
        "members": MEMBERS,
        "offers_valid_today": active_offers,
        "duration_seconds": duration,
        "cores": os.cpu_count(),
        "generator_processes": GENERATORS,
        "cap_rules": "configs/caps.yaml",
        "store": "Redis (private redis-server on 127.0.0.1)",
    }
    (RESULTS / "serve_load.json").write_text(
        json.dumps({"setup": setup, "results": results}, indent=2) + "\n"
    )
    lines = [
        "# Serving load test (open loop, one `perkrank serve` process, real Redis)",
        "",
        f"{MEMBERS:,} members, {active_offers:,} offers valid today, caps from "
        f"configs/caps.yaml, {duration:.0f} s per rate, limit=10, 95% known members. "
        f"{os.cpu_count()} cores shared by the server, Redis and {GENERATORS} load-generator "
        "processes. Command: `.venv/bin/python benchmarks/serve_load.py`",
        "",
        "| target req/s | achieved req/s | requests | errors | p50 ms | p95 ms | p99 ms | max ms |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
        *[
            f"| {r['target_rate']:.0f} | {r['achieved_rate']:.0f} | {r['requests']} | "
            f"{r['errors']} | {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | {r['max_ms']} |"
            for r in results
        ],
        "",
    ]
    (RESULTS / "serve_load.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
