"""Offer redemption on real campaigns: 84.51°'s Complete Journey coupons, ranked per household.

For each household × campaign of the test campaigns (those starting on or after `--cutoff`),
every model ranks that campaign's coupons, using only data dated before the campaign starts,
and the ranking is scored against the coupons the household redeemed
(`training/coupon_evaluation.py`). perkrank's models are fitted on the purchase sample
(department × category items, `features/complete_journey.py`) before each test campaign's
start; a coupon's score is the max (or mean) of its items' scores. The learned blend is a
logistic regression on the baseline features of the campaigns starting before the cutoff,
labelled by redemptions dated before it. Writes benchmarks/results/complete_journey.md/.json.

    .venv/bin/python benchmarks/complete_journey.py [--cutoff 2017-06-28] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from perkrank.config import CONFIG_DIR, TrainConfig, load_config
from perkrank.features.columns import Columns
from perkrank.features.complete_journey import (
    CouponTables,
    coupon_tables,
    import_complete_journey,
    read_raw,
)
from perkrank.features.loader import load_dataset
from perkrank.models.factors import Factors
from perkrank.models.ranker import LinearRanker, fit_linear
from perkrank.progress import step
from perkrank.training import components, pipeline
from perkrank.training import coupon_evaluation as ce
from perkrank.training import coupon_ranker as cr
from perkrank.training.compare import paired_bootstrap

SOURCE = Path(__file__).resolve().parents[2] / "shared/datasets/completejourney"
RESULTS = Path(__file__).parent / "results"
CUTOFF = date(2017, 6, 28)
"""Campaigns starting on or after this day are the test; 2017-06-28 is campaign 10's start."""
LEARNED_BLEND = "learned_blend"
COUPON_RANKER = "coupon_ranker"
PERKRANK = {
    "als_max": ("als", "max"),
    "als_mean": ("als", "mean"),
    "lightfm_max": ("lightfm", "max"),
    "own_pop_max": ("own_pop", "max"),
    "blend_max": (pipeline.BLEND, "max"),
    "blend_mean": (pipeline.BLEND, "mean"),
}
"""Row name → (perkrank model, how its item scores become a coupon's score)."""
MODELS = (*ce.BASELINES, LEARNED_BLEND, COUPON_RANKER, *PERKRANK)
GROUPS = {
    "Type A": ("Type A",),
    "Type B/C": ("Type B", "Type C"),
    "all": ("Type A", "Type B", "Type C"),
}


def learned_blend(
    tables: CouponTables, index: ce.CouponIndex, cutoff: pd.Timestamp
) -> LinearRanker:
    """Logistic regression on the baseline features of the campaigns starting before `cutoff`."""
    rows, labels = [], []
    for campaign_id in tables.campaigns.loc[tables.campaigns.start_date < cutoff, "campaign_id"]:
        task = ce.campaign_task(tables, index, campaign_id, labels_before=cutoff)
        features = ce.baseline_features(tables, index, task)
        rows.append(np.stack([features[name].ravel() for name in ce.BASELINES], axis=1))
        labels.append(task.labels.ravel())
    return fit_linear(np.vstack(rows), np.concatenate(labels), ce.BASELINES)


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
    """Import, fit, rank every test campaign; every number the results files show."""
    started = time.perf_counter()
    with step(f"import {source}"):
        rows = import_complete_journey(source, work_dir / "data")
        dataset = load_dataset(work_dir / "data")
        tables = coupon_tables(read_raw(source))
        index = ce.coupon_index(tables)
    moment = pd.Timestamp(cutoff)
    with step("fit the learned blend on the campaigns before the cutoff"):
        ranker = learned_blend(tables, index, moment)
    with step("fit the coupon ranker on the campaigns before the cutoff"):
        earlier = tables.campaigns.loc[tables.campaigns.start_date < moment, "campaign_id"]
        coupon_ranker = cr.fit(cr.training_rows(tables, index, earlier, moment))
    units, fits = [], {}
    test = tables.campaigns[tables.campaigns.start_date >= moment].sort_values("start_date")
    for campaign_id in test["campaign_id"]:
        task = ce.campaign_task(tables, index, campaign_id, labels_before=None)
        start = task.start.date()
        if start not in fits:
            with step(f"fit perkrank's models before {start}"):
                fitted = components.fit_components(dataset, start, config)
                fits[start] = (fitted, components.blend_components(fitted, config.blend.weights, 0))
        features = cr.coupon_features(tables, index, task)
        stacked = np.stack([features[name].ravel() for name in ce.BASELINES], axis=1)
        scores = {
            **features,
            LEARNED_BLEND: ranker.predict(stacked).reshape(task.labels.shape),
            COUPON_RANKER: cr.predict(coupon_ranker, features),
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
    return {
        "source": str(source),
        "rows": rows,
        "cutoff": cutoff.isoformat(),
        "config": config.model_dump(mode="json", exclude={"registry"}),
        "learned_blend": dict(zip(ce.BASELINES, ranker.weights.round(4).tolist(), strict=True)),
        "coupon_ranker": dict(
            zip(coupon_ranker.feature_names, coupon_ranker.weights.round(4).tolist(), strict=True)
        ),
        "campaigns": campaign_summary(tables, test, results),
        "groups": {name: summarize(results, types) for name, types in GROUPS.items()},
        "median_lines_per_household": float(
            dataset.purchases.groupby(Columns.member_id).size().median()
        ),
        "seconds": round(time.perf_counter() - started, 1),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }


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
    NDCG@10 difference from the learned blend."""
    part = results[results["type"].isin(types)]
    per_household = part.groupby("member_id")[[f"{m} ndcg@10" for m in MODELS]].mean()
    reference = per_household[f"{LEARNED_BLEND} ndcg@10"].to_numpy()
    models = {}
    for model in MODELS:
        entry = {metric: float(np.nanmean(part[f"{model} {metric}"])) for metric in ce.METRICS}
        if model != LEARNED_BLEND:
            values = per_household[f"{model} ndcg@10"].to_numpy()
            entry["vs_learned_blend"] = paired_bootstrap(
                values, reference, metric="ndcg@10"
            ).to_dict()
        models[model] = entry
    return {"units": len(part), "households": len(per_household), "models": models}


# ---------------------------------------------------------------- results files


def group_table(group: Mapping[str, Any]) -> list[str]:
    """Models × metrics of one group, with the NDCG@10 difference from the learned blend."""
    lines = [
        "| model | " + " | ".join(ce.METRICS) + " | NDCG@10 − learned_blend (95% CI) |",
        "|---|" + "---:|" * (len(ce.METRICS) + 1),
    ]
    for model in MODELS:
        entry = group["models"][model]
        values = " | ".join(f"{entry[metric]:.4f}" for metric in ce.METRICS)
        difference = entry.get("vs_learned_blend")
        gain = "–" if difference is None else _interval(difference)
        lines.append(f"| {model} | {values} | {gain} |")
    return lines


def _interval(difference: Mapping[str, Any]) -> str:
    mark = {"better": " ▲", "worse": " ▼", "tie": ""}[difference["verdict"]]
    return (
        f"{difference['difference']:+.4f} ({difference['ci_low']:+.4f} … "
        f"{difference['ci_high']:+.4f}){mark}"
    )


def campaign_lines(result: Mapping[str, Any]) -> list[str]:
    """The test campaigns as a Markdown table."""
    lines = [
        "| campaign | type | start | coupons | households exposed | households redeeming |",
        "|---:|---|---|---:|---:|---:|",
    ]
    for row in result["campaigns"]:
        coupons = "–" if row["coupons"] is None else row["coupons"]
        lines.append(
            f"| {row['campaign_id']} | {row['type']} | {row['start']} | {coupons} | "
            f"{row['exposed']:,} | {row['redeeming']:,} |"
        )
    return lines


def winner_lines(result: Mapping[str, Any]) -> list[str]:
    """Per group: the best model by NDCG@10, and which models beat the learned blend."""
    lines = []
    for name, group in result["groups"].items():
        models = group["models"]
        best = max(models, key=lambda model: models[model]["ndcg@10"])
        beat = [
            m for m in models if models[m].get("vs_learned_blend", {}).get("verdict") == "better"
        ]
        lines.append(
            f"- {name}: best NDCG@10 is **{best}** ({models[best]['ndcg@10']:.4f}); "
            + (
                f"beating the learned blend with a CI above zero: {', '.join(beat)}."
                if beat
                else "no model beats the learned blend with a CI above zero."
            )
        )
    return lines


def markdown(result: Mapping[str, Any], command: str) -> str:
    """The whole results page."""
    rows = result["rows"]
    lines = [
        "# Offer redemption on real campaigns: 84.51° Complete Journey",
        "",
        f"Command: `{command}`  ",
        f"Run time: {result['seconds']:.0f} s on {result['machine']['cpus']} cores "
        f"(Python {result['machine']['python']}).",
        "",
        "## Task",
        "",
        "For each household × test campaign, rank the campaign's coupons and score the ranking "
        "against the coupons the household redeemed (only household × campaign pairs with at "
        "least one redemption are scored; AUC only where some coupon was not redeemed). Every "
        "score uses data dated before the campaign's start. Test: the campaigns starting on or "
        f"after {result['cutoff']}; the learned blend is fitted on the campaigns starting "
        "before it, labelled by redemptions dated before it. Type A campaigns mailed each "
        "household 16 coupons chosen by the retailer from a pool of ~200; the data does not "
        "say which, so the whole pool is ranked and the retailer's own selection is an "
        "unobserved confounder. Type B/C households received every coupon of the campaign.",
        "",
        f"Contract tables (`features/complete_journey.py`): {rows['members']:,} members, "
        f"{rows['purchases']:,} purchases (the whole transaction *sample*), "
        f"{rows['partners']} partners (departments), {rows['offers']:,} offers (campaign × "
        "coupon). Coupons, exposures and redemptions come from the raw files.",
        "",
        *campaign_lines(result),
        "",
        "## Models",
        "",
        "- coupon_popularity: redemptions of the coupon's UPC before the start; category_share "
        "/ product_share: the household's share of purchase lines in the coupon's categories "
        "/ exact products; past_redemptions: the household's earlier redemptions of coupons "
        "sharing a category; coupon_size: products the coupon covers (not personal).",
        "- learned_blend: logistic regression (`models/ranker.fit_linear`, log1p, standardised) "
        f"on those five; weights `{json.dumps(result['learned_blend'])}`.",
        "- coupon_ranker: perkrank's coupon ranker (`training/coupon_ranker.py`): logistic "
        "regression on the household × campaign pairs with a redemption of the campaigns "
        "before the cutoff, its features chosen by forward selection on NDCG@10 over 5 "
        "household folds inside those campaigns (the test campaigns take no part), from the "
        "five above plus product_lines (lines of the coupon's products), product_recent / "
        "category_recent (the same, each line weighted 2^(−days/30)), same_coupon (the "
        "household's earlier redemptions of the UPC), redemption_rate (UPC redemptions per "
        "earlier exposure) and product_reach (households that bought the coupon's products, "
        "not personal); chosen features and weights "
        f"`{json.dumps(result['coupon_ranker'])}`. product_reach joined the candidates after "
        "single-feature numbers on the test campaigns had been looked at; the selection and "
        "the weights never saw them. Fitted by perkrank's code, not served by the API (the "
        "data contract has no exposure table).",
        "- als, lightfm, own_pop, blend: perkrank's components with `configs/train.yaml` (not "
        "tuned for this data; the blend uses its configured weights, no weight search), fitted "
        "before each campaign's start on department × category items; a coupon's score is the "
        "max (or mean) of its items' scores.",
        "",
    ]
    for name, group in result["groups"].items():
        lines += [
            f"## {name}: {group['units']:,} household × campaign pairs, "
            f"{group['households']:,} households",
            "",
            *group_table(group),
            "",
        ]
    lines += [
        "Differences: per-household mean NDCG@10 minus the learned blend's, paired bootstrap "
        "over households (2,000 resamples, `training/compare.py`); ▲/▼: the 95% CI excludes 0.",
        "",
        "## Verdict",
        "",
        *winner_lines(result),
        "",
        "## What the thin purchase sample means",
        "",
        "The purchases are a random 75,000 of the 1,469,307 transaction lines (5 %): a median "
        f"of {result['median_lines_per_household']:.0f} lines per household over the whole "
        "year, fewer before each campaign. The collaborative models and the share features see "
        "only this sample, so a household's tastes are barely observed; a coupon's products "
        "are mostly unseen for it, and max-over-items scores drift towards coupons covering "
        "many categories (the coupon_size effect). These numbers are a lower bound for "
        "purchase-based models; with the full transaction table the personal rows would likely "
        "gain, the non-personal ones (coupon_size, coupon_popularity) would not.",
        "",
    ]
    return "\n".join(lines)


def write(result: dict[str, Any], out_dir: Path, command: str) -> Path:
    """Write complete_journey.json and complete_journey.md into `out_dir`; the Markdown path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    result = {"command": command, **result}
    (out_dir / "complete_journey.json").write_text(json.dumps(result, indent=2) + "\n")
    path = out_dir / "complete_journey.md"
    path.write_text(markdown(result, command))
    return path


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
    command = " ".join([".venv/bin/python", "benchmarks/complete_journey.py", *sys.argv[1:]])
    print(write(result, arguments.out, command).read_text())


if __name__ == "__main__":
    main()
