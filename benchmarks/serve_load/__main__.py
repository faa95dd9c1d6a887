"""Open-loop load test of `perkrank serve` with real Redis, on 127.0.0.1 only.

The command line (see the package docstring for what is measured); from the repository root:

    .venv/bin/python -m benchmarks.serve_load [--rates 500,1000,1500,2000,2500,3000]
        [--duration 10] [--warm-up 2] [--work-dir var/bench/serve] [--floor-rates 1000,2500]
        [--live-rate 1000] [--ratio-pairs 5] [--ratio-rate 500] [--no-pin]
        [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import sys
from contextlib import ExitStack
from pathlib import Path

from benchmarks.serve_load.cpu_ratio import alternating_pairs
from benchmarks.serve_load.machine import (
    PAUSE_PROBE_SECONDS,
    machine_pauses,
    pin_cores,
    quietest_core,
)
from benchmarks.serve_load.report import write_results
from benchmarks.serve_load.run import FLOOR_PATH, GENERATORS, Runner
from benchmarks.serve_load.setup import (
    prepare,
    prepare_registry,
    read_member_ids,
    registry_config,
    serving,
)

RESULTS = Path(__file__).resolve().parent.parent / "results"


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.serve_load", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--rates", default="500,1000,1500,2000,2500,3000")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per rate")
    parser.add_argument("--warm-up", type=float, default=2.0, help="unmeasured seconds per rate")
    parser.add_argument("--work-dir", type=Path, default=Path("var/bench/serve"))
    parser.add_argument(
        "--live-rate",
        type=float,
        default=1000.0,
        help="rate of the extra run with a cap change and a model swap mid-window (0: none)",
    )
    parser.add_argument(
        "--floor-rates",
        default="1000,2500",
        help=f"rates of `GET {FLOOR_PATH}` runs: what HTTP and the generators cost alone",
    )
    parser.add_argument(
        "--ratio-pairs",
        type=int,
        default=5,
        help=f"alternating `GET {FLOOR_PATH}` / offers pairs for the CPU ratio (0: none)",
    )
    parser.add_argument(
        "--ratio-rate", type=float, default=500.0, help="rate of the CPU ratio's runs"
    )
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="give the server the core paused least, Redis and the generators the others",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=RESULTS,
        help="directory for serve_load.md and .json (default: benchmarks/results)",
    )
    return parser.parse_args()


def main() -> None:
    arguments = parse_arguments()
    rates = [float(rate) for rate in arguments.rates.split(",") if rate]
    floor_rates = [float(rate) for rate in arguments.floor_rates.split(",") if rate]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the cleanup on SIGTERM too
    work_dir = arguments.work_dir
    work_dir.mkdir(parents=True, exist_ok=True)
    setup = prepare(work_dir)
    tracking_uri = prepare_registry(work_dir, setup.bundle_dir)
    pauses = machine_pauses(PAUSE_PROBE_SECONDS)
    print(json.dumps({"machine_pauses": pauses}), file=sys.stderr, flush=True)

    live: dict | None = None
    with ExitStack() as stack:
        server = stack.enter_context(serving(setup, tracking_uri, work_dir))
        if arguments.pin:
            # The generators inherit the benchmark's own cores.
            pin_cores(
                server.pids["server"], quietest_core(pauses), [server.pids["redis"], os.getpid()]
            )
        pool = stack.enter_context(multiprocessing.get_context("spawn").Pool(GENERATORS))
        members = read_member_ids(setup.data_dir)
        runner = Runner(
            pool, members, server.base_url, server.pids, arguments.warm_up, arguments.duration
        )
        ratio = alternating_pairs(runner, arguments.ratio_rate, arguments.ratio_pairs)
        floor = runner.floor(floor_rates)
        results = runner.ramp(rates) if rates else []
        if arguments.live_rate > 0:
            live = runner.live(arguments.live_rate, registry_config(work_dir))
    write_results(
        arguments.out, setup, results, floor, pauses, live, ratio, arguments, server.command
    )


if __name__ == "__main__":
    main()
