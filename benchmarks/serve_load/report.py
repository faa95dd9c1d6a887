"""The report: the verdict on each target, the setup facts, and the results written as
serve_load.json and serve_load.md (printed too)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.serve_load.cpu_ratio import ratio_section
from benchmarks.serve_load.machine import PAUSE_PROBE_SECONDS, cpu_model, quietest_core
from benchmarks.serve_load.run import (
    APP_CHANNEL_SHARE,
    CONNECTIONS_PER_GENERATOR,
    FLOOR_PATH,
    GENERATORS,
    LIMIT,
    MAX_IN_FLIGHT_PER_GENERATOR,
    SATURATED_SHARE,
    UNKNOWN_MEMBER_SHARE,
)
from benchmarks.serve_load.setup import Setup

COMMAND = ".venv/bin/python -m benchmarks.serve_load"
TABLE_HEADER = [
    "| target req/s | achieved req/s | requests | errors | p50 ms | p95 ms | p99 ms | "
    "max ms | CPU ms/request: server / Redis / generators | cores used by the three |",
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
]


def verdicts(results: list[dict]) -> dict[str, bool | None]:
    """The issue's targets: p99 ≤ 2 ms at 1,000 req/s; ≥ 2,500 req/s with p99 ≤ 10 ms."""

    def met(target: float, limit_ms: float) -> bool | None:
        runs = [r for r in results if r["target_rate"] >= target]
        if not runs:
            saturated = [r for r in results if r["achieved_rate"] < SATURATED_SHARE * target]
            return False if saturated and saturated[-1] is results[-1] else None
        return any(
            r["achieved_rate"] >= SATURATED_SHARE * r["target_rate"]
            and r["errors"] == 0
            and r["p99_ms"] is not None
            and r["p99_ms"] <= limit_ms
            for r in runs
        )

    return {
        "p99 <= 2 ms at 1,000 req/s": met(1000, 2.0),
        ">= 2,500 req/s with p99 <= 10 ms": met(2500, 10.0),
    }


def write_results(
    out: Path,
    setup: Setup,
    results: list[dict],
    floor: list[dict],
    pauses: dict[int, dict],
    live: dict | None,
    ratio: dict,
    arguments: argparse.Namespace,
    serve_command: list[str],
) -> None:
    """`out`/serve_load.json and .md; the markdown is printed too."""
    facts = setup_facts(setup, pauses, arguments, serve_command)
    targets = verdicts(results)
    out.mkdir(parents=True, exist_ok=True)
    (out / "serve_load.json").write_text(
        json.dumps(
            {
                "setup": facts,
                "targets": targets,
                "results": results,
                "floor": floor,
                "machine_pauses": pauses,
                "live_run": live,
                "server_cpu_ratio_to_floor": cpu_ratios(results, floor),
                "server_cpu_ratio_alternating": ratio,
            },
            indent=2,
        )
        + "\n"
    )
    text = markdown(facts, targets, results, floor, pauses, live, ratio)
    (out / "serve_load.md").write_text(text)
    print(text)


def setup_facts(
    setup: Setup,
    pauses: dict[int, dict],
    arguments: argparse.Namespace,
    serve_command: list[str],
) -> dict:
    """What was measured, on what, how: the data, the configs, the load and the machine."""
    from perkrank.config import CONFIG_DIR, CapsConfig, ServeConfig, load_config

    caps = load_config(CapsConfig, CONFIG_DIR / "caps.yaml")
    serve = load_config(ServeConfig, CONFIG_DIR / "serve.yaml")
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "members": setup.members,
        "offers_valid_on_serving_day": setup.offers_valid,
        "offers_in_catalog_file": setup.offers_in_file,
        "serving_day": setup.serving_day.isoformat(),
        "cap_rules": [f"{r.name}: {r.limit} per {r.scope} per {r.window}" for r in caps.rules],
        "max_offers_per_partner": serve.max_offers_per_partner,
        "candidate_pool": f"limit × {serve.candidate_pool_multiplier} + "
        f"{serve.candidate_pool_margin} per order",
        "request": f"limit={LIMIT}, {1 - UNKNOWN_MEMBER_SHARE:.0%} known members (uniform over "
        f"all {setup.members:,}: few repeat within a run, so the offers figures are those of "
        f"members the member cache does not hold), channel app {APP_CHANNEL_SHARE:.0%} / web",
        "server": "one `perkrank serve` process (uvicorn), max_in_flight "
        f"{serve.max_in_flight}, real Redis (private redis-server, no persistence)",
        "load_generators": f"{GENERATORS} processes, asyncio protocols on uvloop, "
        f"{CONNECTIONS_PER_GENERATOR} keep-alive connections and at most "
        f"{MAX_IN_FLIGHT_PER_GENERATOR} requests in flight each",
        "pinning": f"server alone on core {quietest_core(pauses)} (the one paused least); Redis "
        "and the generators on the other cores"
        if arguments.pin
        else "none: every process may run on every core",
        "cpu_ratio": f"{arguments.ratio_pairs} alternating pairs at {arguments.ratio_rate:.0f} "
        "req/s",
        "warm_up_seconds": arguments.warm_up,
        "measured_seconds": arguments.duration,
        "cpu_count": os.cpu_count(),
        "machine": f"{platform.machine()} {cpu_model()}, Python {platform.python_version()}",
        "redis": subprocess.run(
            ["redis-server", "--version"], capture_output=True, text=True
        ).stdout.strip(),
        "command": " ".join([COMMAND, *sys.argv[1:]]).strip(),
        "server_command": " ".join(serve_command),
    }


def markdown(
    facts: dict,
    targets: dict,
    results: list[dict],
    floor: list[dict],
    pauses: dict[int, dict],
    live: dict | None,
    ratio: dict | None = None,
) -> str:
    """The results table with the setup facts and the verdict on each target."""

    def verdict(value: bool | None) -> str:
        return {True: "met", False: "NOT met", None: "not measured"}[value]

    return "\n".join(
        [
            "# Serving load test: one `perkrank serve` process, real Redis, open loop",
            "",
            f"Command: `{facts['command']}` ({facts['date']})",
            "",
            *TABLE_HEADER,
            *[table_row(r) for r in results],
            "",
            "Latency is measured from each request's scheduled send time (no coordinated "
            "omission), over every response of the measured window; errors are non-200 "
            "responses, exceptions and requests the generators did not send because too many "
            'were unanswered. "cores used" adds up the CPU seconds of the server, Redis and '
            "the generators per second of the run (2 cores = 2.0). The ramp stops at the "
            "first rate achieved below "
            f"{SATURATED_SHARE:.0%} of its target.",
            "",
            "Targets (one serving process on this machine, load generators and Redis beside it):",
            "",
            *[f"- {name}: **{verdict(value)}**" for name, value in targets.items()],
            "",
            *ratio_section(ratio),
            *floor_section(floor),
            *cpu_ratio_section(cpu_ratios(results, floor)),
            *pauses_section(pauses),
            *live_section(live),
            "## Setup",
            "",
            *[
                f"- {name.replace('_', ' ')}: {_text(value)}"
                for name, value in facts.items()
                if name not in ("command", "date")
            ],
            "",
        ]
    )


def table_row(r: dict) -> str:
    """One run as a row under TABLE_HEADER."""
    return (
        f"| {r['target_rate']:.0f} | {r['achieved_rate']:.0f} | {r['requests']} | "
        f"{r['errors']}{' (' + _kinds(r['error_kinds']) + ')' if r['errors'] else ''} | "
        f"{r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | {r['max_ms']} | "
        f"{r['cpu_ms_per_request']['server']} / {r['cpu_ms_per_request']['redis']} / "
        f"{r['cpu_ms_per_request']['load generators']} | "
        f"{_cores_used(r):.2f} |"
    )


def floor_section(floor: list[dict]) -> list[str]:
    """The same load on `GET /healthz`: no key, store, model or ranking."""
    if not floor:
        return []
    return [
        f"## Floor: `GET {FLOOR_PATH}` under the same load",
        "",
        "What uvicorn, FastAPI, the middleware and the load generators cost on this machine "
        "with no work behind them: no offers request can be faster.",
        "",
        *TABLE_HEADER,
        *[table_row(r) for r in floor],
        "",
    ]


def cpu_ratios(results: list[dict], floor: list[dict]) -> list[dict]:
    """Server CPU per offers request over server CPU per floor request, at each rate both
    ran (same server, same run): what the offers path adds to HTTP alone. Target ≤ 1.5."""
    floor_ms = {r["target_rate"]: r["cpu_ms_per_request"]["server"] for r in floor}
    return [
        {
            "rate": r["target_rate"],
            "offers_ms": r["cpu_ms_per_request"]["server"],
            "floor_ms": floor_ms[r["target_rate"]],
            "ratio": round(r["cpu_ms_per_request"]["server"] / floor_ms[r["target_rate"]], 2),
        }
        for r in results
        if floor_ms.get(r["target_rate"])
    ]


def cpu_ratio_section(ratios: list[dict]) -> list[str]:
    """The table of `cpu_ratios`."""
    if not ratios:
        return []
    return [
        f"## Server CPU per offers request / per `GET {FLOOR_PATH}` (target ≤ 1.5)",
        "",
        "| req/s | offers: server CPU ms/request | floor: server CPU ms/request | ratio |",
        "|---:|---:|---:|---:|",
        *[
            f"| {r['rate']:.0f} | {r['offers_ms']} | {r['floor_ms']} | **{r['ratio']}** |"
            for r in ratios
        ],
        "",
    ]


def pauses_section(pauses: dict[int, dict]) -> list[str]:
    """How often the machine took a core away from a busy loop, before the benchmark ran."""
    rows = [
        f"| {core} | {p['pauses_over_1_ms']} | {p['pauses_over_10_ms']} | {p['longest_ms']} | "
        f"{p['paused_share']:.2%} |"
        for core, p in pauses.items()
    ]
    return [
        "## The machine: pauses of an idle core",
        "",
        f"A busy loop pinned to each core for {PAUSE_PROBE_SECONDS:.0f} s with nothing else of "
        "the benchmark running, counting the times its clock jumped by more than 1 ms (the "
        "core was given to something outside this machine's processes, or to the kernel). "
        "Every pause of the server's core delays every request in flight by as much.",
        "",
        "| core | pauses > 1 ms | pauses > 10 ms | longest ms | share of time paused |",
        "|---|---:|---:|---:|---:|",
        *rows,
        "",
    ]


def live_section(live: dict | None) -> list[str]:
    """The run with a cap change and a model swap in its measured window."""
    if live is None:
        return []
    facts = live["live_changes"]
    return [
        "## Live changes under load",
        "",
        f"At {live['target_rate']:.0f} req/s, the caps were changed through `PUT /v1/caps` "
        f"(every limit + 1, caps version {facts.get('caps_version')}) a third into the "
        "measured window, and at half of it the registry's champion alias moved to version 2 "
        "and `POST /v1/admin/reload` was sent: the process loaded, smoke-checked and swapped "
        f"the model ({facts.get('model_version')}) in {facts.get('model_swap_seconds')} s "
        "while serving.",
        "",
        *TABLE_HEADER,
        table_row(live),
        "",
    ]


def _cores_used(result: dict) -> float:
    """Cores the server, Redis and the generators kept busy together."""
    return sum(result["cores_busy"].values())


def _text(value: object) -> str:
    return "; ".join(value) if isinstance(value, list) else str(value)


def _kinds(kinds: dict[str, int]) -> str:
    return ", ".join(f"{kind}: {count}" for kind, count in sorted(kinds.items()))
