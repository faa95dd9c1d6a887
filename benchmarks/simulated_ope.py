"""Off-policy evaluation against the simulator's truth: does `perkrank evaluate-offline` find a
new policy's TRUE redemption rate from 100,000 logged decisions?

A synthetic program; a logging model (planted tastes blurred by noise 2) explores by softmax
over its best `pool` offers, so each logged offer has its propensity; redemptions are drawn
from the response model. A NEW model (tastes blurred by noise 1) is estimated by the code of
`evaluate-offline` (IPS, SNIPS, DR) and compared with its truth
(`perkrank.simulation.ope_check`: one estimand, per impression at the logged list length).
Writes benchmarks/results/simulated_ope.md and .json.

    .venv/bin/python -m benchmarks.simulated_ope [--decisions 100000] [--seeds 1]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

from perkrank.simulation.ope_check import OpeSetting, OpeTrial, ope_trial

RESULTS = Path(__file__).parent / "results"
TOLERANCE = 0.10
"""The issue's bound on the DR estimate's relative error."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=100_000)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    arguments = parser.parse_args()
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    setting = replace(OpeSetting(), decisions=arguments.decisions)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="simulated-ope-") as scratch:
        trials = [trial_record(ope_trial(Path(scratch), setting, seed)) for seed in
                  range(arguments.seeds)]  # fmt: skip
    result = {
        "setting": vars(setting),
        "trials": trials,
        "seconds": round(time.perf_counter() - started, 1),
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
    }
    arguments.out.mkdir(parents=True, exist_ok=True)
    (arguments.out / "simulated_ope.json").write_text(json.dumps(result, indent=2) + "\n")
    (arguments.out / "simulated_ope.md").write_text(markdown(result))
    print(markdown(result))
    return 0


def trial_record(trial: OpeTrial) -> dict[str, Any]:
    """One trial's redemption estimates per impression (with CIs) beside the truth."""
    evaluation = trial.evaluation
    estimates = {
        name: {
            "per_impression": estimate.per_impression,
            "per_impression_ci": list(estimate.per_impression_ci),
            "per_decision": estimate.per_decision,
            "per_decision_ci": list(estimate.per_decision_ci),
            "relative_error": estimate.per_impression / trial.true_per_impression - 1,
            "covers_truth": estimate.per_impression_ci[0]
            <= trial.true_per_impression
            <= estimate.per_impression_ci[1],
        }
        for name, estimate in evaluation.estimates["redemption"].items()
    }
    return {
        "decisions": evaluation.decisions,
        "agreement": evaluation.agreement,
        "effective_sample_size": evaluation.effective_sample_size,
        "true_per_impression": trial.true_per_impression,
        "true_per_decision": trial.true_per_decision,
        "sample_true_per_decision": trial.sample_true_per_decision,
        "logged_per_decision": trial.logged_per_decision,
        "estimates": estimates,
    }


def markdown(result: dict[str, Any]) -> str:
    """The trials as a markdown table."""
    setting = result["setting"]
    lines = [
        "# Off-policy evaluation against the simulator's truth",
        "",
        f"{setting['members']} members, {setting['decisions']} logged decisions of "
        f"{setting['limit']} offers; logger: tastes + noise {setting['logger_noise']:g}, "
        f"softmax (temperature {setting['temperature']:g}) over its best {setting['pool']}; "
        f"new policy: tastes + noise {setting['target_noise']:g}, its own top "
        f"{setting['limit']}. Redemptions per impression; truth: the response model's "
        f"expectation of the new policy's lists (same estimand). {result['seconds']} s on "
        f"{result['machine']}.",
        "",
        "| seed | truth | logged policy | estimator | estimate (95 % CI) | error | CI covers |",
        "|---:|---:|---:|---|---|---:|---|",
    ]
    for seed, trial in enumerate(result["trials"]):
        logged = trial["logged_per_decision"] / setting["limit"]
        for name, estimate in trial["estimates"].items():
            low, high = estimate["per_impression_ci"]
            lines.append(
                f"| {seed} | {trial['true_per_impression']:.4f} | {logged:.4f} | "
                f"{name.upper()} | {estimate['per_impression']:.4f} ({low:.4f} … {high:.4f}) | "
                f"{estimate['relative_error']:+.1%} | {_yes(estimate['covers_truth'])} |"
            )
    dr_errors = [abs(trial["estimates"]["dr"]["relative_error"]) for trial in result["trials"]]
    lines += [
        "",
        f"DR within {TOLERANCE:.0%} of the truth in "
        f"{sum(error <= TOLERANCE for error in dr_errors)}/{len(dr_errors)} seeds (largest error "
        f"{max(dr_errors):.1%}); IPS's CI covers the truth in "
        f"{sum(t['estimates']['ips']['covers_truth'] for t in result['trials'])}/"
        f"{len(dr_errors)}. Effective sample size per position (seed 0): "
        + ", ".join(f"{size:.0f}" for size in result["trials"][0]["effective_sample_size"])
        + ".",
    ]
    return "\n".join(lines) + "\n"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


if __name__ == "__main__":
    raise SystemExit(main())
