"""perkrank's models on real purchases: the UCI Online Retail data, ranked at item level.

Imports the raw file (`perkrank.features.online_retail`), splits it by time with the pipeline's
rule (test window from `split.test_start`, validation window just before it), chooses the blend
weights and fits the served second stage (`training.ranker_step`, with `ranker` of the config:
its earlier label snapshots and the tree ensemble) on the validation window only, then fits
every model on the data before the test window and evaluates them all on it, next to
implicit's ALS with its default settings on raw counts.
Writes benchmarks/results/online_retail.md and online_retail.json.

    .venv/bin/python benchmarks/online_retail.py [--config configs/online_retail.yaml] \
        [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import gzip
import os
import platform
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from implicit.cpu.als import AlternatingLeastSquares
from online_retail_report import IMPLICIT_DEFAULTS, MODELS, SERVED, K, write
from threadpoolctl import threadpool_limits

from perkrank.config import CONFIG_DIR, InteractionConfig, TrainConfig, load_config
from perkrank.features.dataset import Dataset
from perkrank.features.interactions import build_training_data
from perkrank.features.loader import load_dataset
from perkrank.features.online_retail import import_online_retail
from perkrank.models.als import als_factors
from perkrank.models.factors import Factors
from perkrank.progress import report, step
from perkrank.training import components, pipeline, ranker_step
from perkrank.training.compare import served_verdict
from perkrank.training.evaluation import EvaluationReport, evaluate_models
from perkrank.training.window import EvaluationWindow

SOURCE = Path(__file__).resolve().parents[2] / "shared/datasets/online-retail/online_retail.csv.gz"
"""The UCI file in the shared datasets folder beside this checkout."""
RESULTS = Path(__file__).parent / "results"


def fit_implicit_defaults(dataset: Dataset, cutoff: date, config: TrainConfig) -> Factors:
    """implicit's `AlternatingLeastSquares()` with default settings on raw purchase counts."""
    moment = datetime.combine(cutoff, datetime.min.time())
    raw_counts = InteractionConfig(weighting="count", half_life_days=None)
    data = build_training_data(dataset, moment, raw_counts)
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(num_threads=config.threads, random_state=config.seed)
        model.fit(data.user_items, show_progress=False)
    return als_factors(model, data, name=IMPLICIT_DEFAULTS)


def fit_all(dataset: Dataset, cutoff: date, config: TrainConfig) -> components.FittedComponents:
    """The pipeline's components plus the implicit-defaults baseline, fitted before `cutoff`."""
    fitted = components.fit_components(dataset, cutoff, config)
    with step("fit implicit ALS with default settings on raw counts"):
        fitted.models[IMPLICIT_DEFAULTS] = fit_implicit_defaults(dataset, cutoff, config)
    return fitted


def evaluate_all(
    dataset: Dataset,
    window: EvaluationWindow,
    fitted: components.FittedComponents,
    weights: Mapping[str, float],
    stage: ranker_step.StageModels | None,
    config: TrainConfig,
) -> EvaluationReport:
    """Every baseline, component, the blend with `weights` and the second stage (statistics
    before the window) on the same window."""
    models = {name: fitted.models[name] for name in MODELS if name in fitted.models}
    models[pipeline.BLEND] = components.blend_components(fitted, weights, config.seed)
    evaluation = evaluate_models(window, models, config.evaluation.k_values)
    ranker_step.add_evaluation(
        evaluation,
        dataset,
        window,
        models[pipeline.BLEND],
        models[pipeline.FALLBACK],
        stage,
        config.evaluation.k_values,
    )
    served = SERVED if SERVED in evaluation.models else pipeline.BLEND
    evaluation.verdict = served_verdict(evaluation, served, K, seed=config.seed)
    return evaluation


def validate(
    dataset: Dataset, dates: pipeline.SplitDates, config: TrainConfig
) -> tuple[dict[str, float], ranker_step.StageModels | None, EvaluationReport]:
    """Blend weights and the second stage fitted on the validation window (the pipeline's
    steps), and every model's metrics there."""
    fitted = fit_all(dataset, dates.validation_start, config)
    window = pipeline.evaluation_window(dataset, dates.test_start, fitted, config)
    weights = dict(config.blend.weights)
    if config.blend.fit_weights:
        with step("choose blend weights on the validation window"):
            weights = pipeline.search_blend_weights(window, fitted.models, config)
            report(f"weights {weights}")
    length = dates.test_start - dates.validation_start
    earlier = []
    for cutoff in ranker_step.snapshot_cutoffs(dates.validation_start, config.ranker):
        snapshot = components.fit_components(dataset, cutoff, config, names=list(weights))
        earlier.append(
            (
                pipeline.evaluation_window(dataset, cutoff + length, snapshot, config),
                components.blend_components(snapshot, weights, config.seed),
            )
        )
    stage = ranker_step.fit_on_window(
        dataset,
        window,
        components.blend_components(fitted, weights, config.seed),
        seed=config.seed,
        config=config.ranker,
        earlier=earlier,
    )
    with step("evaluate on the validation window"):
        evaluation = evaluate_all(dataset, window, fitted, weights, stage, config)
    return weights, stage, evaluation


def test(
    dataset: Dataset,
    dates: pipeline.SplitDates,
    weights: Mapping[str, float],
    stage: ranker_step.StageModels | None,
    config: TrainConfig,
) -> EvaluationReport:
    """Every model fitted before the test window and evaluated on it."""
    fitted = fit_all(dataset, dates.test_start, config)
    window = pipeline.evaluation_window(dataset, dates.test_end, fitted, config)
    with step("evaluate on the test window"):
        return evaluate_all(dataset, window, fitted, weights, stage, config)


def raw_line_count(source: Path) -> int:
    """Data lines of the raw CSV (the header excluded)."""
    opener = gzip.open if source.suffix == ".gz" else open
    with opener(source, "rb") as file:
        return sum(1 for _ in file) - 1


def run(source: Path, config: TrainConfig, work_dir: Path) -> dict[str, Any]:
    """Import, validate, test; every number the results files show."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    with step(f"import {source}"):
        rows = import_online_retail(source, work_dir / "data")
    timings["import"] = time.perf_counter() - started
    dataset = load_dataset(work_dir / "data")
    timings["load"] = time.perf_counter() - started - sum(timings.values())
    dates = pipeline.split_dates(dataset, config)
    weights, stage, validation = validate(dataset, dates, config)
    timings["validation: fit, weight search, second stage, evaluate"] = (
        time.perf_counter() - started - sum(timings.values())
    )
    evaluation = test(dataset, dates, weights, stage, config)
    timings["test: fit, evaluate"] = time.perf_counter() - started - sum(timings.values())
    timings["total"] = time.perf_counter() - started
    purchases = dataset.purchases
    test_start = pd.Timestamp(dates.test_start)
    return {
        "source": str(source),
        "raw_lines": raw_line_count(source),
        "rows": rows,
        "data": {
            "first_purchase": f"{purchases['ts'].min():%Y-%m-%d %H:%M}",
            "last_purchase": f"{purchases['ts'].max():%Y-%m-%d %H:%M}",
            "regions": int(dataset.members["region"].nunique()),
            "categories": int(dataset.offers["category"].nunique()),
            "purchases_before_test": int((purchases["ts"] < test_start).sum()),
            "purchases_in_test": int((purchases["ts"] >= test_start).sum()),
        },
        "split": {
            "validation": [dates.validation_start.isoformat(), dates.test_start.isoformat()],
            "test": [dates.test_start.isoformat(), dates.test_end.isoformat()],
        },
        "config": config.model_dump(mode="json", exclude={"registry"}),
        "weights": weights,
        "validation": validation.to_dict(),
        "test": evaluation.to_dict(),
        "timings_seconds": {name: round(seconds, 1) for name, seconds in timings.items()},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }


def parse_arguments(arguments: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=CONFIG_DIR / "online_retail.yaml")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--source", type=Path, default=SOURCE)
    parser.add_argument("--work-dir", type=Path, default=Path("var/online_retail"))
    return parser.parse_args(arguments)


def main() -> None:
    arguments = parse_arguments(sys.argv[1:])
    config = load_config(TrainConfig, arguments.config)
    result = run(arguments.source, config, arguments.work_dir)
    command = " ".join([".venv/bin/python", "benchmarks/online_retail.py", *sys.argv[1:]])
    print(write(result, arguments.out, command).read_text())


if __name__ == "__main__":
    main()
