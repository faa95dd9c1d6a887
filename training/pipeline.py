"""`perkrank train`: validate → features → fit → choose blend weights → evaluate → register.

Time split (see README "Evaluation"): the test window is [test_start, test_start + test_days);
the validation window is the `validation_days` before test_start. Blend weights are chosen on
the validation window with models fitted on data before it; the reported metrics come from
models fitted on data before test_start; the served bundle is refitted on all the data.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from perkrank.config import TrainConfig
from perkrank.features.columns import Columns
from perkrank.features.dataset import Dataset
from perkrank.features.event_interactions import EVENT_ROWS, read_events, with_events
from perkrank.features.exclusions import read_exclusions, without_members
from perkrank.features.interactions import cutoff_features
from perkrank.features.loader import load_dataset
from perkrank.features.offer_features import item_feature_table, offer_regions
from perkrank.features.training_data import TrainingData
from perkrank.models.als import fit_als
from perkrank.models.blend import blend
from perkrank.models.bpr import fit_bpr
from perkrank.models.bundle import Bundle
from perkrank.models.factors import Factors
from perkrank.models.hybrid import fit_lightfm
from perkrank.models.own_pop import NAME as OWN_POP
from perkrank.models.own_pop import fit_own_pop
from perkrank.models.popularity import fit_global_popularity, fit_popularity
from perkrank.models.repeat import fit_repeat
from perkrank.progress import report, step
from perkrank.training.compare import served_verdict
from perkrank.training.evaluation import EvaluationReport, evaluate_models
from perkrank.training.lineage import data_lineage, lineage_params, lineage_tags
from perkrank.training.report import format_table, main_k, write_report
from perkrank.training.weights import choose_weights
from perkrank.training.window import EvaluationWindow, prepare_window

BLEND = "blend"
OVERALL = "overall"
EVALUATED_RANKER = "evaluated_ranker"
"""The blend fitted before the test window (what the report scored), logged with each run so
that `perkrank promote` can score it again on another version's window without leakage."""
LINEAGE_FILE = "lineage.json"


@dataclass(frozen=True)
class SplitDates:
    """The three boundaries of the time split."""

    validation_start: date
    test_start: date
    test_end: date


@dataclass
class FittedComponents:
    """Every component model fitted on data before one cutoff, with the features it saw and
    the items each member had bought (what an evaluation window starting there needs)."""

    cutoff: date
    models: dict[str, Factors]
    member_features: dict[str, list[str]]
    item_features: dict[str, list[str]]
    items_bought_before: dict[str, frozenset[str]]


@dataclass(frozen=True)
class TrainResult:
    """What `train` produced: the bundle, the report files and the evaluation."""

    bundle_dir: Path
    report_files: list[Path]
    evaluation: EvaluationReport
    weights: dict[str, float]
    registered_version: str | None


def split_dates(dataset: Dataset, config: TrainConfig) -> SplitDates:
    """The validation and test windows (see the module docstring).

    Without `split.test_start`, the test window starts on the first day of the month in which
    the last `test_days` of purchases begin (catalogs rotate monthly, so the window holds a
    whole catalog's new offers) and runs to the last purchase.
    """
    last_day = dataset.purchases[Columns.ts].max().date()
    if config.split.test_start is not None:
        test_start = config.split.test_start
        test_end = test_start + timedelta(days=config.split.test_days)
    else:
        test_start = (last_day - timedelta(days=config.split.test_days - 1)).replace(day=1)
        test_end = last_day + timedelta(days=1)
    return SplitDates(
        validation_start=test_start - timedelta(days=config.split.validation_days),
        test_start=test_start,
        test_end=test_end,
    )


def fit_components(dataset: Dataset, cutoff: date, config: TrainConfig) -> FittedComponents:
    """Fit every component on purchases strictly before `cutoff` (the cutoff's history and
    features are built once, `cutoff_features`)."""
    moment = datetime.combine(cutoff, datetime.min.time())
    with step(f"features before {cutoff}"):
        features = cutoff_features(dataset, moment, config.interactions)
        data = features.data
        report(
            f"{len(data.member_ids)} members × {len(data.item_ids)} items, "
            f"{data.user_items.nnz} non-zeros"
        )
    models: dict[str, Factors] = {}
    for name, fit in component_fitters(config).items():
        with step(f"fit {name}"):
            models[name] = fit(data)
    return FittedComponents(
        cutoff=cutoff,
        models=models,
        member_features=features.member_features,
        item_features=item_feature_table(dataset),
        items_bought_before=features.items_bought_before,
    )


def component_fitters(config: TrainConfig) -> dict[str, Callable[[TrainingData], Factors]]:
    seed, threads = config.seed, config.threads
    sgd_threads = 1 if config.deterministic else threads
    return {
        "popularity": fit_global_popularity,
        "regional_popularity": fit_popularity,
        "repeat": fit_repeat,
        OWN_POP: fit_own_pop,
        "als": lambda data: fit_als(data, config.als, seed=seed, threads=threads),
        "bpr": lambda data: fit_bpr(data, config.bpr, seed=seed, threads=sgd_threads),
        "lightfm": lambda data: fit_lightfm(data, config.lightfm, seed=seed, threads=sgd_threads),
    }


def blend_components(fitted: FittedComponents, weights: Mapping[str, float], seed: int) -> Factors:
    """The ranker: the weighted blend of the fitted components."""
    return blend(
        {name: fitted.models[name] for name in weights},
        weights,
        member_features=fitted.member_features,
        item_features=fitted.item_features,
        seed=seed,
    )


def evaluation_window(
    dataset: Dataset,
    end: date,
    fitted: FittedComponents,
    config: TrainConfig,
    *,
    max_members: int | None = None,
) -> EvaluationWindow:
    """The window [fitted.cutoff, end) with candidates and relevance, shared by every model."""
    return prepare_window(
        dataset,
        fitted.cutoff,
        end,
        member_features=fitted.member_features,
        items_bought_before=fitted.items_bought_before,
        offer_regions=offer_regions(dataset),
        item_features=fitted.item_features,
        max_members=max_members or config.evaluation.max_members,
        seed=config.seed,
    )


def train(
    data_dir: Path,
    config: TrainConfig,
    *,
    output_dir: Path,
    register: bool = True,
    config_snapshot: Mapping[str, Any] | None = None,
    exclusions: Path | None = None,
    events: Path | None = None,
    event_rows: Mapping[str, int] = EVENT_ROWS,
) -> TrainResult:
    """Run the whole pipeline; write the bundle and report under `output_dir`. Redemptions of
    `events` (an events export) join the purchases, `event_rows` rows per event type
    (`features.event_interactions`); the members
    of `exclusions` (forgotten, personalization off) are left out before anything is built."""
    with step(f"validate {data_dir}"):
        dataset = load_dataset(data_dir)
    if events is not None:
        with step(f"add the interactions of {events}"):
            dataset, added = with_events(dataset, read_events(events), event_rows)
            report(f"{added} purchase rows from events")
    if exclusions is not None:
        with step(f"leave out the members of {exclusions}"):
            dataset, left_out = without_members(dataset, read_exclusions(exclusions))
            report(f"{left_out} members and their purchases left out")
    dates = split_dates(dataset, config)
    lineage = data_lineage(data_dir, dataset, _split_record(dates), config)
    output_dir.mkdir(parents=True, exist_ok=True)
    lineage_path = output_dir / LINEAGE_FILE
    lineage_path.write_text(json.dumps(lineage, indent=2, sort_keys=True) + "\n")
    report(
        f"validation [{dates.validation_start}, {dates.test_start}), "
        f"test [{dates.test_start}, {dates.test_end})"
    )

    weights = dict(config.blend.weights)
    if config.blend.fit_weights:
        validation_fit = fit_components(dataset, dates.validation_start, config)
        window = evaluation_window(
            dataset,
            dates.test_start,
            validation_fit,
            config,
            max_members=config.blend.search_members,
        )
        with step("choose blend weights on the validation window"):
            weights = search_blend_weights(window, validation_fit, config)
            report(f"weights {weights}")

    test_fit = fit_components(dataset, dates.test_start, config)
    with step("evaluate on the test window"):
        window = evaluation_window(dataset, dates.test_end, test_fit, config)
        models = dict(test_fit.models)
        models[BLEND] = blend_components(test_fit, weights, config.seed)
        evaluated_dir = models[BLEND].save(output_dir / EVALUATED_RANKER)
        evaluation = evaluate_models(window, models, config.evaluation.k_values)
        evaluation.verdict = served_verdict(evaluation, BLEND, main_k(evaluation), seed=config.seed)
        report_files = write_report(evaluation, output_dir / "report")
    print(format_table(evaluation))

    served_until = dataset.purchases[Columns.ts].max().date() + timedelta(days=1)
    served_fit = fit_components(dataset, served_until, config)
    with step("write the serving bundle"):
        bundle = Bundle(
            ranker=blend_components(served_fit, weights, config.seed),
            fallback=served_fit.models["regional_popularity"],
            meta=_bundle_meta(dates, weights, evaluation, served_until),
        )
        bundle_dir = bundle.save(output_dir / "bundle")

    version = None
    if register:
        version = _register(
            bundle_dir,
            report_files,
            evaluation,
            weights,
            config,
            config_snapshot,
            lineage,
            {EVALUATED_RANKER: evaluated_dir, LINEAGE_FILE: lineage_path},
        )
    return TrainResult(bundle_dir, report_files, evaluation, weights, version)


def search_blend_weights(
    window: EvaluationWindow, fitted: FittedComponents, config: TrainConfig
) -> dict[str, float]:
    """config.blend.weights searched to maximize the blend's promote metric on `window`."""
    return choose_weights(
        lambda candidate: _blend_metric(window, fitted, candidate, config), config.blend.weights
    )


def _blend_metric(
    window: EvaluationWindow,
    fitted: FittedComponents,
    weights: Mapping[str, float],
    config: TrainConfig,
) -> float:
    ranker = blend_components(fitted, weights, config.seed)
    result = evaluate_models(window, {BLEND: ranker}, config.evaluation.k_values)
    return result.models[BLEND].metrics[OVERALL][config.registry.promote_metric]


def _split_record(dates: SplitDates) -> dict[str, str]:
    return {
        "validation_start": dates.validation_start.isoformat(),
        "test_start": dates.test_start.isoformat(),
        "test_end": dates.test_end.isoformat(),
    }


def _bundle_meta(
    dates: SplitDates,
    weights: Mapping[str, float],
    evaluation: EvaluationReport,
    served_until: date,
) -> dict[str, Any]:
    return {
        "name": BLEND,
        "weights": dict(weights),
        "trained_until": served_until.isoformat(),
        "test_window": [dates.test_start.isoformat(), dates.test_end.isoformat()],
        "metrics": evaluation.models[BLEND].metrics[OVERALL],
    }


def _register(
    bundle_dir: Path,
    report_files: list[Path],
    evaluation: EvaluationReport,
    weights: Mapping[str, float],
    config: TrainConfig,
    config_snapshot: Mapping[str, Any] | None,
    lineage: Mapping[str, Any],
    extra_artifacts: Mapping[str, Path],
) -> str:
    from perkrank.models.registry import log_bundle

    metrics = {
        f"{model}.{name}" if model != BLEND else name: value
        for model, model_report in evaluation.models.items()
        for name, value in model_report.metrics[OVERALL].items()
    }
    with step("log to MLflow and register"):
        info = log_bundle(
            bundle_dir,
            registry=config.registry,
            params=dict(config_snapshot or config.model_dump(mode="json"))
            | lineage_params(lineage),
            metrics=metrics,
            artifacts=report_files,
            tags={"blend_weights": json.dumps(dict(weights), sort_keys=True)}
            | lineage_tags(lineage),
            extra_artifacts=extra_artifacts,
        )
        report(f"registered {info.model_name} version {info.version} as challenger")
    return str(info.version)
