"""Acceptance of the served second stage on the demo's synthetic data.

Generates the data `perkrank demo` generates (members, 12 months, seed 7; a fixed start date
so that reruns match), runs `perkrank train`'s pipeline (configs/train.yaml, not registered)
and compares, on its test window, the served model (`ranker`: the second stage) with own+pop
overall, on warm members and on new offers, and with regional popularity on cold members:
NDCG@10 per slice and the paired bootstrap 95 % CI of each difference (`training.compare`).
Writes benchmarks/results/ranker_demo.md and .json.

    .venv/bin/python benchmarks/ranker_demo.py [--members 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from perkrank.config import CONFIG_DIR, TrainConfig, load_config
from perkrank.demo import DEMO_MEMBERS, DEMO_MONTHS, DEMO_SEED
from perkrank.features.synthetic import generate
from perkrank.training.compare import paired_bootstrap
from perkrank.training.evaluation import EvaluationReport
from perkrank.training.pipeline import train
from perkrank.training.ranker_step import RANKER

RESULTS = Path(__file__).parent / "results"
START = date(2025, 1, 1)
METRIC = "ndcg@10"
CHECKS = (
    ("overall", "own_pop"),
    ("warm", "own_pop"),
    ("new_offers", "own_pop"),
    ("cold", "regional_popularity"),
)
"""(slice, the model the served one must beat or match there)."""
SHOWN = ("ranker", "blend", "own_pop", "regional_popularity", "popularity", "als")


def checks(evaluation: EvaluationReport, seed: int) -> list[dict[str, Any]]:
    """The served model against each check's baseline on its slice."""
    rows = []
    served = evaluation.models[RANKER]
    for part, baseline in CHECKS:
        if part not in served.slice_values or baseline not in evaluation.models:
            continue
        difference = paired_bootstrap(
            served.slice_values[part][METRIC],
            evaluation.models[baseline].slice_values[part][METRIC],
            metric=METRIC,
            seed=seed,
        )
        rows.append({"slice": part, "baseline": baseline, **difference.to_dict()})
    return rows


def run(members: int, work_dir: Path) -> dict[str, Any]:
    started = time.perf_counter()
    generate(work_dir / "data", members=members, months=DEMO_MONTHS, seed=DEMO_SEED, start=START)
    config = load_config(TrainConfig, CONFIG_DIR / "train.yaml")
    result = train(work_dir / "data", config, output_dir=work_dir / "train", register=False)
    evaluation = result.evaluation
    return {
        "members": members,
        "months": DEMO_MONTHS,
        "window": evaluation.window,
        "slice_members": evaluation.models[RANKER].members,
        "ndcg@10": {
            name: {part: values.get(METRIC) for part, values in report.metrics.items()}
            for name, report in evaluation.models.items()
        },
        "checks": checks(evaluation, config.seed),
        "weights": result.weights,
        "total_seconds": round(time.perf_counter() - started, 1),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }


def markdown(result: dict[str, Any]) -> str:
    slices = ("overall", "warm", "cold", "new_offers")
    scores = result["ndcg@10"]
    lines = [
        "# The served second stage on the demo's synthetic data",
        "",
        f"Command: `{result['command']}`  ",
        f"Data: `perkrank demo`'s generator, {result['members']:,} members × "
        f"{result['months']} months, seed {DEMO_SEED}, from {START}. Pipeline: "
        f"`perkrank train` (configs/train.yaml), test window {result['window']['start']} .. "
        f"{result['window']['end']}; {result['total_seconds']:.0f} s in all on "
        f"{result['machine']['cpus']} shared cores.",
        "",
        "## Test NDCG@10",
        "",
        "| model | " + " | ".join(slices) + " |",
        "|---|" + "---:|" * len(slices),
    ]
    for name in SHOWN:
        if name in scores:
            values = [scores[name].get(part) for part in slices]
            cells = " | ".join("" if value is None else f"{value:.4f}" for value in values)
            lines.append(f"| {name} | {cells} |")
    lines += [
        "",
        "## Served model (ranker) against the bar of each slice",
        "",
        "| slice | baseline | ranker | baseline | difference (95 % CI) | members | verdict |",
        "|---|---|---:|---:|---|---:|---|",
    ]
    for row in result["checks"]:
        lines.append(
            f"| {row['slice']} | {row['baseline']} | {row['first']:.4f} | {row['second']:.4f} "
            f"| {row['difference']:+.4f} [{row['ci_low']:+.4f}, {row['ci_high']:+.4f}] "
            f"| {row['members']:,} | {row['verdict']} |"
        )
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=DEMO_MEMBERS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as directory:
        result = run(args.members, Path(directory))
    result["command"] = " ".join(["benchmarks/ranker_demo.py", *sys.argv[1:]])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ranker_demo.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "ranker_demo.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
