"""Does training on a pilot's events make the next model better? The simulator knows.

A synthetic program; model A is trained on its purchases (configs/train.yaml, not
registered). A simulated pilot of `--days` days serves A through the real service
(`perkrank simulate`); the next models are trained on the purchases plus the pilot's events,
with redemptions only (the default of `perkrank train --events`), and with clicks too; the
first also with the offer-level response prior its training stored (smoothed redemptions per
impression per offer, `models.offer_rates`) at several weights (the B rows without it). Each
model's TRUE redemptions per member and per impression (response model, every member ranked
by the serving code) are compared, with a model that knows the planted tastes exactly as the
ceiling. Writes benchmarks/results/simulated_training.md and .json.

    .venv/bin/python benchmarks/simulated_training.py [--members 3000] [--days 14]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
import warnings
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

from perkrank.config import CONFIG_DIR, ServeConfig, TrainConfig, load_config
from perkrank.features.dataset import Dataset
from perkrank.features.event_interactions import read_events, with_events
from perkrank.features.loader import load_dataset
from perkrank.features.synthetic import generate
from perkrank.features.synthetic.response import ResponseModel
from perkrank.models.bundle import Bundle
from perkrank.serving.domain.catalog import catalog_from_dataset
from perkrank.serving.domain.experiments import Assignment
from perkrank.serving.domain.ranking import PERSONALIZED, OfferRanker
from perkrank.simulation.bundles import taste_bundle
from perkrank.simulation.pilot import shown_lists, simulate
from perkrank.simulation.truth import PolicyTruth, policy_truth
from perkrank.training.pipeline import train

RESULTS = Path(__file__).parent / "results"
LIMIT = 5
PRIOR_WEIGHTS = (0.5, 1.0, 2.0)
"""Weights of the offer-level response prior tried on the model trained with redemptions."""
VARIANTS = {"redemptions": {"redemption": 1}, "clicks+redemptions": {"redemption": 1, "click": 1}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=3000)
    parser.add_argument("--months", type=int, default=4)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--out", type=Path, default=RESULTS)
    arguments = parser.parse_args()
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    started = time.perf_counter()
    config = load_config(TrainConfig, CONFIG_DIR / "train.yaml")
    with tempfile.TemporaryDirectory(prefix="simulated-training-") as scratch:
        work = Path(scratch)
        data_dir = work / "data"
        generate(data_dir, members=arguments.members, months=arguments.months, seed=31,
                 start=date(2025, 1, 1))  # fmt: skip
        dataset = load_dataset(data_dir)
        response = ResponseModel.load(data_dir)
        first = train(data_dir, config, output_dir=work / "A", register=False).bundle_dir
        pilot = simulate(
            data_dir, days=arguments.days, seed=1, model_uri=str(first), limit=LIMIT,
            with_truth=False,
        )  # fmt: skip
        pilot.write(work / "pilot")
        events_file = work / "pilot" / "events.parquet"
        events = read_events(events_file)
        models = {"A (purchases)": Bundle.load(first)}
        for name, rows in VARIANTS.items():
            added = with_events(dataset, events, rows)[1]
            trained = train(
                data_dir, config, output_dir=work / name, register=False, events=events_file,
                event_rows=rows,
            )  # fmt: skip
            learned = Bundle.load(trained.bundle_dir)
            models[f"B (+ {name}: {added} rows)"] = replace(learned, offer_rates=None)
            if name == "redemptions":
                models |= _with_prior(learned, f"B (+ {name})")
        models["planted tastes (ceiling)"] = taste_bundle(data_dir, dataset, 0.0)
        truth = {
            name: _truth(bundle, dataset, response, arguments.days)
            for name, bundle in models.items()
        }
    result = {
        "members": arguments.members,
        "months": arguments.months,
        "pilot_days": arguments.days,
        "pilot_visits": pilot.visits,
        "pilot_events": len(pilot.events),
        "truth": {name: vars(value) for name, value in truth.items()},
        "seconds": round(time.perf_counter() - started, 1),
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
    }
    arguments.out.mkdir(parents=True, exist_ok=True)
    (arguments.out / "simulated_training.json").write_text(json.dumps(result, indent=2) + "\n")
    (arguments.out / "simulated_training.md").write_text(_markdown(result))
    print(_markdown(result))
    return 0


def _with_prior(bundle: Bundle, name: str) -> dict[str, Bundle]:
    """`bundle` with its offer-level response prior (`models.offer_rates`) at each weight."""
    rates = bundle.offer_rates
    assert rates is not None, "train --events stores the offer rates"
    return {
        f"{name} + response prior ×{weight:g}": replace(
            bundle, offer_rates=replace(rates, weight=weight)
        )
        for weight in PRIOR_WEIGHTS
    }


def _truth(bundle: Bundle, dataset: Dataset, response: ResponseModel, days: int) -> PolicyTruth:
    settings = ServeConfig(catalog_date=response.catalog_date)
    ranker = OfferRanker(bundle, catalog_from_dataset(dataset, bundle), settings)
    shown = shown_lists(ranker, list(response.member_rows), LIMIT, Assignment("", "", PERSONALIZED))
    return policy_truth(response, shown, days)


def _markdown(result: dict[str, Any]) -> str:
    first = result["truth"]["A (purchases)"]["redemptions_per_member"]
    lines = [
        "# Simulated training: does a pilot's events make the next model better?",
        "",
        f"{result['members']} members, {result['months']} months of purchases; pilot of "
        f"{result['pilot_days']} days serving model A: {result['pilot_visits']} visits, "
        f"{result['pilot_events']} events. TRUE rates under the response model, every member "
        f"ranked by the serving code ({LIMIT} offers per visit). {result['seconds']} s on "
        f"{result['machine']}.",
        "",
        "| model | redemptions per member | vs A | redemptions per impression |",
        "|---|---:|---:|---:|",
    ]
    for name, truth in result["truth"].items():
        per_member = truth["redemptions_per_member"]
        lines.append(
            f"| {name} | {per_member:.4f} | {per_member / first - 1:+.1%} | "
            f"{truth['redemption_rate']:.4f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
