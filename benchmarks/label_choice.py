"""Label-side variants of the served second stage, chosen on the validation window only.

The rankers are fitted as in `benchmarks/ranker_choice.py` (label windows ending before the
validation window: [2011-03-01, 2011-06-01) and [2011-02-01, 2011-05-01), each with its own
statistics, blend and candidates) and scored on the validation window [2011-06-01,
2011-09-01) in the served order (NDCG@10 over the whole catalogue). The served setting is
"linear + 0.5 × lambdarank 75 rounds" on both snapshots; each variant changes one thing on
the label/objective side:

    member-balanced:  each member's rows weigh 1 / their row count in the logistic loss (the
                      metric averages members, the plain loss averages rows);
    latest ×2:        the latest snapshot's rows weigh twice the earlier one's;
    no history-length columns: the columns whose scale grows with the length of the history
                      before the cutoff (member tenure, item age) held constant, since the
                      served cutoff (2011-09-01) has a longer history than any label window;
    per-day counts:   all-time counts (own, item, member) divided by the history's length;
    label windows:    other windows than the served two 3-month ones (named by their dates in
                      2011, each with its own statistics, blend and candidates): shorter or
                      longer horizons ending at the validation start, stacks of them.
The frames are cached under --work-dir (pickle) so variants rerun without refitting. The test
window is not read. Writes benchmarks/results/label_choice.md and .json.

    .venv/bin/python benchmarks/label_choice.py [--work-dir var/label_choice]
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import write_results
from benchmarks.ranker_choice import RESULTS, SNAPSHOTS, SOURCE, VALIDATION, ndcg, snapshot
from perkrank.config import CONFIG_DIR, TrainConfig, load_config
from perkrank.features.loader import load_dataset
from perkrank.features.online_retail import import_online_retail
from perkrank.models import ranker
from perkrank.models.second_stage import SERVED_FEATURES
from perkrank.progress import step

COLUMN = {name: index for index, name in enumerate(SERVED_FEATURES)}
HISTORY_LENGTH = ("member_tenure_days", "item_age_days")
ALL_TIME_COUNTS = (
    "own_count",
    "own_days",
    "item_count",
    "item_buyers",
    "member_purchases",
    "member_days",
    "member_items",
)
DATA_START = date(2010, 12, 1)


def D(month: int, day: int) -> date:  # noqa: N802 - a date of 2011, short for the table below
    return date(2011, month, day)


def frame(work_dir: Path, config: TrainConfig, cutoff: date, end: date) -> dict:
    """One snapshot's frame (`ranker_choice.snapshot`), cached under `work_dir`."""
    cache = work_dir / f"frame_{cutoff}_{end}.pkl"
    if cache.exists():
        return pickle.loads(cache.read_bytes())
    data = work_dir / "data"
    if not data.exists():
        with step("import Online Retail"):
            import_online_retail(SOURCE, data)
    weights = json.loads((RESULTS / "online_retail.json").read_text())["weights"]
    with step(f"snapshot [{cutoff}, {end})"):
        result = snapshot(load_dataset(data), cutoff, end, config, weights) | {"cutoff": cutoff}
    cache.write_bytes(pickle.dumps(result))
    return result


def constant(columns: tuple[str, ...]) -> Callable[[np.ndarray, date], np.ndarray]:
    def change(features: np.ndarray, cutoff: date) -> np.ndarray:
        out = features.copy()
        out[:, [COLUMN[c] for c in columns]] = 0.0
        return out

    return change


def per_day(features: np.ndarray, cutoff: date) -> np.ndarray:
    out = features.copy()
    out[:, [COLUMN[c] for c in ALL_TIME_COUNTS]] /= (cutoff - DATA_START).days
    return out


def fit_and_score(
    trains: list[dict],
    target: dict,
    seed: int,
    *,
    balanced: bool = False,
    latest_weight: float = 1.0,
    change: Callable[[np.ndarray, date], np.ndarray] | None = None,
) -> dict[str, dict[str, float]]:
    """Linear, and linear + 0.5 × lambdarank 75 rounds, with one variant's changes."""
    prepare = change or (lambda features, cutoff: features)
    features = np.vstack([prepare(t["features"], t["cutoff"]) for t in trains])
    labels = np.concatenate([t["labels"] for t in trains])
    queries = np.concatenate([t["members"] + i * 10**7 for i, t in enumerate(trains)])
    weights = np.ones(len(labels))
    if balanced:
        _, inverse, counts = np.unique(queries, return_inverse=True, return_counts=True)
        weights = 1.0 / counts[inverse]
    weights[: len(trains[0]["labels"])] *= latest_weight
    weights *= len(weights) / weights.sum()
    with threadpool_limits(1, "blas"):
        linear = ranker.fit_linear(features, labels, SERVED_FEATURES, l2=1.0, weights=weights)
    target_features = prepare(target["features"], target["cutoff"])
    logit = linear.predict(target_features)
    _, sizes = np.unique(queries, return_counts=True)
    booster = ranker.fit_lambdarank(features, labels, sizes, SERVED_FEATURES, rounds=75, seed=seed)
    trees = booster.predict(target_features, raw_score=True)
    scale = float(np.std(linear.predict(features))) / float(
        np.std(booster.predict(features, raw_score=True))
    )
    return {
        "linear": ndcg(target, logit),
        "linear + 0.5 × lambdarank 75": ndcg(target, logit + 0.5 * scale * trees),
    }


VARIANTS: dict[str, dict[str, Any]] = {
    "served (as ranker_choice)": {},
    "member-balanced": {"balanced": True},
    "latest ×2": {"latest_weight": 2.0},
    "no history-length columns": {"change": constant(HISTORY_LENGTH)},
    "per-day counts": {"change": per_day},
    "per-day counts, no history-length columns": {
        "change": lambda f, c: constant(HISTORY_LENGTH)(per_day(f, c), c)
    },
    "labels [05-01, 06-01) only (1-month horizon)": {"windows": ((D(5, 1), D(6, 1)),)},
    "labels [04-01, 06-01) only (2-month horizon)": {"windows": ((D(4, 1), D(6, 1)),)},
    "labels [03-01, 06-01) only (3-month horizon)": {"windows": ((D(3, 1), D(6, 1)),)},
    "labels [02-01, 06-01) only (4-month horizon)": {"windows": ((D(2, 1), D(6, 1)),)},
    "served snapshots + [05-01, 06-01)": {
        "windows": ((D(3, 1), D(6, 1)), (D(2, 1), D(5, 1)), (D(5, 1), D(6, 1)))
    },
    "served snapshots + [04-01, 06-01)": {
        "windows": ((D(3, 1), D(6, 1)), (D(2, 1), D(5, 1)), (D(4, 1), D(6, 1)))
    },
    "1-month labels, 2 snapshots (step 1 month)": {
        "windows": ((D(5, 1), D(6, 1)), (D(4, 1), D(5, 1)))
    },
    "1-month labels, 3 snapshots (step 1 month)": {
        "windows": ((D(5, 1), D(6, 1)), (D(4, 1), D(5, 1)), (D(3, 1), D(4, 1)))
    },
    "1-month labels, 2 snapshots (step 15 days)": {
        "windows": ((D(5, 1), D(6, 1)), (D(4, 16), D(5, 16)))
    },
    "half-month labels [05-16, 06-01) only": {"windows": ((D(5, 16), D(6, 1)),)},
    "1-month [05-01, 06-01) + 3-month [03-01, 06-01)": {
        "windows": ((D(5, 1), D(6, 1)), (D(3, 1), D(6, 1)))
    },
    "3-month windows ending 06-01, 05-15, 05-01": {
        "windows": ((D(3, 1), D(6, 1)), (D(2, 15), D(5, 15)), (D(2, 1), D(5, 1)))
    },
}


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Label-side variants of the second stage, on the validation window (Online Retail)",
        "",
        f"Command: `{result['command']}`",
        "",
        "See the module docstring. Fitted on the snapshots "
        f"{json.dumps(result['snapshots'])}, scored on the validation window "
        f"{result['validation']} (served order, NDCG@10 overall / new_items / repeat_items). "
        "The test window is not read.",
        "",
        "| variant | ranker | overall | new_items | repeat_items |",
        "|---|---|---:|---:|---:|",
    ]
    for name, rows in result["results"].items():
        for kind, v in rows.items():
            lines.append(
                f"| {name} | {kind} | {v['overall']:.4f} | {v['new_items']:.4f} | "
                f"{v['repeat_items']:.4f} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=CONFIG_DIR / "online_retail.yaml")
    parser.add_argument("--work-dir", type=Path, default=Path("var/label_choice"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--only", nargs="*", default=None)
    arguments = parser.parse_args()
    config = load_config(TrainConfig, arguments.config)
    arguments.work_dir.mkdir(parents=True, exist_ok=True)
    target = frame(arguments.work_dir, config, *VALIDATION)
    results = {}
    for name, options in VARIANTS.items():
        if arguments.only and name not in arguments.only:
            continue
        options = dict(options)
        windows = options.pop("windows", tuple(SNAPSHOTS.items()))
        trains = [frame(arguments.work_dir, config, *window) for window in windows]
        with step(name):
            results[name] = fit_and_score(trains, target, config.seed, **options)
        print(name, {k: v["overall"] for k, v in results[name].items()}, flush=True)
    result = {
        "command": " ".join([".venv/bin/python", "benchmarks/label_choice.py", *sys.argv[1:]]),
        "snapshots": {c.isoformat(): e.isoformat() for c, e in SNAPSHOTS.items()},
        "validation": [d.isoformat() for d in VALIDATION],
        "results": results,
    }
    write_results(arguments.out, "label_choice", result, markdown(result))


if __name__ == "__main__":
    main()
