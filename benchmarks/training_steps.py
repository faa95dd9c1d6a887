"""Time every training step on 100,000 members × 12 months of synthetic data (2 cores).

Each step and the whole `train` (three windows, weight search, MLflow) report wall seconds
and process CPU seconds (all threads): other work on a shared machine inflates wall seconds,
not CPU seconds. The floor is fitting every component once, one after the other, at the test
cutoff; `train` is reported as a multiple of it. Goal: `train` ≤ 120 s wall. Also times our
ALS step against implicit's ALS called directly with the same parameters on the same matrix,
and records the test-window NDCG@10 of every model. Writes benchmarks/results/training_steps.md
and .json.

    .venv/bin/python benchmarks/training_steps.py [--members 100000] [--months 12]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path

import numpy as np
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from perkrank.config import CONFIG_DIR, TrainConfig, load_config
from perkrank.features.interactions import cutoff_features
from perkrank.features.loader import load_dataset
from perkrank.features.offer_features import item_feature_table
from perkrank.features.synthetic import generate
from perkrank.models.als import fit_als
from perkrank.training import components, pipeline

RESULTS = Path(__file__).parent / "results"
GOAL_SECONDS = 120.0
TRAIN = "train (whole pipeline, with weight search and MLflow)"
FIT_FLOOR = "fit every component once (sum)"


@contextmanager
def timed(timings: dict[str, dict[str, float]], name: str):
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    timings[name] = {
        "wall": round(time.perf_counter() - wall, 2),
        "cpu": round(time.process_time() - cpu, 2),
    }
    print(f"{name}: {timings[name]}", file=sys.stderr, flush=True)


def run(members: int, months: int, work_dir: Path) -> dict:
    config = load_config(TrainConfig, CONFIG_DIR / "train.yaml")
    config = config.model_copy(
        update={
            "registry": config.registry.model_copy(
                update={"tracking_uri": f"sqlite:///{work_dir.resolve()}/mlflow.db"}
            )
        }
    )
    data_dir = work_dir / "data"
    timings: dict[str, dict[str, float]] = {}
    with timed(timings, "generate"):
        rows = generate(data_dir, members=members, months=months, seed=7, start=date(2025, 1, 1))
    with timed(timings, "validate (load_dataset)"):
        dataset = load_dataset(data_dir)
    dates = pipeline.split_dates(dataset, config)
    cutoff = datetime.combine(dates.test_start, datetime.min.time())
    with timed(timings, "features (interaction matrix)"):
        features = cutoff_features(dataset, cutoff, config.interactions)
        data = features.data
    fitters = components.component_fitters(config)
    models = {}
    for name, fit in fitters.items():
        with timed(timings, f"fit {name}"):
            models[name] = fit(data)
    fitted = components.FittedComponents(
        cutoff=dates.test_start,
        models=models,
        member_features=features.member_features,
        item_features=item_feature_table(dataset),
        items_bought_before=features.items_bought_before,
    )
    with timed(timings, "blend"):
        models["blend"] = components.blend_components(fitted, config.blend.weights, config.seed)
    with timed(timings, "evaluation window"):
        window = pipeline.evaluation_window(dataset, dates.test_end, fitted, config)
    with timed(timings, f"evaluate {len(models)} models"):
        pipeline.evaluate_models(window, models, config.evaluation.k_values)
    fits = [timings[f"fit {name}"] for name in fitters]
    floor = {kind: round(sum(fit[kind] for fit in fits), 2) for kind in ("wall", "cpu")}
    with timed(timings, TRAIN):
        trained = pipeline.train(data_dir, config, output_dir=work_dir / "train")
    als = compare_als(data.user_items, config)
    return {
        "rows": rows,
        "matrix": [int(s) for s in data.user_items.shape],
        "non_zeros": int(data.user_items.nnz),
        "timings_seconds": timings,
        "fit_floor_seconds": floor,
        "train_over_floor": {
            kind: round(timings[TRAIN][kind] / floor[kind], 2) for kind in ("wall", "cpu")
        },
        "goal_met": timings[TRAIN]["wall"] <= GOAL_SECONDS,
        "weights": trained.weights,
        "test_ndcg@10": {
            name: round(report.metrics[pipeline.OVERALL]["ndcg@10"], 4)
            for name, report in trained.evaluation.models.items()
        },
        "als": als,
    }


def compare_als(user_items, config: TrainConfig) -> dict[str, float]:
    """Our fit_als against implicit's ALS called directly, same parameters and matrix."""
    from perkrank.features.training_data import TrainingData

    data = TrainingData(
        member_ids=np.arange(user_items.shape[0]).astype(str),
        item_ids=np.arange(user_items.shape[1]).astype(str),
        user_items=user_items,
        purchase_counts=user_items,
        purchase_totals=user_items,
        member_features=[[] for _ in range(user_items.shape[0])],
        item_features=[[] for _ in range(user_items.shape[1])],
        member_segments=np.full(user_items.shape[0], "all"),
    )
    started = time.perf_counter()
    fit_als(data, config.als, seed=config.seed, threads=config.threads)
    ours = time.perf_counter() - started
    started = time.perf_counter()
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=config.als.factors,
            regularization=config.als.regularization,
            alpha=config.als.alpha,
            iterations=config.als.iterations,
            dtype=np.float32,
            num_threads=config.threads,
            random_state=config.seed,
        )
        model.fit(user_items, show_progress=False)
    direct = time.perf_counter() - started
    return {"perkrank fit_als": round(ours, 2), "implicit ALS direct": round(direct, 2)}


def write(result: dict, members: int, months: int) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    result["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version()}
    train, floor = result["timings_seconds"][TRAIN], result["fit_floor_seconds"]
    ratio, als = result["train_over_floor"], result["als"]
    als_ratio = als["perkrank fit_als"] / als["implicit ALS direct"]
    (RESULTS / "training_steps.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"# Training steps: {members:,} members × {months} months (synthetic, seed 7)",
        "",
        f"Machine: {os.cpu_count()} cores. "
        "Command: `.venv/bin/python benchmarks/training_steps.py`",
        "",
        f"Rows: {result['rows']}; training matrix {result['matrix'][0]:,} × "
        f"{result['matrix'][1]:,}, {result['non_zeros']:,} non-zeros.",
        "",
        f"`train`: {train['wall']:.1f} s wall (goal ≤ {GOAL_SECONDS:.0f} s: "
        f"{'met' if result['goal_met'] else 'NOT met'}), {train['cpu']:.1f} s CPU; "
        f"{ratio['wall']:.2f}× (wall) and {ratio['cpu']:.2f}× (CPU) the floor of "
        f"fitting every component once ({floor['wall']:.1f} s wall, {floor['cpu']:.1f} s CPU).",
        "",
        "| step | wall s | CPU s |",
        "|---|---:|---:|",
        *[
            f"| {name} | {seconds['wall']:.2f} | {seconds['cpu']:.2f} |"
            for name, seconds in result["timings_seconds"].items()
        ],
        f"| {FIT_FLOOR} | {floor['wall']:.2f} | {floor['cpu']:.2f} |",
        "",
        f"Chosen blend weights: {result['weights']}",
        "",
        "| model | test NDCG@10 |",
        "|---|---:|",
        *[f"| {name} | {value:.4f} |" for name, value in result["test_ndcg@10"].items()],
        "",
        "| ALS fit, same parameters and matrix | seconds |",
        "|---|---:|",
        *[f"| {name} | {seconds:.2f} |" for name, seconds in result["als"].items()],
        f"| ratio, perkrank / implicit | {als_ratio:.2f} |",
        "",
    ]
    (RESULTS / "training_steps.md").write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--work-dir", type=Path, default=Path("var/bench/training"))
    arguments = parser.parse_args()
    result = run(arguments.members, arguments.months, arguments.work_dir)
    write(result, arguments.members, arguments.months)
    print((RESULTS / "training_steps.md").read_text())


if __name__ == "__main__":
    main()
