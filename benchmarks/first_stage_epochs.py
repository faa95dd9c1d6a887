"""Epochs of the first-stage components against validation quality, 100,000 members × 12 months.

LightFM, BPR and ALS fits are most of `perkrank train`'s CPU (issue 11 item 6). This fits each
once at the validation cutoff (`perkrank train`'s own features, config and seed; LightFM and
BPR at several learning rates) and checkpoints it along the way: at each checkpoint it records
the component's validation NDCG@10 alone and, for a blended one, the blend's (the other
components as configured, weights searched on the validation window as `train` does), with the
fitting CPU seconds so far. Nothing here sees the test window. Writes
benchmarks/results/first_stage_epochs.md and .json.

    .venv/bin/python benchmarks/first_stage_epochs.py [--members 100000] [--components bpr als]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
from implicit.cpu.als import AlternatingLeastSquares
from implicit.cpu.bpr import BayesianPersonalizedRanking
from threadpoolctl import threadpool_limits

from perkrank.config import CONFIG_DIR, TrainConfig, load_config
from perkrank.features.dataset import Dataset
from perkrank.features.interactions import cutoff_features
from perkrank.features.loader import load_dataset
from perkrank.features.offer_features import item_feature_table
from perkrank.features.synthetic import generate
from perkrank.features.training_data import TrainingData
from perkrank.models.als import als_factors
from perkrank.models.blend import score_scale
from perkrank.models.bpr import bpr_factors
from perkrank.models.factors import Factors
from perkrank.models.hybrid import LightFMFit, lightfm_factors, train_lightfm
from perkrank.training import pipeline
from perkrank.training.blend_search import blend_metric, window_scores
from perkrank.training.components import FittedComponents, component_fitters
from perkrank.training.weights import choose_weights

RESULTS = Path(__file__).parent / "results"
CHECKPOINTS = {"lightfm": (5, 8, 10, 12, 15, 20), "bpr": (25, 50, 75, 100), "als": (5, 10, 15)}
RATES = {"lightfm": (0.05, 0.1), "bpr": (0.01, 0.03, 0.05)}


def _ndcg(window, scaled: dict[str, np.ndarray], weights: dict[str, float], config) -> float:
    return round(blend_metric(window, scaled, weights, config), 4)


def _scaled(window, factors: Factors, seed: int) -> np.ndarray:
    return window_scores(window, factors) / score_scale(factors, seed=seed)


def run(dataset: Dataset, config: TrainConfig, eval_members: int, names: list[str]) -> dict:
    """Checkpoint rows of the `names` components on the validation window."""
    dates = pipeline.split_dates(dataset, config)
    moment = datetime.combine(dates.validation_start, datetime.min.time())
    features = cutoff_features(dataset, moment, config.interactions)
    data = features.data
    fitters = component_fitters(config)
    blended = {name: fitters[name](data) for name in config.blend.weights}
    fitted = FittedComponents(
        dates.validation_start,
        blended,
        features.member_features,
        item_feature_table(dataset),
        features.items_bought_before,
    )
    window = pipeline.evaluation_window(
        dataset, dates.test_start, fitted, config, max_members=eval_members
    )
    scaled = {name: _scaled(window, model, config.seed) for name, model in blended.items()}

    def row(name: str, rate: float | None, epochs: int, cpu: float, factors: Factors) -> dict:
        candidate = scaled | {name: _scaled(window, factors, config.seed)}
        result = {
            "component": name,
            "learning_rate": rate,
            "epochs": epochs,
            "fit_cpu_s": round(cpu, 1),
            "alone_ndcg@10": _ndcg(window, candidate, {name: 1.0}, config),
        }
        if name in config.blend.weights:
            chosen = choose_weights(
                lambda w: blend_metric(window, candidate, w, config), config.blend.weights
            )
            result |= {"blend_ndcg@10": _ndcg(window, candidate, chosen, config), "weights": chosen}
        print(result, file=sys.stderr, flush=True)
        return result

    sweeps = {"lightfm": _lightfm_checkpoints, "bpr": _bpr_checkpoints, "als": _als_checkpoints}
    rows = [
        row(name, rate, epochs, cpu, factors)
        for name in names
        for rate, epochs, cpu, factors in sweeps[name](data, config)
    ]
    return {"validation": window.summary(), "rows": rows}


Checkpoint = tuple[float | None, int, float, Factors]
"""Learning rate, epochs, fit CPU seconds so far, the model at that point."""


def _lightfm_checkpoints(data: TrainingData, config: TrainConfig) -> Iterator[Checkpoint]:
    for rate in RATES["lightfm"]:
        settings = config.lightfm.model_copy(
            update={"learning_rate": rate, "epochs": max(CHECKPOINTS["lightfm"])}
        )
        kept: list[Checkpoint] = []
        train_lightfm(
            data, settings, seed=config.seed, threads=1, on_epoch=_keeper(kept, rate, data)
        )
        yield from kept


def _keeper(kept: list[Checkpoint], rate: float, data: TrainingData) -> Callable[..., None]:
    """An `on_epoch` hook appending LightFM's checkpoints to `kept`, with the fitting CPU
    seconds so far (the hook's own time left out)."""
    clock = {"cpu": 0.0, "since": time.process_time()}

    def keep(epoch: int, fit: LightFMFit) -> None:
        clock["cpu"] += time.process_time() - clock["since"]
        if epoch in CHECKPOINTS["lightfm"]:
            kept.append((rate, epoch, clock["cpu"], lightfm_factors(fit, data)))
        clock["since"] = time.process_time()

    return keep


def _implicit_checkpoints(
    model: Any, name: str, rate: float | None, data: TrainingData, export: Callable[..., Factors]
) -> Iterator[Checkpoint]:
    """Fit an implicit model, copying its factors at `name`'s checkpoints."""
    snapshots: dict[int, tuple[np.ndarray, np.ndarray, float]] = {}
    started = time.process_time()

    def keep(iteration: int, *_: object) -> None:
        if iteration + 1 in CHECKPOINTS[name]:
            snapshots[iteration + 1] = (
                model.user_factors.copy(),
                model.item_factors.copy(),
                time.process_time() - started,
            )

    with threadpool_limits(1, "blas"):
        model.fit(data.user_items, show_progress=False, callback=keep)
    for iterations, (users, items, cpu) in snapshots.items():
        model.user_factors, model.item_factors = users, items
        yield rate, iterations, cpu, export(model, data)


def _bpr_checkpoints(data: TrainingData, config: TrainConfig) -> Iterator[Checkpoint]:
    bpr = config.bpr
    for rate in RATES["bpr"]:
        model = BayesianPersonalizedRanking(
            factors=bpr.factors,
            learning_rate=rate,
            regularization=bpr.regularization,
            iterations=max(CHECKPOINTS["bpr"]),
            dtype=np.float32,
            num_threads=1,
            random_state=config.seed,
        )
        yield from _implicit_checkpoints(model, "bpr", rate, data, bpr_factors)


def _als_checkpoints(data: TrainingData, config: TrainConfig) -> Iterator[Checkpoint]:
    als = config.als
    model = AlternatingLeastSquares(
        factors=als.factors,
        regularization=als.regularization,
        alpha=als.alpha,
        iterations=max(CHECKPOINTS["als"]),
        dtype=np.float32,
        num_threads=config.threads,
        random_state=config.seed,
    )
    yield from _implicit_checkpoints(model, "als", None, data, als_factors)


def _cell(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def write(result: dict, members: int) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "first_stage_epochs.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"# Epochs of the first-stage components against validation NDCG@10: {members:,} "
        "members × 12 months",
        "",
        f"Machine: {os.cpu_count()} cores (shared). Command: "
        "`.venv/bin/python benchmarks/first_stage_epochs.py`. Validation window "
        f"{result['validation']['start']} .. {result['validation']['end']}, "
        f"{result['validation']['members']:,} members sampled; "
        "fit CPU seconds cumulative up to the checkpoint (LightFM and BPR on one thread). "
        "The blend's weights are searched on the same window as `train` searches them "
        "(BPR is not blended: —); the other "
        "blended components are fitted as `configs/train.yaml` says at the time of the run "
        "(the LightFM rows with ALS at 15 iterations, the ALS rows with LightFM at 12 epochs). "
        "ALS fits on `threads` threads, its CPU seconds count all of them.",
        "",
        "| component | learning rate | epochs | fit CPU s | alone NDCG@10 | blend NDCG@10 |",
        "|---|---:|---:|---:|---:|---:|",
        *[
            f"| {row['component']} | {row['learning_rate'] or '—'} | {row['epochs']} | "
            f"{row['fit_cpu_s']:.1f} | {row['alone_ndcg@10']:.4f} | "
            f"{_cell(row.get('blend_ndcg@10'))} |"
            for row in result["rows"]
        ],
        "",
    ]
    (RESULTS / "first_stage_epochs.md").write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--eval-members", type=int, default=20_000)
    parser.add_argument("--data", type=Path, default=Path("var/bench/epochs/data"))
    parser.add_argument(
        "--components",
        nargs="+",
        default=list(CHECKPOINTS),
        choices=list(CHECKPOINTS),
        help="components to sweep; the other components' rows are kept from the last results",
    )
    arguments = parser.parse_args()
    if not (arguments.data / "members.csv").exists():
        generate(
            arguments.data, members=arguments.members, months=12, seed=7, start=date(2025, 1, 1)
        )
    config = load_config(TrainConfig, CONFIG_DIR / "train.yaml")
    result = run(load_dataset(arguments.data), config, arguments.eval_members, arguments.components)
    previous = RESULTS / "first_stage_epochs.json"
    if previous.exists():
        kept = json.loads(previous.read_text())["rows"]
        result["rows"] = [r for r in kept if r["component"] not in arguments.components] + result[
            "rows"
        ]
    write(result, arguments.members)


if __name__ == "__main__":
    main()
