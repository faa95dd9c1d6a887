"""Does the uplift report's 95 % interval cover the true lift? 20 simulated pilots say.

A synthetic program serves a champion that knows the planted tastes blurred by noise 2.0 and a
challenger blurred less, by as much as makes its TRUE redemptions per member 10 % above the
champion's (`perkrank.simulation.lift_check`). A pilot of `--pilot-members` members tells the
sample size: the report's minimum detectable effect (80 % power) scales as 1/sqrt(members), so
the members needed are members × (MDE / true lift)². A program of that size then runs 20
seeded pilots (each seed reshuffles the split and draws other visits and responses) through
the real service; each report's lift of the challenger over the champion and its 95 % CI are
checked against the truth. Writes benchmarks/results/simulated_lift.md and .json.

    .venv/bin/python benchmarks/simulated_lift.py [--seeds 20] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import tempfile
import time
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

from perkrank.simulation.lift_check import LiftTrial, PlantedPilot, lift_trial, plant_pilot

RESULTS = Path(__file__).parent / "results"
CHAMPION_NOISE = 2.0
TARGET_LIFT = 0.10
DAYS = 3
LIMIT = 10


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--pilot-members", type=int, default=1500)
    parser.add_argument("--out", type=Path, default=RESULTS)
    arguments = parser.parse_args()
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="simulated-lift-") as work:
        small = _plant(Path(work) / "pilot", arguments.pilot_members)
        sizing = lift_trial(small, seed=1000, with_truth=False)
        needed = math.ceil(arguments.pilot_members * (sizing.mde / small.true_lift) ** 2)
        print(f"pilot: MDE {sizing.mde:.4f} vs true lift {small.true_lift:.4f}: {needed} members")
        full = _plant(Path(work) / "full", needed)
        trials = []
        for seed in range(arguments.seeds):
            trials.append(lift_trial(full, seed, with_truth=False))
            print(_row(trials[-1]), flush=True)
    result = _result(small, sizing, needed, full, trials, time.perf_counter() - started)
    arguments.out.mkdir(parents=True, exist_ok=True)
    (arguments.out / "simulated_lift.json").write_text(json.dumps(result, indent=2) + "\n")
    (arguments.out / "simulated_lift.md").write_text(_markdown(result, trials))
    print(f"covered {result['covered']}/{len(trials)}, excluded zero {result['excluded_zero']}")
    return 0


def _plant(work_dir: Path, members: int) -> PlantedPilot:
    return plant_pilot(
        work_dir,
        members=members,
        champion_noise=CHAMPION_NOISE,
        target_lift=TARGET_LIFT,
        days=DAYS,
        limit=LIMIT,
    )


def _result(
    small: PlantedPilot,
    sizing: LiftTrial,
    needed: int,
    full: PlantedPilot,
    trials: list[LiftTrial],
    seconds: float,
) -> dict[str, Any]:
    return {
        "days": DAYS,
        "offers_per_visit": LIMIT,
        "champion_noise": CHAMPION_NOISE,
        "target_lift": TARGET_LIFT,
        "pilot": {
            "members": small.members,
            "mde": sizing.mde,
            "true_lift": small.true_lift,
            "members_needed": needed,
        },
        "program_members": full.members,
        "challenger_noise": full.challenger_noise,
        "true_per_member": full.true_per_member,
        "true_lift": full.true_lift,
        "true_relative_lift": full.true_lift / full.true_per_member["champion"],
        "trials": [asdict(trial) | {"covers_truth": trial.covers_truth} for trial in trials],
        "covered": sum(trial.covers_truth for trial in trials),
        "excluded_zero": sum(trial.excludes_zero for trial in trials),
        "seconds": round(seconds, 1),
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
    }


def _row(trial: LiftTrial) -> str:
    low, high = trial.lift_ci
    return (
        f"| {trial.seed} | {trial.members} | {trial.lift:+.4f} | {low:+.4f} … {high:+.4f} | "
        f"{trial.mde:.4f} | {'yes' if trial.covers_truth else '**no**'} | "
        f"{'yes' if trial.excludes_zero else 'no'} |"
    )


def _markdown(result: dict[str, Any], trials: list[LiftTrial]) -> str:
    pilot = result["pilot"]
    truth = result["true_per_member"]
    lines = [
        "# Simulated lift: the uplift report against the truth",
        "",
        f"Champion: planted tastes + noise {result['champion_noise']}; challenger: noise "
        f"{result['challenger_noise']:.3f}, planted {result['target_lift']:.0%} better. "
        f"{result['days']} days, {result['offers_per_visit']} offers per visit; arms holdout "
        "(popular) 10 %, champion 45 %, challenger 45 %; lift = challenger − champion in "
        "redemptions per member.",
        "",
        f"Sizing pilot: {pilot['members']} members, report MDE {pilot['mde']:.4f} against a "
        f"true lift of {pilot['true_lift']:.4f} → {pilot['members_needed']} members needed.",
        "",
        f"Program of {result['program_members']} members: TRUE redemptions per member "
        f"champion {truth['champion']:.4f}, challenger {truth['challenger']:.4f}; true lift "
        f"{result['true_lift']:.4f} ({result['true_relative_lift']:+.1%}).",
        "",
        f"**The 95 % CI covered the true lift in {result['covered']} of {len(trials)} pilots; "
        f"it excluded zero in {result['excluded_zero']} of {len(trials)}** (80 % expected at the "
        f"size the report asked for). {result['seconds']} s on {result['machine']}.",
        "",
        "| seed | members | lift | 95 % CI | MDE | covers truth | excludes 0 |",
        "|---:|---:|---:|---|---:|---|---|",
        *[_row(trial) for trial in trials],
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
