"""Validation-only tuning of configs/online_retail.yaml: NDCG@10 of each variant on validation.

Every variant is the config with a few keys changed, fitted on the purchases before the
validation window and scored on it, blend weights searched there too (`online_retail.validate`);
the test window is never touched. Selection rule: the score of a variant is the mean of its
blend's overall and new_items NDCG@10 on validation; a change is adopted when it raises the
score by more than `MIN_GAIN` over the config as is (smaller gains are within run-to-run noise),
and the config is final when no variant does. Writes benchmarks/results/online_retail_tuning.md
and .json.

    .venv/bin/python benchmarks/online_retail_tuning.py [--config configs/online_retail.yaml] \
        [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from online_retail import IMPLICIT_DEFAULTS, RESULTS, SOURCE, validate

from perkrank.config import CONFIG_DIR, TrainConfig
from perkrank.features.loader import load_dataset
from perkrank.features.online_retail import import_online_retail
from perkrank.training import pipeline

AS_IS = "config as is"
PIPELINE_DEFAULTS = {
    "interactions": {"weighting": "bm25", "half_life_days": 120, "bm25_k1": 100, "bm25_b": 0.8},
    "als": {"factors": 64, "regularization": 0.05},
}
VARIANTS: dict[str, dict[str, Any]] = {
    AS_IS: {},
    "configs/train.yaml interactions and ALS": PIPELINE_DEFAULTS,
    "bm25 k1 1.2, b 0.75": {"interactions": {"weighting": "bm25", "bm25_k1": 1.2, "bm25_b": 0.75}},
    "amount weighting": {"interactions": {"weighting": "amount"}},
    "ALS regularization 0.01 (implicit's)": {"als": {"regularization": 0.01}},
    "ALS regularization 1": {"als": {"regularization": 1.0}},
    "ALS regularization 5": {"als": {"regularization": 5.0}},
    "ALS regularization 20": {"als": {"regularization": 20.0}},
    "ALS 64 factors": {"als": {"factors": 64}},
    "half-life 30 days": {"interactions": {"half_life_days": 30}},
    "half-life 120 days": {"interactions": {"half_life_days": 120}},
    "half-life 240 days": {"interactions": {"half_life_days": 240}},
    "no recency decay": {"interactions": {"half_life_days": None}},
    "LightFM 64 components, 30 epochs": {"lightfm": {"no_components": 64, "epochs": 30}},
    "BPR 128 factors, 200 iterations": {"bpr": {"factors": 128, "iterations": 200}},
    "blend of repeat, ALS and popularity only": {
        "blend": {"weights": {"als": 1.0, "popularity": 0.5, "repeat": 1.0}}
    },
    "blend without BPR": {
        "blend": {"weights": {"als": 1.0, "lightfm": 0.5, "popularity": 0.5, "repeat": 1.0}}
    },
}
"""Changes tried, each on its own over the config file."""
MIN_GAIN = 0.002
REPORTED = (IMPLICIT_DEFAULTS, "repeat", "als", "bpr", "lightfm", pipeline.BLEND)


def merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """`base` with `changes` applied: keys of a section replace that section's keys."""
    result = dict(base)
    for section, values in changes.items():
        result[section] = {**base.get(section, {}), **values}
    return result


def tune(config_path: Path, source: Path, work_dir: Path) -> list[dict[str, Any]]:
    """Every variant's validation NDCG@10 (overall, new_items) per model, and its weights."""
    import_online_retail(source, work_dir / "data")
    dataset = load_dataset(work_dir / "data")
    base = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    rows = []
    for name, changes in VARIANTS.items():
        started = time.perf_counter()
        config = TrainConfig(**merged(base, changes))
        weights, evaluation = validate(dataset, pipeline.split_dates(dataset, config), config)
        ndcg = {
            model: {
                part: evaluation.models[model].metrics[part]["ndcg@10"]
                for part in ("overall", "new_items")
            }
            for model in REPORTED
        }
        rows.append(
            {
                "variant": name,
                "changes": changes,
                "weights": weights,
                "ndcg@10": ndcg,
                "seconds": round(time.perf_counter() - started, 1),
            }
        )
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def blend_score(row: dict[str, Any]) -> float:
    """The selection rule: mean of the blend's overall and new_items NDCG@10 on validation."""
    blend = row["ndcg@10"][pipeline.BLEND]
    return (blend["overall"] + blend["new_items"]) / 2


def adopted_variants(rows: list[dict[str, Any]]) -> list[str]:
    """Variants beating the config as is by more than `MIN_GAIN` (none: the config is final)."""
    as_is = next(blend_score(row) for row in rows if row["variant"] == AS_IS)
    return [row["variant"] for row in rows if blend_score(row) > as_is + MIN_GAIN]


def markdown(rows: list[dict[str, Any]], command: str) -> str:
    adopted = adopted_variants(rows)
    header = ["variant", *(f"{model} all / new" for model in REPORTED), "selection score"]
    lines = [
        "# Tuning configs/online_retail.yaml on the validation window",
        "",
        f"Command: `{command}`. The test window is never evaluated here. Cells: NDCG@10 overall "
        "/ on new_items; selection score = mean of the blend's two. A change is adopted when it "
        f"beats the config as is by more than {MIN_GAIN}: "
        + (", ".join(adopted) if adopted else "none, so the config is final")
        + ".",
        "",
        "| " + " | ".join(header) + " |",
        "|---|" + "---:|" * (len(header) - 1),
    ]
    for row in rows:
        cells = [
            f"{row['ndcg@10'][model]['overall']:.4f} / {row['ndcg@10'][model]['new_items']:.4f}"
            for model in REPORTED
        ]
        name = f"**{row['variant']}**" if row["variant"] in adopted else row["variant"]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {blend_score(row):.4f} |")
    lines += ["", "Blend weights chosen per variant:", ""]
    lines += [f"- {row['variant']}: `{json.dumps(row['weights'])}`" for row in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=CONFIG_DIR / "online_retail.yaml")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--source", type=Path, default=SOURCE)
    parser.add_argument("--work-dir", type=Path, default=Path("var/online_retail"))
    arguments = parser.parse_args()
    rows = tune(arguments.config, arguments.source, arguments.work_dir)
    command = " ".join([".venv/bin/python", "benchmarks/online_retail_tuning.py", *sys.argv[1:]])
    arguments.out.mkdir(parents=True, exist_ok=True)
    (arguments.out / "online_retail_tuning.json").write_text(json.dumps(rows, indent=2) + "\n")
    text = markdown(rows, command)
    (arguments.out / "online_retail_tuning.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
