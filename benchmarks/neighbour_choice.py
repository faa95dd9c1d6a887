"""Whether the second stage gains from the neighbour score (`features.member_profiles`), and
with which pool and kept-item count: chosen on the validation window of UCI Online Retail only.

Snapshots as `benchmarks/ranker_choice.py` builds them (rankers fitted on the label windows
starting 2011-03-01 and 2011-02-01, stacked; scored on [2011-06-01, 2011-09-01), served
order, NDCG@10 per slice). The served config's ranker (linear, L2 1, plus 0.5 × lambdarank
75 rounds scaled to the linear spread) is fitted without the `neighbour_score` column and with
it computed for each (pool, kept items) setting. The test window is not read.
Writes benchmarks/results/neighbour_choice.md and .json.

    .venv/bin/python benchmarks/neighbour_choice.py [--work-dir var/online_retail]
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from ranker_choice import RESULTS, SNAPSHOTS, SOURCE, VALIDATION, ndcg, snapshot
from threadpoolctl import threadpool_limits

from perkrank.config import CONFIG_DIR, TrainConfig, load_config
from perkrank.features import member_profiles
from perkrank.features.ids import IdMap
from perkrank.features.loader import load_dataset
from perkrank.features.member_features import history_at
from perkrank.features.online_retail import import_online_retail
from perkrank.features.ranker_features import pair_features, purchase_stats
from perkrank.models import ranker
from perkrank.models.second_stage import SERVED_FEATURES
from perkrank.progress import step

COLUMN = SERVED_FEATURES.index("neighbour_score")
SETTINGS = ((5_000, 100), (5_000, 30), (1_000, 100), (1_000, 30))
"""(NEIGHBOUR_POOL, NEIGHBOUR_TOP) variants; the module's constants are the served ones."""
TREE_WEIGHT, TREE_ROUNDS = 0.5, 75


def neighbour_column(dataset: Any, frame: dict, pool: int, top: int) -> np.ndarray:
    """`neighbour_score` of the frame's candidates with the given pool and kept items."""
    saved = member_profiles.NEIGHBOUR_POOL, member_profiles.NEIGHBOUR_TOP
    member_profiles.NEIGHBOUR_POOL, member_profiles.NEIGHBOUR_TOP = pool, top
    try:
        window = frame["window"]
        stats = purchase_stats(
            history_at(dataset, datetime.combine(window.start, datetime.min.time()))
        )
    finally:
        member_profiles.NEIGHBOUR_POOL, member_profiles.NEIGHBOUR_TOP = saved
    members = IdMap(stats.member_ids).rows(window.member_ids[frame["members"]])
    items = IdMap(stats.item_ids).rows(window.offer_items[frame["offers"]])
    return pair_features(stats, members, items)[:, COLUMN]


def score(frames: list[dict], target: dict, column: str, seed: int) -> dict[str, Any]:
    """Linear alone and linear + trees fitted on `frames` (stacked) with the neighbour column
    `column` of each frame (None: without it), NDCG@10 on the validation frame `target`."""

    def rows(frame: dict) -> np.ndarray:
        if column is None:
            return np.delete(frame["features"], COLUMN, axis=1)
        features = frame["features"].copy()
        features[:, COLUMN] = frame[column]
        return features

    names = SERVED_FEATURES if column else tuple(np.delete(np.array(SERVED_FEATURES), COLUMN))
    features = np.vstack([rows(frame) for frame in frames])
    labels = np.concatenate([frame["labels"] for frame in frames])
    queries = np.concatenate([f["members"] + i * 10**7 for i, f in enumerate(frames)])
    _, sizes = np.unique(queries, return_counts=True)
    with threadpool_limits(1, "blas"):
        linear = ranker.fit_linear(features, labels, names, l2=1.0)
    booster = ranker.fit_lambdarank(features, labels, sizes, names, rounds=TREE_ROUNDS, seed=seed)
    scale = np.std(linear.predict(features)) / np.std(booster.predict(features, raw_score=True))
    logit = linear.predict(rows(target))
    trees = booster.predict(rows(target), raw_score=True)
    return {
        "linear": ndcg(target, logit),
        f"linear + {TREE_WEIGHT} × lambdarank": ndcg(target, logit + TREE_WEIGHT * scale * trees),
    }


def run(work_dir: Path, config: TrainConfig) -> dict[str, Any]:
    with step("import Online Retail"):
        import_online_retail(SOURCE, work_dir / "data")
    dataset = load_dataset(work_dir / "data")
    weights = json.loads((RESULTS / "online_retail.json").read_text())["weights"]
    frames = [snapshot(dataset, cutoff, end, config, weights) for cutoff, end in SNAPSHOTS.items()]
    target = snapshot(dataset, *VALIDATION, config, weights)
    for pool, top in SETTINGS:
        with step(f"neighbour scores, pool {pool}, {top} kept"):
            for frame in [*frames, target]:
                frame[f"pool {pool}, {top} kept"] = neighbour_column(dataset, frame, pool, top)
    results = {"without neighbour_score": score(frames, target, None, config.seed)}
    for pool, top in SETTINGS:
        name = f"pool {pool}, {top} kept"
        with step(f"fit and score ({name})"):
            results[name] = score(frames, target, name, config.seed)
    return {
        "served": [member_profiles.NEIGHBOUR_POOL, member_profiles.NEIGHBOUR_TOP],
        "validation": [d.isoformat() for d in VALIDATION],
        "results": results,
    }


def markdown(result: dict[str, Any]) -> str:
    pool, top = result["served"]
    lines = [
        "# The neighbour score in the second stage, chosen on the validation window",
        "",
        f"Command: `{result['command']}`",
        "",
        "UCI Online Retail; rankers fitted on the label windows before the validation window "
        f"{result['validation']} (as in `ranker_choice.md`), NDCG@10 of the served order there. "
        f"Served: pool {pool}, {top} kept. The test window is not read.",
        "",
        "| variant | ranker | overall | new_items | repeat_items |",
        "|---|---|---:|---:|---:|",
    ]
    for variant, rankers in result["results"].items():
        for name, v in rankers.items():
            lines.append(
                f"| {variant} | {name} | {v['overall']:.4f} | {v['new_items']:.4f} "
                f"| {v['repeat_items']:.4f} |"
            )
    return "\n".join([*lines, ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=CONFIG_DIR / "online_retail.yaml")
    parser.add_argument("--work-dir", type=Path, default=Path("var/online_retail"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    arguments = parser.parse_args()
    result = run(arguments.work_dir, load_config(TrainConfig, arguments.config))
    command = " ".join([".venv/bin/python", "benchmarks/neighbour_choice.py", *sys.argv[1:]])
    result = {"command": command, **result}
    arguments.out.mkdir(parents=True, exist_ok=True)
    (arguments.out / "neighbour_choice.json").write_text(json.dumps(result, indent=2) + "\n")
    (arguments.out / "neighbour_choice.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
