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
import json
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
from threadpoolctl import threadpool_limits

from perkrank.config import CONFIG_DIR, InteractionConfig, TrainConfig, load_config
from perkrank.features.dataset import Dataset
from perkrank.features.interactions import build_training_data
from perkrank.features.loader import load_dataset
from perkrank.features.online_retail import import_online_retail
from perkrank.models.als import als_factors
from perkrank.models.factors import Factors
from perkrank.models.own_pop import NAME as OWN_POP
from perkrank.progress import report, step
from perkrank.training import components, pipeline, ranker_step
from perkrank.training.compare import served_verdict
from perkrank.training.evaluation import EvaluationReport, evaluate_models
from perkrank.training.window import EvaluationWindow

SOURCE = Path(__file__).resolve().parents[2] / "shared/datasets/online-retail/online_retail.csv.gz"
"""The UCI file in the shared datasets folder beside this checkout."""
RESULTS = Path(__file__).parent / "results"
IMPLICIT_DEFAULTS = "implicit_als_defaults"
BASELINES = ("popularity", "regional_popularity", "repeat", OWN_POP, IMPLICIT_DEFAULTS)
LEARNED = ("als", "bpr", "lightfm")
SERVED = ranker_step.RANKER
"""The served model: the second stage over the blend's candidates."""
MODELS = (*BASELINES, *LEARNED, pipeline.BLEND, SERVED)
"""Rows of every table, in this order."""
SLICES = ("overall", "new_items", "repeat_items")
VERDICT_SLICES = ("overall", "new_items")
"""Slices on which the served model has to beat every baseline."""
METRICS = ("ndcg", "precision", "recall", "map", "hit_rate", "coverage")
K = 10


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


# ---------------------------------------------------------------- results files


def metric(result: Mapping[str, Any], model: str, part: str, name: str) -> float | None:
    """One metric at k=10 of one model on one slice (None when the slice is empty)."""
    return result["models"][model]["metrics"].get(part, {}).get(f"{name}@{K}")


def slice_table(result: Mapping[str, Any], part: str) -> list[str]:
    """Models × metrics at k=10 on one slice, as Markdown lines."""
    lines = [
        "| model | " + " | ".join(f"{name}@{K}" for name in METRICS) + " |",
        "|---|" + "---:|" * len(METRICS),
    ]
    for model in MODELS:
        values = [metric(result, model, part, name) for name in METRICS]
        lines.append(f"| {model} | " + " | ".join(_number(value) for value in values) + " |")
    return lines


def ndcg_table(result: Mapping[str, Any]) -> list[str]:
    """Models × slices, NDCG@10, as Markdown lines."""
    lines = [
        "| model | " + " | ".join(f"ndcg@{K} {part}" for part in SLICES) + " |",
        "|---|" + "---:|" * len(SLICES),
    ]
    for model in MODELS:
        values = [metric(result, model, part, "ndcg") for part in SLICES]
        lines.append(f"| {model} | " + " | ".join(_number(value) for value in values) + " |")
    return lines


def verdicts(result: Mapping[str, Any]) -> list[str]:
    """Whether the served model's NDCG@10 beats each baseline on each verdict slice."""
    lines = []
    served = result["verdict"]["served"]
    for part in VERDICT_SLICES:
        blend_value = metric(result, served, part, "ndcg")
        for baseline in BASELINES:
            value = metric(result, baseline, part, "ndcg")
            if blend_value is None or value is None:
                lines.append(f"- {part}: no members in the slice, nothing to compare")
                continue
            outcome = "beats" if blend_value > value else "does NOT beat"
            lines.append(
                f"- {part}: {served} {blend_value:.4f} {outcome} {baseline} {value:.4f} "
                f"({blend_value - value:+.4f}, {100 * (blend_value / value - 1):+.1f}%)"
            )
    return lines


def strongest_baseline_lines(result: Mapping[str, Any]) -> list[str]:
    """The served model against the best non-learned baseline, paired bootstrap CI."""
    verdict = result["verdict"]
    return [
        f"Strongest baseline: **{verdict['baseline']}** (the best non-learned model by "
        f"NDCG@{K}). Differences are per-member means over the same {members(verdict)} members, "
        "with a paired bootstrap 95% CI (2,000 resamples of members, seeded; "
        "`training/compare.py`):",
        "",
        *(f"- {sentence}" for sentence in verdict["sentences"]),
    ]


def members(verdict: Mapping[str, Any]) -> str:
    """How many members the verdict paired."""
    return f"{next(iter(verdict['differences'].values()))['members']:,}"


def markdown(result: Mapping[str, Any], command: str) -> str:
    """The whole results page."""
    test_window, validation_window = result["test"]["window"], result["validation"]["window"]
    members = result["test"]["models"][SERVED]["members"]
    config = result["config"]
    rows, data = result["rows"], result["data"]
    lines = [
        "# perkrank on UCI Online Retail (real purchases, item level)",
        "",
        f"Command: `{command}`  ",
        f"Run time: {result['timings_seconds']['total']:.0f} s on {result['machine']['cpus']} "
        f"cores (Python {result['machine']['python']}); stages: "
        + ", ".join(
            f"{name} {seconds:.0f} s"
            for name, seconds in result["timings_seconds"].items()
            if name != "total"
        )
        + ".",
        "",
        "## Data",
        "",
        f"`{result['source']}`: {result['raw_lines']:,} raw lines → {rows['purchases']:,} "
        f"purchases (cancellations, blank customer ids, non-product codes, quantity or price ≤ 0 "
        f"dropped; see `features/online_retail.py`), {rows['members']:,} members in "
        f"{data['regions']} regions (countries), {rows['offers']:,} items (stock codes, one "
        f"offer each) in {data['categories']} product families. Purchases from "
        f"{data['first_purchase']} to {data['last_purchase']}.",
        "",
        "## Split (the same for every model)",
        "",
        f"- train: purchases before {result['split']['test'][0]} "
        f"({data['purchases_before_test']:,} purchases); the test models are fitted on these.",
        f"- validation: [{result['split']['validation'][0]}, {result['split']['validation'][1]}), "
        f"models fitted on the purchases before it; {validation_window['members']:,} members. "
        "Blend weights and every setting in the config were chosen here only.",
        f"- test: [{result['split']['test'][0]}, {result['split']['test'][1]}) "
        f"({data['purchases_in_test']:,} purchases), evaluated once; "
        f"{test_window['members']:,} members ({test_window['warm_members']:,} warm: signup is "
        f"the first purchase, so every evaluated member bought before), "
        f"{test_window['offers']:,} candidate items each, "
        f"{test_window['relevant_pairs']:,} relevant member × item pairs.",
        f"- slices: overall {members['overall']:,} members; new_items (candidates the member "
        f"never bought) {members['new_items']:,}; repeat_items (items the member bought "
        f"before) {members['repeat_items']:,}. Definitions: `training/window.py`.",
        "",
        "## Models",
        "",
        "- popularity: global purchase shares; regional_popularity: shares per country "
        "(backed off to global); repeat: log1p of the member's own recency-weighted purchases, "
        "ties by offer id; own_pop (own+pop): the member's own purchase counts without decay, "
        "ties broken and the list filled by global popularity (`models/own_pop.py`).",
        f"- {IMPLICIT_DEFAULTS}: `implicit.cpu.als.AlternatingLeastSquares()` with its default "
        "settings (100 factors, regularization 0.01, alpha 1, 15 iterations) on the raw "
        "purchase-count matrix (no bm25, no recency decay), called directly.",
        f"- als, bpr, lightfm: perkrank's components with `configs/online_retail.yaml` "
        f"(interactions: {config['interactions']['weighting']}, half-life "
        f"{config['interactions']['half_life_days']} days; ALS {config['als']['factors']} "
        f"factors, regularization {config['als']['regularization']}; LightFM "
        f"{config['lightfm']['no_components']} components, {config['lightfm']['loss']}, "
        f"{config['lightfm']['epochs']} epochs, item features partner/category/scope, member "
        "features region/tier/tenure/spend/top categories).",
        f"- blend: weights chosen on the validation window: `{json.dumps(result['weights'])}`.",
        f"- {SERVED} (served): the second stage (`training/ranker_step.py`, "
        "`models/second_stage.py`) over the blend's candidates, fitted on the validation window "
        f"with `ranker: {json.dumps(config['ranker'])}` (snapshots: label windows stacked, "
        "each `snapshot_step_days` earlier; tree_weight > 0: a LightGBM lambdarank added to "
        "the linear logit, served by the numpy evaluator `models/tree_ranker.py`). Chosen on "
        "the validation window: `benchmarks/results/ranker_choice.md`.",
        "",
        f"## Test window, k={K}",
        "",
    ]
    for part in SLICES:
        lines += [
            f"### {part} ({members[part]:,} members)",
            "",
            *slice_table(result["test"], part),
            "",
        ]
    lines += [
        "## Does the served model beat the strongest baseline? (test window)",
        "",
        *strongest_baseline_lines(result["test"]),
        "",
        "## The served model against every baseline (test NDCG@10, no CI)",
        "",
        *verdicts(result["test"]),
        "",
        "## Validation window (what the tuning saw), NDCG@10",
        "",
        "The blend's and the ranker's validation numbers are in-sample (weights and ranker "
        "fitted there). The settings of "
        "`configs/online_retail.yaml` were chosen on this window: "
        "`benchmarks/results/online_retail_tuning.md`.",
        "",
        *ndcg_table(result["validation"]),
        "",
    ]
    return "\n".join(lines)


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def write(result: dict[str, Any], out_dir: Path, command: str) -> Path:
    """Write online_retail.json and online_retail.md into `out_dir`; the Markdown path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    result = {"command": command, **result}
    (out_dir / "online_retail.json").write_text(json.dumps(result, indent=2) + "\n")
    markdown_path = out_dir / "online_retail.md"
    markdown_path.write_text(markdown(result, command))
    return markdown_path


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
