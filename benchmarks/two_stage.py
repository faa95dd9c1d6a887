"""The two-stage ranker on UCI Online Retail: candidates, point-in-time features, a learned
ranker (LightGBM lambdarank and a logistic regression) against own+pop and the served blend.

Split as `benchmarks/online_retail.py` (configs/online_retail.yaml): the rankers are fitted on
the validation window (features and CF models before 2011-06-01, labels = purchases in
[2011-06-01, 2011-09-01)) and evaluated once on the test window (features and CF models
before 2011-09-01, labels in [2011-09-01, 2011-12-10)), NDCG@10 over the whole catalogue.
Writes benchmarks/results/two_stage.md and two_stage.json.

    .venv/bin/python benchmarks/two_stage.py [--config configs/online_retail.yaml] \
        [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np

from perkrank.config import CONFIG_DIR, TrainConfig, load_config
from perkrank.features.dataset import Dataset
from perkrank.features.loader import load_dataset
from perkrank.features.member_features import history_at
from perkrank.features.online_retail import import_online_retail
from perkrank.features.ranker_features import PurchaseStats, purchase_stats
from perkrank.models import ranker
from perkrank.progress import step
from perkrank.training import candidates, components, pipeline, two_stage
from perkrank.training.evaluation import ScoreBatch, evaluate_scores, rank_scores
from perkrank.training.metrics import ndcg_at_k
from perkrank.training.window import EvaluationWindow

SOURCE = Path(__file__).resolve().parents[2] / "shared/datasets/online-retail/online_retail.csv.gz"
RESULTS = Path(__file__).parent / "results"
BLEND_WEIGHTS = RESULTS / "online_retail.json"
"""The blend weights chosen on the validation window by benchmarks/online_retail.py."""
CF_MODELS = ("als", "lightfm")
"""CF models whose top offers are candidates and whose scores and ranks are features."""
FACTOR_MODELS = ("popularity", "repeat", "als", "lightfm", pipeline.BLEND)
OWN_POP, LAMBDARANK, LINEAR = "own+pop", "ranker_lambdarank", "ranker_linear"
MODELS = (*FACTOR_MODELS, OWN_POP, LINEAR, LAMBDARANK)
SLICES = ("overall", "new_items", "repeat_items")
K = 10
BOOTSTRAP_SAMPLES = 2000


@dataclass
class Split:
    """One cutoff's window, stats, CF scores, candidates and feature rows."""

    window: EvaluationWindow
    stats: PurchaseStats
    frame: two_stage.RankingFrame
    score_batches: dict[str, ScoreBatch]
    recall: dict[str, float]
    last_feature_purchase: str


def prepare(
    dataset: Dataset, cutoff: date, end: date, config: TrainConfig, weights: Mapping[str, float]
) -> Split:
    """Fit the first stage before `cutoff` and build the candidate rows of [cutoff, end)."""
    fitted = components.fit_components(dataset, cutoff, config)
    window = pipeline.evaluation_window(dataset, end, fitted, config)
    with step(f"candidates and features at {cutoff}"):
        history = history_at(dataset, datetime.combine(cutoff, datetime.min.time()))
        stats = purchase_stats(history)
        cf_scores = {
            name: candidates.model_scores(window, fitted.models[name]) for name in CF_MODELS
        }
        sources = candidates.generate(window, stats, cf_scores)
        frame = two_stage.build_frame(window, stats, sources, cf_scores)
    models = {name: fitted.models[name] for name in FACTOR_MODELS if name != pipeline.BLEND}
    models[pipeline.BLEND] = components.blend_components(fitted, weights, config.seed)
    batches = {name: _factor_batch(window, factors) for name, factors in models.items()}
    batches[OWN_POP] = two_stage.own_plus_popularity(window, stats)
    return Split(
        window=window,
        stats=stats,
        frame=frame,
        score_batches=batches,
        recall=candidates.candidate_recall(window, sources),
        last_feature_purchase=f"{history.timestamps.max().astype('datetime64[m]')}",
    )


def _factor_batch(window: EvaluationWindow, factors: Any) -> ScoreBatch:
    dense = candidates.model_scores(window, factors)
    return lambda rows, offers: dense[np.ix_(rows, offers)]


def fit_rankers(frame: two_stage.RankingFrame, members: int, seed: int) -> dict[str, Any]:
    """Both rankers fitted on `frame`, with their fit seconds (lambdarank: rounds chosen on
    held-out validation members, then refitted on all of them)."""
    started = time.perf_counter()
    rounds = ranker.choose_rounds(
        frame.features, frame.labels, frame.member_rows, frame.feature_names, seed=seed
    )
    booster = ranker.fit_lambdarank(
        frame.features,
        frame.labels,
        frame.group_sizes(members),
        frame.feature_names,
        rounds=rounds,
        seed=seed,
    )
    lambdarank_seconds = time.perf_counter() - started
    started = time.perf_counter()
    linear = ranker.fit_linear(frame.features, frame.labels, frame.feature_names)
    linear_seconds = time.perf_counter() - started
    return {
        LAMBDARANK: (booster, lambdarank_seconds),
        LINEAR: (linear, linear_seconds),
    }


def reload(fitted: dict[str, Any], directory: Path) -> dict[str, Any]:
    """The rankers saved without pickles and loaded back (what is scored is the artifact)."""
    booster, _ = fitted[LAMBDARANK]
    path = ranker.save_booster(booster, directory / "lambdarank.txt")
    linear, _ = fitted[LINEAR]
    (directory / "linear.json").write_text(linear.to_json())
    return {
        LAMBDARANK: ranker.load_booster(path),
        LINEAR: ranker.LinearRanker.from_json((directory / "linear.json").read_text()),
    }


def member_ndcg(window: EvaluationWindow, batch: ScoreBatch) -> np.ndarray:
    """Per overall-slice member, NDCG@K."""
    ranking = rank_scores(window, batch, K)["all"]
    rows = next(part.member_rows for part in window.slices if part.name == "overall")
    return ndcg_at_k(ranking.hits[rows], ranking.relevant_counts[rows], K)


def paired_bootstrap(gains: np.ndarray, seed: int) -> dict[str, float]:
    """Mean of per-member gains and its 95 % percentile interval over resampled members."""
    rng = np.random.default_rng(seed)
    samples = rng.integers(0, len(gains), size=(BOOTSTRAP_SAMPLES, len(gains)))
    means = gains[samples].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"mean": float(gains.mean()), "low": float(low), "high": float(high)}


def run(source: Path, config: TrainConfig, work_dir: Path) -> dict[str, Any]:
    """Everything the results files show."""
    started = time.perf_counter()
    with step(f"import {source}"):
        import_online_retail(source, work_dir / "data")
    dataset = load_dataset(work_dir / "data")
    dates = pipeline.split_dates(dataset, config)
    weights = (
        json.loads(BLEND_WEIGHTS.read_text())["weights"]
        if BLEND_WEIGHTS.exists()
        else dict(config.blend.weights)
    )
    validation = prepare(dataset, dates.validation_start, dates.test_start, config, weights)
    test = prepare(dataset, dates.test_start, dates.test_end, config, weights)
    with step("fit the rankers on the validation window"):
        fitted = fit_rankers(validation.frame, len(validation.window.member_ids), config.seed)
    with tempfile.TemporaryDirectory() as directory:
        loaded = reload(fitted, Path(directory))
    models: dict[str, dict[str, Any]] = {}
    for name in MODELS:
        batch, fit_seconds, score_seconds = test.score_batches.get(name), None, None
        if name in loaded:
            score_started = time.perf_counter()
            scores = loaded[name].predict(test.frame.features)
            score_seconds = time.perf_counter() - score_started
            fit_seconds = fitted[name][1]
            batch = two_stage.candidate_score_batch(test.window, test.frame, scores, test.stats)
        report = evaluate_scores(test.window, batch, (K,), name)
        models[name] = {
            "ndcg": {part: report.metrics.get(part, {}).get(f"ndcg@{K}") for part in SLICES},
            "fit_seconds": fit_seconds,
            "score_seconds": score_seconds,
            "per_member": member_ndcg(test.window, batch),
        }
    baseline = models[OWN_POP].pop("per_member")
    for name, values in models.items():
        if name in loaded:
            values["gain_over_own_pop"] = paired_bootstrap(values["per_member"] - baseline, 7)
        values.pop("per_member", None)
    booster = loaded[LAMBDARANK]
    importance = booster.feature_importance(importance_type="gain")
    return {
        "split": {
            "validation": [dates.validation_start.isoformat(), dates.test_start.isoformat()],
            "test": [dates.test_start.isoformat(), dates.test_end.isoformat()],
        },
        "blend_weights": weights,
        "leakage_check": {
            "validation_features_last_purchase": validation.last_feature_purchase,
            "validation_labels_from": dates.validation_start.isoformat(),
            "test_features_last_purchase": test.last_feature_purchase,
            "test_labels_from": dates.test_start.isoformat(),
        },
        "frames": {
            name: {
                "members": len(np.unique(split.frame.member_rows)),
                "rows": len(split.frame.labels),
                "positives": int(split.frame.labels.sum()),
            }
            for name, split in (("validation", validation), ("test", test))
        },
        "candidate_recall": {"validation": validation.recall, "test": test.recall},
        "test_members": {
            part.name: len(part.member_rows) for part in test.window.slices if part.name in SLICES
        },
        "models": models,
        "lambdarank_params": {**ranker.LAMBDARANK_PARAMS, "rounds": booster.current_iteration()},
        "feature_importance_gain": dict(
            sorted(
                zip(booster.feature_name(), importance.round(1).tolist(), strict=True),
                key=lambda pair: -pair[1],
            )
        ),
        "linear_weights": dict(
            zip(
                [
                    *fitted[LINEAR][0].feature_names,
                    *(
                        f"missing:{fitted[LINEAR][0].feature_names[c]}"
                        for c in fitted[LINEAR][0].missing_columns
                    ),
                ],
                fitted[LINEAR][0].weights.round(3).tolist(),
                strict=True,
            )
        ),
        "total_seconds": round(time.perf_counter() - started, 1),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }


def markdown(result: Mapping[str, Any]) -> str:
    """The results page."""
    models, recall = result["models"], result["candidate_recall"]
    members = result["test_members"]
    lines = [
        "# Two-stage ranker on UCI Online Retail (candidates → features → learned ranker)",
        "",
        f"Command: `{result['command']}`  ",
        f"Run time: {result['total_seconds']:.0f} s on {result['machine']['cpus']} cores "
        f"(Python {result['machine']['python']}).",
        "",
        "## Protocol",
        "",
        f"- Rankers fitted on the validation window {result['split']['validation']}: features "
        "and CF models (ALS, LightFM) from purchases before its start, labels = the window's "
        "relevant items. Evaluated once on the test window "
        f"{result['split']['test']} with features and CF models before its start.",
        "- Leakage check (latest purchase any feature saw → first labelled day): validation "
        f"{result['leakage_check']['validation_features_last_purchase']} → "
        f"{result['leakage_check']['validation_labels_from']}, test "
        f"{result['leakage_check']['test_features_last_purchase']} → "
        f"{result['leakage_check']['test_labels_from']}.",
        "- Ranking: candidates first by the ranker's score, then every other item by global "
        "popularity, so NDCG@10 is over the whole catalogue as in `online_retail.md`. "
        "own+pop: own raw purchase counts, ties and fill by global popularity, no decay. "
        f"blend: the served blend with the weights of `online_retail.json` "
        f"(`{json.dumps(result['blend_weights'])}`).",
        f"- Test members: overall {members['overall']:,}, new_items {members['new_items']:,}, "
        f"repeat_items {members['repeat_items']:,}.",
        "",
        f"## Test NDCG@{K}",
        "",
        "| model | overall | new_items | repeat_items | fit s | score s |"
        " gain over own+pop (95 % CI) |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name in MODELS:
        values = models[name]
        gain = values.get("gain_over_own_pop")
        interval = f"{gain['mean']:+.4f} [{gain['low']:+.4f}, {gain['high']:+.4f}]" if gain else ""
        lines.append(
            f"| {name} | "
            + " | ".join(_number(values["ndcg"][part]) for part in SLICES)
            + f" | {_seconds(values['fit_seconds'])} | {_seconds(values['score_seconds'])} | "
            f"{interval} |"
        )
    lines += [
        "",
        "Gain CI: paired bootstrap over test members "
        f"({BOOTSTRAP_SAMPLES} resamples) of the per-member NDCG@{K} difference. Fit and score "
        "seconds are the rankers' own (first-stage fits and features excluded).",
        "",
        "## Candidates (share of relevant member × item pairs in the candidate set)",
        "",
        "| window | overall | repeat_items | new_items | own | cf | popular | regional | new |"
        " candidates / member |",
        "|---|" + "---:|" * 9,
    ]
    for window in ("validation", "test"):
        row = recall[window]
        parts = ["overall", "repeat_items", "new_items"] + [
            f"source={name}" for name in ("own", "cf", "popular", "regional", "new")
        ]
        lines.append(
            f"| {window} | "
            + " | ".join(f"{row[part]:.3f}" for part in parts)
            + f" | {row['candidates_per_member']:.0f} |"
        )
    frames = result["frames"]
    lines += [
        "",
        "Training rows (validation): "
        f"{frames['validation']['rows']:,} ({frames['validation']['positives']:,} positive) "
        f"for {frames['validation']['members']:,} members; test rows "
        f"{frames['test']['rows']:,}.",
        "",
        "## LightGBM lambdarank: settings and gain importance (top 12)",
        "",
        f"`{json.dumps(result['lambdarank_params'])}`",
        "",
        *(
            f"- {name}: {gain:,.0f}"
            for name, gain in list(result["feature_importance_gain"].items())[:12]
        ),
        "",
    ]
    return "\n".join(lines)


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


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
    command = " ".join([".venv/bin/python", "benchmarks/two_stage.py", *sys.argv[1:]])
    result = {"command": command, **result}
    arguments.out.mkdir(parents=True, exist_ok=True)
    (arguments.out / "two_stage.json").write_text(json.dumps(result, indent=2) + "\n")
    (arguments.out / "two_stage.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
