"""Offer redemption on real campaigns: 84.51°'s Complete Journey coupons, ranked per household.

For each household × campaign of the test campaigns (those starting on or after `--cutoff`),
every model ranks that campaign's coupons, using only data dated before the campaign starts,
and the ranking is scored against the coupons the household redeemed
(`training/coupon_evaluation.py`). The coupon ranker is the served model: each campaign's
coupons are scored by `models.coupon_stage.CouponStage.scores`, the function serving calls,
with the stage's arrays as of the campaign's start and a ranker per offer group (Type A; Type
B/C) whose features, penalty and fitting rows are chosen by rolling-origin cross-validation over
the campaigns before the cutoff (`training/coupon_ranker.py`). The simple learned blend is a
logistic regression on the five baseline features of the campaigns before the cutoff.
Walk-forward rows (`_refit`): the same two, with the same choices, refitted before each test
campaign's start on every campaign starting before it (labels dated before it), as a served
bundle retrained at that date would be; nothing is chosen on the test campaigns.
perkrank's first-stage models are fitted on the purchase sample (department × category items,
`features/complete_journey.py`) before each test campaign's start; a coupon's score is the max
(or mean) of its items' scores.
Writes benchmarks/results/complete_journey.md/.json.

    .venv/bin/python -m benchmarks.complete_journey [--cutoff 2017-06-28] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.complete_journey_report import write
from perkrank.config import CONFIG_DIR, TrainConfig, load_config
from perkrank.features.columns import Columns
from perkrank.features.complete_journey import (
    CouponTables,
    coupon_tables,
    import_complete_journey,
    read_raw,
)
from perkrank.features.loader import load_dataset
from perkrank.models.coupon_stage import FEATURES, CouponStage, feature_arrays
from perkrank.models.factors import Factors
from perkrank.models.linear_ranker import LinearRanker
from perkrank.progress import step
from perkrank.training import components, pipeline
from perkrank.training import coupon_evaluation as ce
from perkrank.training import coupon_ranker as cr
from perkrank.training.compare import paired_bootstrap
from perkrank.training.coupon_stats import offer_ids

SOURCE = Path(__file__).resolve().parents[2] / "shared/datasets/completejourney"
RESULTS = Path(__file__).parent / "results"
CUTOFF = date(2017, 6, 28)
"""Campaigns starting on or after this day are the test; 2017-06-28 is campaign 10's start."""
BLEND_L2 = 1.0
"""The learned blend's penalty (fit_linear's default; not tuned)."""
LEARNED_BLEND = "learned_blend"
COUPON_RANKER = "coupon_ranker"
LEARNED_BLEND_REFIT = "learned_blend_refit"
COUPON_RANKER_REFIT = "coupon_ranker_refit"
WALK_FORWARD = {COUPON_RANKER_REFIT: LEARNED_BLEND_REFIT}
"""Walk-forward rows: refitted before each test campaign's start (module docstring), each
compared with its walk-forward reference too."""
PERKRANK = {
    "als_max": ("als", "max"),
    "als_mean": ("als", "mean"),
    "lightfm_max": ("lightfm", "max"),
    "own_pop_max": ("own_pop", "max"),
    "blend_max": (pipeline.BLEND, "max"),
    "blend_mean": (pipeline.BLEND, "mean"),
}
"""Row name → (perkrank model, how its item scores become a coupon's score)."""
MODELS = (
    *ce.BASELINES, LEARNED_BLEND, COUPON_RANKER, LEARNED_BLEND_REFIT, COUPON_RANKER_REFIT,
    *PERKRANK,
)  # fmt: skip
GROUPS = {
    "Type A": ("Type A",),
    "Type B/C": ("Type B", "Type C"),
    "all": ("Type A", "Type B", "Type C"),
}


def perkrank_scores(
    fitted: components.FittedComponents, blend: Factors, task: ce.Campaign, index: ce.CouponIndex
) -> dict[str, np.ndarray]:
    """Coupon scores (members × coupons) of each `PERKRANK` row."""
    coupon_items = index.coupon_items[task.coupon_rows]
    items = index.items.external_ids.tolist()
    members = task.members.tolist()
    models = {**fitted.models, pipeline.BLEND: blend}
    item_scores = {
        name: ce.item_scores(
            models[name], members, fitted.member_features, items, fitted.item_features
        )
        for name in {model for model, _ in PERKRANK.values()}
    }
    return {
        row: ce.coupon_scores(item_scores[model], coupon_items, how)
        for row, (model, how) in PERKRANK.items()
    }


def run(source: Path, cutoff: date, config: TrainConfig, work_dir: Path) -> dict[str, Any]:
    """Import, choose and fit, rank every test campaign; every number the results files show."""
    started = time.perf_counter()
    with step(f"import {source}"):
        rows = import_complete_journey(source, work_dir / "data")
        dataset = load_dataset(work_dir / "data")
        tables = coupon_tables(read_raw(source))
        index = ce.coupon_index(tables)
    moment = pd.Timestamp(cutoff)
    with step("choose and fit each group's coupon ranker by rolling-origin cross-validation"):
        clock, cpu = time.perf_counter(), time.process_time()
        fitted_stage = cr.fit_rankers(tables, index, moment)
        choice_seconds = {
            "wall": round(time.perf_counter() - clock, 1),
            "cpu": round(time.process_time() - cpu, 1),
        }
        blocks, folds = fitted_stage.blocks, fitted_stage.folds
        choices, rankers = fitted_stage.choices, fitted_stage.rankers
    with step("fit the learned blend on the campaigns before the cutoff"):
        blend = cr.fit(
            cr.training_rows(blocks, list(blocks), moment, redeeming_only=False),
            ce.BASELINES,
            BLEND_L2,
        )
    units, fits, refits, largest = [], {}, {}, None
    test = tables.campaigns[tables.campaigns.start_date >= moment].sort_values("start_date")
    with step("features of the test campaigns for the walk-forward refits"):
        every = {**blocks, **cr.campaign_blocks(tables, index, test["campaign_id"])}
    for campaign_id in test["campaign_id"]:
        task = ce.campaign_task(tables, index, campaign_id, labels_before=None)
        start = task.start.date()
        if start not in fits:
            with step(f"fit perkrank's models before {start}"):
                fitted = components.fit_components(dataset, start, config)
                fits[start] = (fitted, components.blend_components(fitted, config.blend.weights, 0))
        stage = cr.campaign_stage(tables, index, task.start, rankers)
        if start not in refits:
            refits[start] = walk_forward(every, choices, task.start)
        refit_blend, refit_rankers = refits[start]
        ids = offer_ids(index, task.coupon_rows)
        if largest is None or len(task.coupon_upcs) > len(largest[0].coupon_upcs):
            largest = (task, stage)
        features = feature_arrays(stage.stats, stage.members.rows(task.members), task.coupon_rows)
        named = {name: features[:, :, FEATURES.index(name)] for name in ce.BASELINES}
        baselines = np.stack([named[name].ravel() for name in ce.BASELINES], axis=1)
        scores = {
            **named,
            LEARNED_BLEND: blend.predict(baselines).reshape(task.labels.shape),
            COUPON_RANKER: stage.scores(task.members, ids),
            LEARNED_BLEND_REFIT: refit_blend.predict(baselines).reshape(task.labels.shape),
            COUPON_RANKER_REFIT: CouponStage(refit_rankers, stage.stats).scores(task.members, ids),
            **perkrank_scores(*fits[start], task, index),
        }
        redeemers = task.members[task.labels.any(axis=1)]
        frame = pd.DataFrame({"campaign_id": campaign_id, "type": task.campaign_type,
                              "member_id": redeemers})  # fmt: skip
        for model in MODELS:
            for metric, values in ce.ranking_metrics(scores[model], task.labels).items():
                frame[f"{model} {metric}"] = values
        frame["exposed"] = len(task.members)
        frame["coupons"] = len(task.coupon_upcs)
        units.append(frame)
    results = pd.concat(units, ignore_index=True)
    with step("time the served coupon stage per request (the largest test campaign)"):
        task, stage = largest
        serving_cost = request_cost(stage, task.members, offer_ids(index, task.coupon_rows))
    return {
        "source": str(source),
        "rows": rows,
        "cutoff": cutoff.isoformat(),
        "config": config.model_dump(mode="json", exclude={"registry"}),
        "learned_blend": _weights(blend),
        "coupon_ranker": {group: _weights(ranker) for group, ranker in rankers.items()},
        "validation": validation_summary(blocks, folds, choices),
        "serving_cost": {"campaign": task.campaign_id, **serving_cost},
        "campaigns": campaign_summary(tables, test, results),
        "groups": {name: summarize(results, types) for name, types in GROUPS.items()},
        "median_lines_per_household": float(
            dataset.purchases.groupby(Columns.member_id).size().median()
        ),
        "seconds": round(time.perf_counter() - started, 1),
        "choice_seconds": choice_seconds,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }


def walk_forward(
    blocks: dict[str, cr.CampaignBlock], choices: dict[str, cr.Choice], start: pd.Timestamp
) -> tuple[LinearRanker, dict[str, LinearRanker]]:
    """The learned blend and each group's ranker (its chosen features, penalty and rows)
    refitted on the campaigns of `blocks` starting before `start`, labels dated before it."""
    earlier = [campaign for campaign, block in blocks.items() if block.task.start < start]
    every = cr.training_rows(blocks, earlier, start, redeeming_only=False)
    redeeming = cr.training_rows(blocks, earlier, start)
    rankers = {group: cr.fit_group(redeeming, choice) for group, choice in choices.items()}
    return cr.fit(every, ce.BASELINES, BLEND_L2), rankers


def request_cost(stage: CouponStage, members: np.ndarray, ids: np.ndarray) -> dict[str, float]:
    """Median seconds of `CouponStage.member_scores` per member (one request's coupons), and
    of a floor timed beside each call (one `np.where` over the same number of values)."""
    other, offers = np.zeros(len(ids)), ids.tolist()
    calls, floors = [], []
    for member in members.tolist():
        begin = time.perf_counter()
        stage.member_scores(member, offers, other)
        middle = time.perf_counter()
        np.where(other > 0, other, 1.0)
        calls.append(middle - begin)
        floors.append(time.perf_counter() - middle)
    call, floor = float(np.median(calls)), float(np.median(floors))
    return {
        "offers": len(offers),
        "requests": len(calls),
        "p50_ms": round(call * 1e3, 4),
        "floor_p50_us": round(floor * 1e6, 2),
        "floors": round(call / floor, 1),
    }


def _weights(ranker: LinearRanker) -> dict[str, float]:
    return dict(zip(ranker.feature_names, ranker.weights.round(4).tolist(), strict=False))


def validation_summary(
    blocks: dict[str, cr.CampaignBlock], folds: list[cr.Fold], choices: dict[str, cr.Choice]
) -> dict[str, Any]:
    """The folds, each group's choice with every setting's score, and the learned blend's and
    the chosen ranker's pooled NDCG@10 on the group's validation pairs."""
    groups = {}
    for group, choice in choices.items():
        mine = [fold for fold in folds if fold.group == group]
        blend = np.concatenate([_blend_ndcg(blocks, fold) for fold in mine])
        ranker = cr.fold_ndcg(folds, choice)
        pairs = np.concatenate([np.unique(fold.validation.query_ids) for fold in mine])
        households = pd.Series([pair.split("/", 1)[1] for pair in pairs])
        groups[group] = {
            "folds": [fold.campaign_id for fold in mine],
            "pairs": len(ranker),
            "per_setting": [
                {"fit_on": fit_on, "l2": l2, "features": list(names), "score": round(score, 4)}
                for (fit_on, l2), (names, score) in (choice.per_setting or {}).items()
            ],
            "chosen": {"fit_on": choice.fit_on, "l2": choice.l2, "features": list(choice.features)},
            "ndcg": {
                LEARNED_BLEND: round(float(blend.mean()), 4),
                COUPON_RANKER: round(float(ranker.mean()), 4),
            },
            "vs_learned_blend": paired_bootstrap(
                pd.Series(ranker).groupby(households).mean().to_numpy(),
                pd.Series(blend).groupby(households).mean().to_numpy(),
                metric="ndcg@10",
            ).to_dict(),
        }
    return {
        "folds": [
            {
                "campaign": fold.campaign_id,
                "group": fold.group,
                "fit": list(fold.fit_campaigns),
                "pairs": len(np.unique(fold.validation.query_ids)),
            }
            for fold in folds
        ],
        "groups": groups,
    }


def _blend_ndcg(blocks: dict[str, cr.CampaignBlock], fold: cr.Fold) -> np.ndarray:
    """The learned blend's NDCG@10 per validation pair of a fold: fitted as on the test, on
    every exposed pair of the fold's fit campaigns (labels dated before the fold's start)."""
    start = blocks[fold.campaign_id].task.start
    rows = cr.training_rows(blocks, fold.fit_campaigns, start, redeeming_only=False)
    blend = cr.fit(rows, ce.BASELINES, BLEND_L2)
    return cr.query_ndcg(cr.predict(blend, fold.validation), fold.validation)


def campaign_summary(
    tables: CouponTables, test: pd.DataFrame, results: pd.DataFrame
) -> list[dict[str, Any]]:
    """Per test campaign: type, start, coupons, exposed households and households redeeming."""
    redeeming = results.groupby("campaign_id").size()
    first = results.drop_duplicates("campaign_id").set_index("campaign_id")
    return [
        {
            "campaign_id": row.campaign_id,
            "type": row.campaign_type,
            "start": f"{row.start_date:%Y-%m-%d}",
            "coupons": int(first.loc[row.campaign_id, "coupons"])
            if row.campaign_id in first.index
            else None,
            "exposed": int((tables.exposures.campaign_id == row.campaign_id).sum()),
            "redeeming": int(redeeming.get(row.campaign_id, 0)),
        }
        for row in test.itertuples()
    ]


def summarize(results: pd.DataFrame, types: Sequence[str]) -> dict[str, Any]:
    """Mean metrics per model over a group's units, and each model's paired household-bootstrap
    NDCG@10 difference from the learned blend (walk-forward rows: also from their reference)."""
    part = results[results["type"].isin(types)]
    per_household = part.groupby("member_id")[[f"{m} ndcg@10" for m in MODELS]].mean()
    reference = per_household[f"{LEARNED_BLEND} ndcg@10"].to_numpy()
    models = {}
    for model in MODELS:
        entry = {metric: float(np.nanmean(part[f"{model} {metric}"])) for metric in ce.METRICS}
        values = per_household[f"{model} ndcg@10"].to_numpy()
        if model != LEARNED_BLEND:
            entry["vs_learned_blend"] = paired_bootstrap(
                values, reference, metric="ndcg@10"
            ).to_dict()
        if model in WALK_FORWARD:
            own = per_household[f"{WALK_FORWARD[model]} ndcg@10"].to_numpy()
            entry["vs_walk_forward_reference"] = {
                "reference": WALK_FORWARD[model],
                **paired_bootstrap(values, own, metric="ndcg@10").to_dict(),
            }
        models[model] = entry
    return {"units": len(part), "households": len(per_household), "models": models}


def parse_arguments(arguments: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cutoff", type=date.fromisoformat, default=CUTOFF)
    parser.add_argument("--config", type=Path, default=CONFIG_DIR / "train.yaml")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--source", type=Path, default=SOURCE)
    parser.add_argument("--work-dir", type=Path, default=Path("var/complete_journey"))
    return parser.parse_args(arguments)


def main() -> None:
    arguments = parse_arguments(sys.argv[1:])
    config = load_config(TrainConfig, arguments.config)
    result = run(arguments.source, arguments.cutoff, config, arguments.work_dir)
    command = " ".join([".venv/bin/python -m benchmarks.complete_journey", *sys.argv[1:]])
    print(write(result, arguments.out, command).read_text())


if __name__ == "__main__":
    main()
