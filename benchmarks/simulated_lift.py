"""Does the uplift report's 95 % interval cover the true lift? 20 simulated pilots say.

A synthetic program serves a champion that knows the planted tastes blurred by noise 2.0 and a
challenger blurred less, by as much as makes its TRUE redemptions per member 10 % above the
champion's (`perkrank.simulation.lift_check`). `--seeds` seeded pilots of `--members` members
(each seed reshuffles the split and draws other visits and responses) run through the real
service; each report's lift of the challenger over the champion and its 95 % CI are checked
against the truth (coverage). The report's minimum detectable effect (80 % power) scales as
1/sqrt(members), so the members needed are members × (mean MDE / true lift)²; a program of
that size then runs `--power-seeds` pilots: does the CI exclude zero there? Writes
benchmarks/results/simulated_lift.md and .json.

    .venv/bin/python benchmarks/simulated_lift.py [--seeds 20] [--power-seeds 20]
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
    parser.add_argument("--members", type=int, default=3000)
    parser.add_argument("--power-seeds", type=int, default=20)
    parser.add_argument("--out", type=Path, default=RESULTS)
    arguments = parser.parse_args()
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="simulated-lift-") as work:
        small = _plant(Path(work) / "coverage", arguments.members)
        trials = []
        for seed in range(arguments.seeds):
            trials.append(lift_trial(small, seed, with_truth=False))
            print(_row(trials[-1]), flush=True)
        mde = sum(trial.mde for trial in trials) / len(trials)
        needed = math.ceil(arguments.members * (mde / small.true_lift) ** 2)
        print(f"mean MDE {mde:.4f} vs true lift {small.true_lift:.4f}: {needed} members needed")
        full = _plant(Path(work) / "power", needed)
        power = []
        for seed in range(arguments.power_seeds):
            power.append(lift_trial(full, 100 + seed, with_truth=False))
            print(_row(power[-1]), flush=True)
    result = _result(small, trials, needed, full, power, time.perf_counter() - started)
    arguments.out.mkdir(parents=True, exist_ok=True)
    (arguments.out / "simulated_lift.json").write_text(json.dumps(result, indent=2) + "\n")
    (arguments.out / "simulated_lift.md").write_text(_markdown(result, trials, power))
    print(_markdown(result, trials, power))
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


def _summary(pilot: PlantedPilot, trials: list[LiftTrial]) -> dict[str, Any]:
    return {
        "members": pilot.members,
        "challenger_noise": pilot.challenger_noise,
        "true_per_member": pilot.true_per_member,
        "true_lift": pilot.true_lift,
        "true_relative_lift": pilot.true_lift / pilot.true_per_member["champion"],
        "trials": [asdict(trial) | {"covers_truth": trial.covers_truth} for trial in trials],
        "covered": sum(trial.covers_truth for trial in trials),
        "excluded_zero": sum(trial.excludes_zero for trial in trials),
    }


def _result(
    small: PlantedPilot,
    trials: list[LiftTrial],
    needed: int,
    full: PlantedPilot,
    power: list[LiftTrial],
    seconds: float,
) -> dict[str, Any]:
    return {
        "days": DAYS,
        "offers_per_visit": LIMIT,
        "champion_noise": CHAMPION_NOISE,
        "target_lift": TARGET_LIFT,
        "coverage": _summary(small, trials),
        "members_needed": needed,
        "power": _summary(full, power),
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


def _markdown(result: dict[str, Any], trials: list[LiftTrial], power: list[LiftTrial]) -> str:
    coverage, powered = result["coverage"], result["power"]
    header = [
        "| seed | members | lift | 95 % CI | MDE | covers truth | excludes 0 |",
        "|---:|---:|---:|---|---:|---|---|",
    ]
    lines = [
        "# Simulated lift: the uplift report against the truth",
        "",
        f"Champion: planted tastes + noise {result['champion_noise']}; challenger: less noise, "
        f"planted {result['target_lift']:.0%} better in TRUE redemptions per member. "
        f"{result['days']} days, {result['offers_per_visit']} offers per visit; arms holdout "
        "(popular) 10 %, champion 45 %, challenger 45 %; lift = challenger − champion in "
        "redemptions per member (the report with `--holdout champion`). "
        f"{result['seconds']} s on {result['machine']}.",
        "",
        f"## Coverage: {coverage['members']} members, {len(trials)} seeds",
        "",
        f"True lift {coverage['true_lift']:.4f} ({coverage['true_relative_lift']:+.1%}; "
        f"challenger noise {coverage['challenger_noise']:.3f}). **The 95 % CI covered it in "
        f"{coverage['covered']} of {len(trials)} pilots** (excluded zero in "
        f"{coverage['excluded_zero']}: this size is underpowered).",
        "",
        *header,
        *[_row(trial) for trial in trials],
        "",
        f"## Power: {result['members_needed']} members, the size the report asked for",
        "",
        "Members needed = members × (mean MDE / true lift)², the MDE being the report's "
        f"(80 % power, two-sided 5 %). A new program of that size: true lift "
        f"{powered['true_lift']:.4f} ({powered['true_relative_lift']:+.1%}). **The CI covered "
        f"it in {powered['covered']} of {len(power)} pilots and excluded zero in "
        f"{powered['excluded_zero']} of {len(power)}** (80 % expected).",
        "",
        *header,
        *[_row(trial) for trial in power],
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
