"""Off-policy estimators on synthetic decision logs whose true value is known by construction.

A logger draws 3 of 8 offers by Plackett–Luce over its scores (the `softmax` exploration of
serving, with exact conditional propensities); a member of type x clicks the offer o shown at
position k with probability θ[x, o] · bias[k]. The target shows its own top 3, so its true
clicks per decision are the mean over types of Σ_k θ[x, t_k] · bias[k]. Writes
benchmarks/results/off_policy.md and .json: each estimator's value, interval and error over
several seeds at 100,000 logged decisions.

    .venv/bin/python -m benchmarks.off_policy [--decisions 100000] [--seeds 5]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from perkrank.training.off_policy import (
    LoggedLists,
    RewardModel,
    deterministic_target,
    doubly_robust,
    ips,
    snips,
)

RESULTS = Path(__file__).parent / "results"
OFFERS, POSITIONS, TYPES = 8, 3, 4
POSITION_BIAS = np.array([1.0, 0.6, 0.4])


class SyntheticLog(NamedTuple):
    """A logged sample, the target's list per decision and the target's true value."""

    logged: LoggedLists
    target_lists: list[list[str]]
    true_per_decision: float


def synthetic_log(decisions: int, seed: int, world_seed: int = 0) -> SyntheticLog:
    """`decisions` logged decisions drawn with `seed` in the world `world_seed` builds."""
    world = np.random.default_rng(world_seed)
    theta = world.uniform(0.05, 0.4, size=(TYPES, OFFERS))
    target_scores = world.normal(size=(TYPES, OFFERS))
    logger_scores = target_scores + 0.5 * world.normal(size=(TYPES, OFFERS))
    target_top = np.argsort(-target_scores, axis=1)[:, :POSITIONS]
    true_value = float(
        np.mean([(theta[x, target_top[x]] * POSITION_BIAS).sum() for x in range(TYPES)])
    )
    rng = np.random.default_rng(seed)
    types = rng.integers(TYPES, size=decisions)
    logits = logger_scores[types]
    order = np.argsort(-(logits + rng.gumbel(size=logits.shape)), axis=1)[:, :POSITIONS]
    weights = np.exp(logits)
    drawn = np.take_along_axis(weights, order, axis=1)
    left = weights.sum(axis=1, keepdims=True) - np.cumsum(drawn, axis=1) + drawn
    propensities = drawn / left
    clicks = rng.random(order.shape) < np.take_along_axis(theta[types], order, axis=1) * (
        POSITION_BIAS
    )
    names = np.array([f"o{offer}" for offer in range(OFFERS)], dtype=object)
    logged = LoggedLists(
        offers=names[order],
        propensities=propensities,
        rewards=clicks.astype(float),
        lengths=np.full(decisions, POSITIONS),
    )
    return SyntheticLog(logged, names[target_top[types]].tolist(), true_value)


def evaluate(log: SyntheticLog) -> dict[str, dict[str, float]]:
    """Each estimator's value and interval per decision, and its error against the truth."""
    model = RewardModel(log.logged)
    target = deterministic_target(log.logged, log.target_lists, model)
    found = {
        "ips": ips(log.logged, target),
        "snips": snips(log.logged, target),
        "dr": doubly_robust(log.logged, target, model),
    }
    return {
        name: {
            "value": estimate.per_decision,
            "low": estimate.per_decision_ci[0],
            "high": estimate.per_decision_ci[1],
            "relative_error": estimate.per_decision / log.true_per_decision - 1,
            "covers_truth": estimate.per_decision_ci[0]
            <= log.true_per_decision
            <= estimate.per_decision_ci[1],
        }
        for name, estimate in found.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--decisions", type=int, default=100_000)
    parser.add_argument("--seeds", type=int, default=5)
    arguments = parser.parse_args()
    runs = []
    for seed in range(arguments.seeds):
        started = time.perf_counter()
        log = synthetic_log(arguments.decisions, seed)
        found = evaluate(log)
        runs.append(
            {
                "seed": seed,
                "truth": log.true_per_decision,
                "seconds": round(time.perf_counter() - started, 2),
                **found,
            }
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "off_policy.json").write_text(json.dumps(runs, indent=2) + "\n", encoding="utf-8")
    lines = [
        f"# Off-policy estimators at {arguments.decisions:,} logged decisions",
        "",
        "Clicks per decision of a deterministic top-3 target; logger: Plackett–Luce over 8 "
        "offers. Error: estimate / truth − 1.",
        "",
        "| seed | truth | IPS (95 % CI) | SNIPS (95 % CI) | DR (95 % CI) | DR error | seconds |",
        "|---:|---:|---|---|---|---:|---:|",
    ]
    for run in runs:
        cells = [
            f"{run[name]['value']:.4f} ({run[name]['low']:.4f} … {run[name]['high']:.4f})"
            for name in ("ips", "snips", "dr")
        ]
        lines.append(
            f"| {run['seed']} | {run['truth']:.4f} | {' | '.join(cells)} | "
            f"{run['dr']['relative_error']:+.2%} | {run['seconds']} |"
        )
    (RESULTS / "off_policy.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
