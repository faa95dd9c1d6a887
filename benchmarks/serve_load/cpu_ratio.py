"""Server CPU per offers request over server CPU per `GET /healthz`, measured in pairs.

The machine's cores are shared and pause, so one pair of runs can be off by a third. The
benchmark runs `pairs` pairs at one rate on the same server, alternating `GET /healthz` and
offers runs, and reports each pair's ratio, the median and the spread. Target: median ≤ 1.5
(issue 17 item 4).
"""

from __future__ import annotations

from statistics import median

from benchmarks.serve_load.run import FLOOR_PATH, Runner

TARGET_RATIO = 1.5


def alternating_pairs(runner: Runner, rate: float, pairs: int) -> dict:
    """`pairs` × (floor run, offers run) at `rate`, and their summary (`ratio_summary`)."""
    runs = []
    for number in range(pairs):
        floor = runner.run(rate, FLOOR_PATH)
        offers = runner.run(rate)
        runs.append({"pair": number + 1, "floor": floor, "offers": offers})
    return ratio_summary(rate, runs)


def ratio_summary(rate: float, runs: list[dict]) -> dict:
    """Each pair's server CPU ms per request (floor, offers) and ratio; medians and range."""
    pairs = []
    for run in runs:
        floor_ms = run["floor"]["cpu_ms_per_request"]["server"]
        offers_ms = run["offers"]["cpu_ms_per_request"]["server"]
        pairs.append(
            {
                "pair": run["pair"],
                "floor_ms": floor_ms,
                "offers_ms": offers_ms,
                "ratio": round(offers_ms / floor_ms, 3),
                "floor_errors": run["floor"]["errors"],
                "offers_errors": run["offers"]["errors"],
                "offers_achieved_rate": run["offers"]["achieved_rate"],
            }
        )
    ratios = [pair["ratio"] for pair in pairs]
    return {
        "rate": rate,
        "pairs": pairs,
        "median_ratio": round(median(ratios), 3) if ratios else None,
        "min_ratio": min(ratios, default=None),
        "max_ratio": max(ratios, default=None),
        "median_floor_ms": round(median(p["floor_ms"] for p in pairs), 3) if pairs else None,
        "median_offers_ms": round(median(p["offers_ms"] for p in pairs), 3) if pairs else None,
        "target": TARGET_RATIO,
        "met": bool(ratios) and median(ratios) <= TARGET_RATIO,
    }


def ratio_section(summary: dict | None) -> list[str]:
    """The markdown of `ratio_summary`."""
    if not summary or not summary["pairs"]:
        return []
    rows = [
        f"| {p['pair']} | {p['floor_ms']} | {p['offers_ms']} | {p['ratio']} | "
        f"{p['floor_errors']} / {p['offers_errors']} |"
        for p in summary["pairs"]
    ]
    verdict = "met" if summary["met"] else "NOT met"
    return [
        f"## Server CPU per offers request / per `GET {FLOOR_PATH}`, alternating runs",
        "",
        f"{len(rows)} pairs at {summary['rate']:.0f} req/s on the same server: a `GET "
        f"{FLOOR_PATH}` run, then an offers run. Server CPU ms per request is the server "
        "process's CPU seconds (/proc, user + system) over the responses of the run.",
        "",
        "| pair | floor: server CPU ms/request | offers: server CPU ms/request | ratio | "
        "errors floor / offers |",
        "|---:|---:|---:|---:|---:|",
        *rows,
        "",
        f"Median ratio **{summary['median_ratio']}** (range {summary['min_ratio']}–"
        f"{summary['max_ratio']}; medians {summary['median_offers_ms']} ms / "
        f"{summary['median_floor_ms']} ms); target ≤ {summary['target']}: **{verdict}**.",
        "",
    ]
