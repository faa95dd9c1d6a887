"""p99 of offers requests during a model swap and during a catalog publish, under load.

One `perkrank serve` process with real Redis (the serve_load setup: 100,000 members, ~2,000
offers valid), offers requests open loop at `--rate`. A third into the measured window the
registry's champion moves to version 2 and `POST /v1/admin/reload` is sent; two thirds in, the
data directory's offers file is published again through `PUT /v1/admin/offers` (a new catalog
version: every ranker is rebuilt). The swap second of each change is the second from the call
(or until the change is seen, when that takes longer); its p99 is compared with the whole
run's p99. Target: within 1.5×.

    .venv/bin/python -m benchmarks.swap_p99 [--rate 400] [--duration 12] [--warm-up 3]
        [--work-dir var/bench/serve] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from benchmarks.serve_load.run import GENERATORS, Runner, admin_call, summarize, wait_until
from benchmarks.serve_load.setup import (
    ADMIN_KEY,
    APP_KEY,
    prepare,
    prepare_registry,
    read_member_ids,
    registry_config,
    serving,
    set_champion,
)

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_RATIO = 1.5
SWAP_SECOND = 1.0


class Changes(threading.Thread):
    """A model swap at 1/3 of the measured window and a catalog publish at 2/3; each change's
    window in time.perf_counter seconds (CLOCK_MONOTONIC: the generators' clock too)."""

    def __init__(
        self, base_url: str, work_dir: Path, data_dir: Path, member_id: str, times: tuple
    ) -> None:
        super().__init__(daemon=True)
        self.base_url, self.work_dir, self.data_dir = base_url, work_dir, data_dir
        self.member_id = member_id
        warm_up, span = times
        self.warm_up, self.span = warm_up, span
        self.windows: dict[str, tuple[float, float]] = {}
        self.facts: dict[str, str] = {}

    def run(self) -> None:
        started = time.perf_counter()
        before = self.model_version()
        wait_until(started + self.warm_up + self.span / 3)
        asked = time.perf_counter()
        set_champion(registry_config(self.work_dir), "2")
        admin_call(self.base_url, "POST", "/v1/admin/reload")
        after = before
        while after == before and time.perf_counter() < asked + 30:
            after = self.model_version()
        self.windows["model swap"] = (asked, time.perf_counter())
        self.facts["model swap"] = f"{before} → {after}"
        wait_until(started + self.warm_up + 2 * self.span / 3)
        asked = time.perf_counter()
        published = self.publish_offers()
        self.windows["catalog publish"] = (asked, time.perf_counter())
        self.facts["catalog publish"] = f"version {published['version']}"

    def model_version(self) -> str:
        """The model answering now (a 503 of an overloaded server is asked again)."""
        request = urllib.request.Request(
            f"{self.base_url}/v1/members/{self.member_id}/offers?limit=1",
            headers={"X-API-Key": APP_KEY},
        )
        for _ in range(100):
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    return json.load(response)["model_version"]
            except urllib.error.HTTPError as error:
                if error.code != 503:
                    raise
                time.sleep(0.05)  # the benchmark's pacing, not a test
        raise RuntimeError("the server answered 503 to every model-version probe")

    def publish_offers(self) -> dict:
        request = urllib.request.Request(
            f"{self.base_url}/v1/admin/offers",
            data=(self.data_dir / "offers.csv").read_bytes(),
            method="PUT",
            headers={"X-API-Key": ADMIN_KEY, "Content-Type": "text/csv"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.load(response)


def window_p99(parts: list[dict], start: float, end: float) -> tuple[float | None, int]:
    """p99 (ms) and count of the requests scheduled in [start, max(end, start + 1 s)]."""
    end = max(end, start + SWAP_SECOND)
    latencies = np.concatenate([np.asarray(part["latencies"]) for part in parts])
    scheduled = np.concatenate([np.asarray(part["scheduled"]) for part in parts])
    inside = latencies[(scheduled >= start) & (scheduled <= end)] * 1000
    if not len(inside):
        return None, 0
    return round(float(np.percentile(inside, 99)), 2), len(inside)


def outside_p99(parts: list[dict], windows: list[tuple[float, float]]) -> float | None:
    """p99 (ms) of the requests scheduled outside every window (each widened as in
    `window_p99`): the run without its changes."""
    latencies = np.concatenate([np.asarray(part["latencies"]) for part in parts])
    scheduled = np.concatenate([np.asarray(part["scheduled"]) for part in parts])
    outside = np.ones(len(latencies), dtype=bool)
    for start, end in windows:
        outside &= ~((scheduled >= start) & (scheduled <= max(end, start + SWAP_SECOND)))
    if not outside.any():
        return None
    return round(float(np.percentile(latencies[outside] * 1000, 99)), 2)


def markdown(result: dict) -> str:
    run = result["run"]
    rows = [
        f"| {name} | {w['seconds']} | {w['requests']} | {w['p99_ms']} | {run['p99_ms']} | "
        f"**{w['ratio']}** | {result['p99_outside_ms']} | {w['ratio_to_outside']} | "
        f"{'met' if w['met'] else 'NOT met'} |"
        for name, w in result["windows"].items()
    ]
    return "\n".join(
        [
            "# p99 during a model swap and a catalog publish, under load",
            "",
            f"Command: `{result['command']}` ({result['date']})",
            "",
            f"One `perkrank serve` process, real Redis, {run['target_rate']:.0f} offers req/s "
            f"open loop for {result['measured_seconds']:.0f} s (achieved "
            f"{run['achieved_rate']:.0f}, {run['errors']} errors; run p50 {run['p50_ms']} ms, "
            f"p99 {run['p99_ms']} ms). The swap window runs from the admin call until the "
            "change is seen (at least 1 s); latency from each request's scheduled send time.",
            "",
            "| change | window s | requests | p99 ms in window | run p99 ms | ratio | "
            f"p99 ms outside the windows | ratio to it | target ≤ {TARGET_RATIO} |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|",
            *rows,
            "",
            *[f"- {name}: {fact}" for name, fact in result["facts"].items()],
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=400.0)
    parser.add_argument("--duration", type=float, default=12.0)
    parser.add_argument("--warm-up", type=float, default=3.0)
    parser.add_argument("--work-dir", type=Path, default=Path("var/bench/serve"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    arguments = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    setup = prepare(arguments.work_dir)
    tracking_uri = prepare_registry(arguments.work_dir, setup.bundle_dir)
    with ExitStack() as stack:
        server = stack.enter_context(serving(setup, tracking_uri, arguments.work_dir))
        pool = stack.enter_context(multiprocessing.get_context("spawn").Pool(GENERATORS))
        members = read_member_ids(setup.data_dir)
        runner = Runner(
            pool, members, server.base_url, server.pids, arguments.warm_up, arguments.duration
        )
        runner.run(arguments.rate)  # warm every segment and connection once
        changes = Changes(
            server.base_url,
            arguments.work_dir,
            setup.data_dir,
            members[0],
            (arguments.warm_up, arguments.duration),
        )
        changes.start()
        parts, cpu, wall = runner.run_parts(arguments.rate)
        changes.join()
    run = summarize(arguments.rate, parts, cpu, wall)
    windows = {}
    outside = outside_p99(parts, list(changes.windows.values()))
    for name, (start, end) in changes.windows.items():
        p99, count = window_p99(parts, start, end)
        ratio = None if p99 is None else round(p99 / run["p99_ms"], 2)
        windows[name] = {
            "seconds": round(max(end - start, SWAP_SECOND), 2),
            "requests": count,
            "p99_ms": p99,
            "ratio": ratio,
            "ratio_to_outside": None if p99 is None or not outside else round(p99 / outside, 2),
            "met": ratio is not None and ratio <= TARGET_RATIO,
        }
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([".venv/bin/python -m benchmarks.swap_p99", *sys.argv[1:]]),
        "measured_seconds": arguments.duration,
        "run": run,
        "windows": windows,
        "p99_outside_ms": outside,
        "facts": changes.facts,
        "target_ratio": TARGET_RATIO,
    }
    arguments.out.mkdir(parents=True, exist_ok=True)
    (arguments.out / "swap_p99.json").write_text(json.dumps(result, indent=2) + "\n")
    text = markdown(result)
    (arguments.out / "swap_p99.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
