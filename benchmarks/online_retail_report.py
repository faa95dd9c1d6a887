"""The Online Retail benchmark's results files: online_retail.md and .json."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from perkrank.models.own_pop import NAME as OWN_POP
from perkrank.training import pipeline, ranker_step

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
