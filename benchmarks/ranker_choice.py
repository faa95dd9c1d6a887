"""How the served second stage of `configs/online_retail.yaml` was chosen: on the validation
window only, never on the test window.

Every ranker here is fitted on label windows that end before the validation window starts
(2011-06-01): the snapshot starting 2011-03-01 (labels [2011-03-01, 2011-06-01)) and, stacked,
the one starting 2011-02-01 (labels [2011-02-01, 2011-05-01)); features, blend and candidates
of each come from the purchases before its start, as `training.ranker_step` builds them
(`SERVED_FEATURES`). Each is then scored on the validation window [2011-06-01, 2011-09-01)
(full catalogue NDCG@10, candidates first by the ranker's score, the rest by the blend, as
served). Variants: the linear ranker (L2 1), LightGBM lambdarank / rank_xendcg / binary
(`models.ranker.LAMBDARANK_PARAMS` with the changes named), and the linear logit plus
w × the trees' score scaled to the logit's standard deviation on the training rows.
Writes benchmarks/results/ranker_choice.md and .json.

    .venv/bin/python benchmarks/ranker_choice.py [--work-dir var/online_retail]
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import write_results
from perkrank.config import CONFIG_DIR, TrainConfig, load_config
from perkrank.features.loader import load_dataset
from perkrank.features.online_retail import import_online_retail
from perkrank.models import ranker
from perkrank.models.second_stage import (
    CANDIDATE_OFFSET,
    SERVED_FEATURES,
    CandidateSizes,
    blend_ranks,
    candidate_flags,
)
from perkrank.progress import step
from perkrank.training import components, pipeline, ranker_step
from perkrank.training.candidates import model_scores
from perkrank.training.evaluation import evaluate_scores

RESULTS = Path(__file__).parent / "results"
SOURCE = Path(__file__).resolve().parents[2] / "shared/datasets/online-retail/online_retail.csv.gz"
SNAPSHOTS = {date(2011, 3, 1): date(2011, 6, 1), date(2011, 2, 1): date(2011, 5, 1)}
VALIDATION = (date(2011, 6, 1), date(2011, 9, 1))
TREES: dict[str, tuple[dict[str, Any], int]] = {
    "lambdarank 150 rounds": ({}, 150),
    "lambdarank 75 rounds": ({}, 75),
    "lambdarank 300 rounds": ({}, 300),
    "lambdarank 15 leaves, 300 rounds": ({"num_leaves": 15, "min_data_in_leaf": 300}, 300),
    "rank_xendcg 300 rounds": ({"objective": "rank_xendcg"}, 300),
    "binary 300 rounds": ({"objective": "binary"}, 300),
}
WEIGHTS = (0.5, 1.0, 2.0)
TRAININGS = {"one snapshot": (date(2011, 3, 1),), "two snapshots": tuple(SNAPSHOTS)}


def snapshot(dataset: Any, cutoff: date, end: date, config: TrainConfig, weights: dict) -> dict:
    """Candidate rows (features, labels, member and offer rows) of [cutoff, end), and the
    served order's scores of non-candidates (the blend; the fallback for unranked members)."""
    fitted = components.fit_components(
        dataset, cutoff, config, names=list(dict.fromkeys([*weights, pipeline.FALLBACK]))
    )
    window = pipeline.evaluation_window(dataset, end, fitted, config)
    blend = components.blend_components(fitted, weights, config.seed)
    data = ranker_step.stage_data(dataset, cutoff)
    sizes = CandidateSizes()
    features, labels, members = ranker_step.frame(window, blend, data, sizes)
    base = model_scores(window, fitted.models[pipeline.FALLBACK]).astype(np.float64)
    offers = []
    for group in ranker_step.ranked_groups(window, blend, data, sizes):
        base[np.ix_(group.members, group.offers)] = group.blend_scores
        flags = candidate_flags(
            data.stats,
            sizes,
            group.stats_rows,
            group.item_rows,
            group.flags,
            group.blend_scores,
            blend_ranks(group.blend_scores),
        )
        offers.append(group.offers[np.nonzero(flags)[1]])
    order = np.argsort(members, kind="stable")
    return {
        "window": window,
        "features": features[order],
        "labels": labels[order],
        "members": members[order],
        "offers": np.concatenate(offers)[order],
        "base": base,
    }


def ndcg(target: dict, scores: np.ndarray) -> dict[str, float]:
    """NDCG@10 per slice of the served order with `scores` for the candidates."""
    dense = target["base"].copy()
    dense[target["members"], target["offers"]] = CANDIDATE_OFFSET + scores
    report = evaluate_scores(target["window"], lambda r, o: dense[np.ix_(r, o)], (10,), "x")
    return {part: round(values["ndcg@10"], 4) for part, values in report.metrics.items()}


def variants(trains: list[dict], target: dict, seed: int) -> dict[str, dict[str, float]]:
    """Every variant fitted on `trains` (stacked) and scored on `target`."""
    features = np.vstack([t["features"] for t in trains])
    labels = np.concatenate([t["labels"] for t in trains])
    queries = np.concatenate([t["members"] + i * 10**7 for i, t in enumerate(trains)])
    _, sizes = np.unique(queries, return_counts=True)
    with threadpool_limits(1, "blas"):
        linear = ranker.fit_linear(features, labels, SERVED_FEATURES, l2=1.0)
    logit = linear.predict(target["features"])
    spread = float(np.std(linear.predict(features)))
    results = {"linear": ndcg(target, logit)}
    for name, (params, rounds) in TREES.items():
        settings = dict(params)
        if settings.get("objective", "lambdarank") != "lambdarank":
            settings |= {"metric": "None", "lambdarank_truncation_level": 20}
        booster = ranker.fit_lambdarank(
            features, labels, sizes, SERVED_FEATURES, rounds=rounds, seed=seed, params=settings
        )
        trees = booster.predict(target["features"], raw_score=True)
        results[name] = ndcg(target, trees)
        scale = spread / float(np.std(booster.predict(features, raw_score=True)))
        for weight in WEIGHTS:
            results[f"linear + {weight} × {name}"] = ndcg(target, logit + weight * scale * trees)
    return results


def run(work_dir: Path, config: TrainConfig) -> dict[str, Any]:
    with step("import Online Retail"):
        import_online_retail(SOURCE, work_dir / "data")
    dataset = load_dataset(work_dir / "data")
    weights = json.loads((RESULTS / "online_retail.json").read_text())["weights"]
    frames = {
        cutoff: snapshot(dataset, cutoff, end, config, weights) for cutoff, end in SNAPSHOTS.items()
    }
    target = snapshot(dataset, *VALIDATION, config, weights)
    results = {}
    for name, cutoffs in TRAININGS.items():
        with step(f"fit and score the variants ({name})"):
            trains = [frames[cutoff] for cutoff in cutoffs]
            results[name] = variants(trains, target, config.seed)
    return {
        "blend_weights": weights,
        "snapshots": {c.isoformat(): e.isoformat() for c, e in SNAPSHOTS.items()},
        "validation": [d.isoformat() for d in VALIDATION],
        "rows": {c.isoformat(): len(f["labels"]) for c, f in frames.items()},
        "results": results,
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Choosing the second stage on the validation window (UCI Online Retail)",
        "",
        f"Command: `{result['command']}`",
        "",
        "Rankers fitted on label windows ending before the validation window "
        f"(snapshots start → end: {json.dumps(result['snapshots'])}; rows {result['rows']}), "
        f"scored on the validation window {result['validation']} (served order, NDCG@10). "
        "The test window is not read. See the module docstring for the variants.",
        "",
    ]
    for training, rows in result["results"].items():
        lines += [
            f"## Trained on {training}",
            "",
            "| variant | overall | new_items | repeat_items |",
            "|---|---:|---:|---:|",
            *(
                f"| {name} | {v['overall']:.4f} | {v['new_items']:.4f} | {v['repeat_items']:.4f} |"
                for name, v in sorted(rows.items(), key=lambda pair: -pair[1]["overall"])
            ),
            "",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=CONFIG_DIR / "online_retail.yaml")
    parser.add_argument("--work-dir", type=Path, default=Path("var/online_retail"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    arguments = parser.parse_args()
    result = run(arguments.work_dir, load_config(TrainConfig, arguments.config))
    result = {
        "command": " ".join([".venv/bin/python", "benchmarks/ranker_choice.py", *sys.argv[1:]]),
        **result,
    }
    write_results(arguments.out, "ranker_choice", result, markdown(result))


if __name__ == "__main__":
    main()
