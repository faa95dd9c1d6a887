"""Per-request cost of the coupon stage, this tree's against an earlier commit's, in one run.

The stage is the Complete Journey benchmark's largest test campaign's (campaign 18, 209
coupons; rankers chosen and fitted at the benchmark's cutoff, arrays as of the campaign's
start). Both versions score every exposed household's coupons with `member_scores`, one call
each, the two alternating call by call (the order flipped every pass), so load hits both alike;
the result is each one's p50 and their ratio, and whether the scores are identical.
Writes benchmarks/results/coupon_request_cost.md/.json.

    .venv/bin/python -m benchmarks.coupon_request_cost --before COMMIT [--passes 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.complete_journey import CUTOFF, RESULTS, SOURCE
from perkrank.features.complete_journey import coupon_tables, read_raw
from perkrank.progress import step
from perkrank.training import coupon_evaluation as ce
from perkrank.training import coupon_ranker as cr
from perkrank.training.coupon_stats import offer_ids

CAMPAIGN = "18"
NAME = "coupon_request_cost"


def module_at(commit: str) -> ModuleType:
    """`models/coupon_stage.py` as it was at `commit`, imported under another name."""
    text = subprocess.run(
        ["git", "show", f"{commit}:models/coupon_stage.py"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    path = Path(tempfile.mkdtemp()) / "coupon_stage_before.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("coupon_stage_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def timings(
    stages: dict[str, Any], members: list[str], offers: list[str], passes: int
) -> dict[str, list[float]]:
    """Seconds per `member_scores` call of each stage, alternating (order flipped per pass)."""
    other, seconds = np.zeros(len(offers)), {name: [] for name in stages}
    for number in range(passes):
        order = list(stages) if number % 2 == 0 else list(stages)[::-1]
        for member in members:
            for name in order:
                begin = time.perf_counter()
                stages[name].member_scores(member, offers, other)
                seconds[name].append(time.perf_counter() - begin)
    return seconds


def run(source: Path, before: str, passes: int) -> dict[str, Any]:
    """Both versions' p50 per request, their ratio and whether their scores are identical."""
    with step("choose and fit the coupon rankers at the benchmark's cutoff"):
        tables = coupon_tables(read_raw(source))
        index = ce.coupon_index(tables)
        rankers = cr.fit_rankers(tables, index, pd.Timestamp(CUTOFF)).rankers
    task = ce.campaign_task(tables, index, CAMPAIGN, labels_before=None)
    now = cr.campaign_stage(tables, index, task.start, rankers)
    old = module_at(before)
    fields = {f.name: getattr(now.stats, f.name) for f in dataclasses.fields(old.CouponStats)}
    then = old.CouponStage(rankers, old.CouponStats(**fields))
    members, offers = task.members.tolist(), offer_ids(index, task.coupon_rows).tolist()
    identical = np.array_equal(now.scores(members, offers), then.scores(members, offers))
    with step(f"time {passes} passes over {len(members):,} households, both versions"):
        seconds = timings({"before": then, "now": now}, members, offers, passes)
    p50 = {name: float(np.median(values)) for name, values in seconds.items()}
    return {
        "before": before,
        "campaign": CAMPAIGN,
        "offers": len(offers),
        "calls_each": len(seconds["now"]),
        "scores_identical": bool(identical),
        "p50_ms": {name: round(value * 1e3, 4) for name, value in p50.items()},
        "ratio": round(p50["before"] / p50["now"], 2),
        "load_average": [round(value, 2) for value in os.getloadavg()],
    }


def write(result: dict[str, Any], out: Path) -> Path:
    """coupon_request_cost.json and .md into `out`; the Markdown path."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{NAME}.json").write_text(json.dumps(result, indent=1) + "\n")
    p50 = result["p50_ms"]
    text = "\n".join([
        "# Coupon stage: per-request cost before and after the per-campaign index",
        "",
        f"`.venv/bin/python -m benchmarks.coupon_request_cost --before {result['before']}`: "
        f"`CouponStage.member_scores` for one member over campaign {result['campaign']}'s "
        f"{result['offers']} coupons, {result['calls_each']:,} calls each, the two versions "
        "alternating call by call in one process.",
        "",
        "| version | p50 ms |",
        "|---|---:|",
        f"| before ({result['before'][:7]}) | {p50['before']:.3f} |",
        f"| now | {p50['now']:.3f} |",
        "",
        f"Ratio before / now: **{result['ratio']:.2f}×**; scores identical: "
        f"{'yes' if result['scores_identical'] else 'NO'}; load average at the end "
        f"{result['load_average'][0]:.1f} (absolute times depend on it, the ratio much less).",
        "",
    ])  # fmt: skip
    path = out / f"{NAME}.md"
    path.write_text(text)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="commit of the earlier version")
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--source", type=Path, default=SOURCE)
    parser.add_argument("--out", type=Path, default=RESULTS)
    arguments = parser.parse_args()
    result = run(arguments.source, arguments.before, arguments.passes)
    print(write(result, arguments.out).read_text())


if __name__ == "__main__":
    main()
