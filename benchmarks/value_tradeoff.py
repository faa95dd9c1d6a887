"""Relevance against value: NDCG@10 and value per list of the served blend for several
`value_weight`s (λ) on synthetic data.

Generates a synthetic program (its offers carry reward costs and partner co-funding), fits
the blend's components before the validation window, calibrates the blend's scores there
(`training.value_evaluation.fit_window_calibration`), fits them again before the test window
and ranks the test window with `models.value.final_scores` at each λ: the ranking key serving
uses. Writes benchmarks/results/value_tradeoff.md and value_tradeoff.json.

    .venv/bin/python benchmarks/value_tradeoff.py [--members 20000] [--months 12] [--seed 42]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from perkrank.config import CONFIG_DIR, TrainConfig, load_config
from perkrank.features.columns import Columns
from perkrank.features.loader import load_dataset
from perkrank.features.synthetic import generate
from perkrank.models import value
from perkrank.training import pipeline
from perkrank.training.components import blend_components, fit_components
from perkrank.training.value_evaluation import (
    TRADEOFF_WEIGHTS,
    fit_window_calibration,
    offer_net_values,
    value_tradeoff,
)

RESULTS = Path(__file__).parent / "results"
K = 10


def run(members: int, months: int, seed: int, start: date) -> dict[str, Any]:
    """The trade-off curve and what it was measured on."""
    config = load_config(TrainConfig, CONFIG_DIR / "train.yaml")
    weights = dict(config.blend.weights)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as directory:
        generate(Path(directory), members=members, months=months, seed=seed, start=start)
        dataset = load_dataset(directory)
    dates = pipeline.split_dates(dataset, config)
    validation_fit = fit_components(dataset, dates.validation_start, config)
    validation = pipeline.evaluation_window(dataset, dates.test_start, validation_fit, config)
    calibration = fit_window_calibration(
        validation, blend_components(validation_fit, weights, config.seed), config.seed
    )
    test_fit = fit_components(dataset, dates.test_start, config)
    window = pipeline.evaluation_window(dataset, dates.test_end, test_fit, config)
    blend = blend_components(test_fit, weights, config.seed)
    catalog_net = offer_net_values(dataset.offers)
    net = offer_net_values(dataset.offers, window.offer_ids.tolist())
    ranked_at = time.perf_counter()
    curve = value_tradeoff(
        window, blend, calibration, net, value.value_scale(catalog_net), K, TRADEOFF_WEIGHTS
    )
    return {
        "data": {"members": members, "months": months, "seed": seed, "start": str(start)},
        "window": window.summary(),
        "offers": {
            "in_window": len(net),
            "cofunded_share": float((dataset.offers[Columns.partner_funding].fillna(0) > 0).mean()),
            "net_value_scale": value.value_scale(catalog_net),
        },
        "calibration": calibration.to_dict(),
        "k": K,
        "curve": curve,
        "seconds": {
            "total": time.perf_counter() - started,
            "curve": time.perf_counter() - ranked_at,
        },
        "machine": platform.platform(),
    }


def markdown(result: dict[str, Any]) -> str:
    """The curve as a Markdown table, with what it was measured on."""
    k = result["k"]
    first = result["curve"][0]
    lines = [
        "# Value-aware ranking: relevance against value",
        "",
        f"Synthetic program: {result['data']['members']} members × "
        f"{result['data']['months']} months, seed {result['data']['seed']}; test window "
        f"{result['window']['start']} .. {result['window']['end']} (end excluded), "
        f"{result['window']['members']} members, {result['offers']['in_window']} offers, "
        f"{result['offers']['cofunded_share']:.0%} of all offers co-funded.",
        "",
        f"Calibration (validation window): p = sigmoid({result['calibration']['slope']:.4g} · "
        f"score + {result['calibration']['intercept']:.4g}).",
        "",
        "λ = `value_weight`; value terms are net value / largest |net value| of the catalog "
        f"({result['offers']['net_value_scale']:.2f}). expected_value@{k}: Σ p · net value of "
        f"the top {k}; value@{k}: Σ net value of the offers in it the member redeemed; both "
        "per list, averaged over members. Ratios are to λ = 0 measured in the same run.",
        "",
        f"| λ | ndcg@{k} | ndcg ratio | expected_value@{k} | value@{k} |",
        "|---:|---:|---:|---:|---:|",
    ]
    for point in result["curve"]:
        ratio = point[f"ndcg@{k}"] / first[f"ndcg@{k}"] if first[f"ndcg@{k}"] else 0.0
        lines.append(
            f"| {point['value_weight']:g} | {point[f'ndcg@{k}']:.4f} | {ratio:.3f} | "
            f"{point[f'expected_value@{k}']:.4f} | {point[f'value@{k}']:.4f} |"
        )
    seconds = result["seconds"]
    lines += [
        "",
        f"Total {seconds['total']:.1f} s (curve {seconds['curve']:.1f} s) on {result['machine']}.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2025, 1, 1))
    parser.add_argument("--out", type=Path, default=RESULTS)
    arguments = parser.parse_args()
    result = run(arguments.members, arguments.months, arguments.seed, arguments.start)
    arguments.out.mkdir(parents=True, exist_ok=True)
    (arguments.out / "value_tradeoff.json").write_text(json.dumps(result, indent=2) + "\n")
    (arguments.out / "value_tradeoff.md").write_text(markdown(result), encoding="utf-8")
    print(markdown(result))


if __name__ == "__main__":
    main()
