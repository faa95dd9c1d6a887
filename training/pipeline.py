"""`perkrank train`: validate → features → fit → choose blend weights → evaluate → register.

Time split (see README "Evaluation"): the test window is [test_start, test_start + test_days);
the validation window is the `validation_days` before test_start. Blend weights are chosen on
the validation window with models fitted on data before it, and so is the second-stage ranker
(`training.ranker_step`); the reported metrics come from models fitted on data before
test_start; the served bundle is refitted on all the data and serves the second stage when
one was fitted (else the blend). With `coupons.source`, the bundle also holds the campaign
coupon stage (`training.coupon_step`), fitted on the campaigns before the served cutoff.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from perkrank.config import TrainConfig
from perkrank.features.columns import Columns
from perkrank.features.dataset import Dataset
from perkrank.features.event_interactions import (
    EVENT_ROWS,
    offer_response_counts,
    read_events,
    with_events,
)
from perkrank.features.exclusions import TrainingMembers, read_exclusions, training_members
from perkrank.features.loader import load_dataset
from perkrank.features.offer_features import offer_regions
from perkrank.models.bundle import Bundle
from perkrank.models.offer_rates import OfferRates
from perkrank.progress import report, step
from perkrank.training import ranker_step
from perkrank.training.blend_search import search_blend_weights
from perkrank.training.compare import served_verdict
from perkrank.training.components import (
    FittedComponents,
    blend_components,
    start_components,
)
from perkrank.training.coupon_step import coupon_metrics, served_coupon_stage
from perkrank.training.evaluation import EvaluationReport, evaluate_models
from perkrank.training.fitting import FitPool, fitting_pool
from perkrank.training.lineage import data_lineage, lineage_params, lineage_tags
from perkrank.training.report import format_table, main_k, write_report
from perkrank.training.split import FALLBACK, SplitDates, fit_plan, split_dates, split_record
from perkrank.training.value_evaluation import (
    add_value_metrics,
    fit_window_calibration,
)
from perkrank.training.window import EvaluationWindow, prepare_window

BLEND = "blend"
OVERALL = "overall"
EVALUATED_MODEL = "evaluated_model"
"""Run artifact: the served model fitted before the test window (a bundle: the blend, the
fallback and the second stage with statistics before the window, as the report scored it),
so that `perkrank promote` can score it again on another version's window without leakage."""
EVALUATED_RANKER = "evaluated_ranker"
"""The artifact runs logged before `EVALUATED_MODEL`: the blend alone."""
LINEAGE_FILE = "lineage.json"


@dataclass(frozen=True)
class TrainResult:
    """What `train` produced: the bundle, the report files and the evaluation."""

    bundle_dir: Path
    report_files: list[Path]
    evaluation: EvaluationReport
    weights: dict[str, float]
    registered_version: str | None


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
    (`features.event_interactions`); the members of `exclusions` (forgotten, personalization
    off) are left out before anything is built. The three cutoffs' components are fitted side
    by side on one pool (`training.fitting`)."""
    with fitting_pool(config.threads) as pool:
        return _train(
            data_dir,
            config,
            pool,
            output_dir,
            register,
            config_snapshot,
            exclusions,
            events,
            event_rows,
        )


def _offer_rates(events: Path, config: TrainConfig) -> OfferRates | None:
    """The offer-level response prior of `events` (None with weight 0, or nothing redeemed)."""
    if config.offer_rate_weight == 0:
        return None
    counts = offer_response_counts(events)
    return OfferRates.fit(
        counts.index.to_numpy(),
        counts["impression"].to_numpy(),
        counts["redemption"].to_numpy(),
        config.offer_rate_weight,
    )


def _train(
    data_dir: Path,
    config: TrainConfig,
    pool: FitPool,
    output_dir: Path,
    register: bool,
    config_snapshot: Mapping[str, Any] | None,
    exclusions: Path | None,
    events: Path | None,
    event_rows: Mapping[str, int],
) -> TrainResult:
    with step(f"validate {data_dir}"):
        dataset = load_dataset(data_dir)
    if events is not None:
        with step(f"add the interactions of {events}"):
            dataset, added = with_events(dataset, read_events(events), event_rows)
            report(f"{added} purchase rows from events")
    members = TrainingMembers(dataset)
    if exclusions is not None:
        with step(f"leave out the members of {exclusions} ({config.privacy.opted_out})"):
            members = training_members(
                members.personal, read_exclusions(exclusions), config.privacy.opted_out
            )
            report(members.summary())
    dataset, aggregates = members.personal, members.aggregates
    dates = split_dates(dataset, config)
    lineage = data_lineage(data_dir, dataset, split_record(dates), config)
    output_dir.mkdir(parents=True, exist_ok=True)
    lineage_path = output_dir / LINEAGE_FILE
    lineage_path.write_text(json.dumps(lineage, indent=2, sort_keys=True) + "\n")
    report(
        f"validation [{dates.validation_start}, {dates.test_start}), "
        f"test [{dates.test_start}, {dates.test_end})"
    )
    served_until = dataset.purchases[Columns.ts].max().date() + timedelta(days=1)
    coupon_stage, coupon_summary = None, None
    if config.coupons.source is not None:  # first: a bad source fails before the long fits
        coupon_stage, coupon_summary = served_coupon_stage(config.coupons.source, served_until)
    plan = fit_plan(dates, served_until, config)
    # The validation cutoff and the second stage's earlier snapshots are waited on first.
    first = len(ranker_step.snapshot_cutoffs(dates.validation_start, config.ranker)) + 1
    fits = start_components(dataset, plan, config, pool, aggregates, first=first)

    weights = dict(config.blend.weights)
    validation_fit = fits[dates.validation_start]()
    validation_window = evaluation_window(
        dataset, dates.test_start, validation_fit, config, max_members=config.blend.search_members
    )
    if config.blend.fit_weights:
        with step("choose blend weights on the validation window"):
            weights = search_blend_weights(validation_window, validation_fit.models, config)
            report(f"weights {weights}")
    length = dates.test_start - dates.validation_start
    earlier = [
        (
            evaluation_window(
                dataset,
                cutoff + length,
                fits[cutoff](),
                config,
                max_members=config.blend.search_members,
            ),
            blend_components(fits[cutoff](), weights, config.seed),
        )
        for cutoff in ranker_step.snapshot_cutoffs(dates.validation_start, config.ranker)
    ]
    validation_blend = blend_components(validation_fit, weights, config.seed)
    linear = ranker_step.fit_on_window(
        dataset,
        validation_window,
        validation_blend,
        seed=config.seed,
        config=config.ranker,
        earlier=earlier,
    )
    with step("calibrate the blend's scores on the validation window"):
        calibration = fit_window_calibration(validation_window, validation_blend, config.seed)
        report(f"p = sigmoid({calibration.slope:.4g} · score + {calibration.intercept:.4g})")
    del validation_fit, validation_window, validation_blend, earlier
    _keep_fits(fits, dates.test_start, served_until)

    test_fit = fits[dates.test_start]()
    with step("evaluate on the test window"):
        window = evaluation_window(dataset, dates.test_end, test_fit, config)
        models = dict(test_fit.models)
        models[BLEND] = blend_components(test_fit, weights, config.seed)
        evaluation = evaluate_models(window, models, config.evaluation.k_values)
        evaluated_stage = ranker_step.add_evaluation(
            evaluation,
            dataset,
            window,
            models[BLEND],
            models[FALLBACK],
            linear,
            config.evaluation.k_values,
        )
        add_value_metrics(
            evaluation.models[BLEND],
            window,
            models[BLEND],
            calibration,
            dataset.offers,
            main_k(evaluation),
        )
        served = BLEND if evaluated_stage is None else ranker_step.RANKER
        evaluated = Bundle(
            models[BLEND], models[FALLBACK], second_stage=evaluated_stage, calibration=calibration
        )
        evaluated_dir = evaluated.save(output_dir / EVALUATED_MODEL)
        evaluation.verdict = served_verdict(
            evaluation, served, main_k(evaluation), seed=config.seed
        )
        report_files = write_report(evaluation, output_dir / "report")
    print(format_table(evaluation))
    del test_fit, window, models, evaluated, evaluated_stage
    _keep_fits(fits, served_until)

    served_fit = fits[served_until]()
    with step("write the serving bundle"):
        bundle = Bundle(
            ranker=blend_components(served_fit, weights, config.seed),
            fallback=served_fit.models[FALLBACK],
            meta=_bundle_meta(dates, weights, evaluation, served_until, served)
            | ({} if coupon_summary is None else {"coupon_stage": coupon_summary}),
            second_stage=None
            if linear is None
            else ranker_step.served_stage(dataset, served_until, *linear),
            offer_rates=None if events is None else _offer_rates(events, config),
            coupon_stage=coupon_stage,
            calibration=calibration,
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
            {EVALUATED_MODEL: evaluated_dir, LINEAGE_FILE: lineage_path},
            served,
            {} if coupon_summary is None else coupon_metrics(coupon_summary),
        )
    return TrainResult(bundle_dir, report_files, evaluation, weights, version)


def _keep_fits(fits: dict[date, Callable[[], FittedComponents]], *cutoffs: date) -> None:
    """Drop the fits (models and features) of every cutoff but `cutoffs`: what `_train` no
    longer reads is not held while the next, larger steps run."""
    for cutoff in [cutoff for cutoff in fits if cutoff not in cutoffs]:
        del fits[cutoff]


def _bundle_meta(
    dates: SplitDates,
    weights: Mapping[str, float],
    evaluation: EvaluationReport,
    served_until: date,
    served: str,
) -> dict[str, Any]:
    """The bundle's meta; `metrics`: those of the `served` model (the second stage if any)."""
    return {
        "name": BLEND,
        "weights": dict(weights),
        "trained_until": served_until.isoformat(),
        "test_window": [dates.test_start.isoformat(), dates.test_end.isoformat()],
        "metrics": evaluation.models[served].metrics[OVERALL],
        "served": served,
    }


def run_metrics(evaluation: EvaluationReport, served: str) -> dict[str, float]:
    """MLflow metrics: the `served` model's unprefixed, every other model's as `model.name`."""
    return {
        f"{model}.{name}" if model != served else name: value
        for model, model_report in evaluation.models.items()
        for name, value in model_report.metrics[OVERALL].items()
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
    served: str,
    extra_metrics: Mapping[str, float],
) -> str:
    from perkrank.models.registry import log_bundle

    metrics = run_metrics(evaluation, served) | dict(extra_metrics)
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
