"""Is one model better than another on the same window? A paired bootstrap over members.

Both models rank the same members of the same window, so the comparison is paired: per member,
the difference of their metric (NDCG@10, recall@10); members are resampled with replacement
`resamples` times (seeded), and the 95 % interval is the 2.5th and 97.5th percentiles of the
resampled mean differences. A verdict compares the served model with the strongest baseline:
the best of the non-learned models in the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from perkrank.training.evaluation import EvaluationReport

NON_LEARNED = ("popularity", "regional_popularity", "repeat", "own_pop")
"""Baselines without learned parameters: the served model has to beat the best of them."""
RESAMPLES = 2000
CONFIDENCE = 0.95
CELLS_PER_CHUNK = 4_000_000
"""Resampled member indices drawn at once (bounds memory for large windows)."""


@dataclass(frozen=True)
class Difference:
    """Mean of `first − second` per member, and its bootstrap confidence interval."""

    metric: str
    first: float
    second: float
    mean: float
    low: float
    high: float
    members: int

    @property
    def verdict(self) -> str:
        """ "better", "worse" or "tie" (the interval contains zero)."""
        if self.low > 0:
            return "better"
        if self.high < 0:
            return "worse"
        return "tie"

    def interval(self) -> str:
        """`+0.0123 (95% CI +0.0050 … +0.0190)`."""
        percent = round(100 * CONFIDENCE)
        return f"{self.mean:+.4f} ({percent}% CI {self.low:+.4f} … {self.high:+.4f})"

    def to_dict(self) -> dict[str, float | int | str]:
        return {
            "metric": self.metric,
            "first": self.first,
            "second": self.second,
            "difference": self.mean,
            "ci_low": self.low,
            "ci_high": self.high,
            "members": self.members,
            "verdict": self.verdict,
        }


def paired_bootstrap(
    first: np.ndarray,
    second: np.ndarray,
    *,
    metric: str = "metric",
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> Difference:
    """The mean per-member difference `first − second` and its percentile bootstrap CI."""
    first, second = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)
    if first.shape != second.shape or first.ndim != 1:
        raise ValueError(f"paired vectors must have one shape, got {first.shape}, {second.shape}")
    if len(first) == 0:
        raise ValueError("no members to compare")
    if resamples < 1:
        raise ValueError("resamples must be positive")
    differences = first - second
    rng = np.random.default_rng(seed)
    count = len(differences)
    chunk = max(1, CELLS_PER_CHUNK // count)
    means = np.concatenate(
        [
            differences[rng.integers(0, count, size=(min(chunk, resamples - done), count))].mean(
                axis=1
            )
            for done in range(0, resamples, chunk)
        ]
    )
    tail = (1 - CONFIDENCE) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return Difference(
        metric=metric,
        first=float(first.mean()),
        second=float(second.mean()),
        mean=float(differences.mean()),
        low=float(low),
        high=float(high),
        members=count,
    )


def strongest_baseline(report: EvaluationReport, metric: str) -> str | None:
    """The non-learned model with the best overall `metric` in `report` (None: none there)."""
    present = [name for name in NON_LEARNED if name in report.models]
    if not present:
        return None
    return max(present, key=lambda name: report.models[name].metrics["overall"][metric])


def compare_models(
    report: EvaluationReport,
    first: str,
    second: str,
    metrics: Sequence[str],
    *,
    seed: int = 0,
) -> dict[str, Difference]:
    """`paired_bootstrap` of `first` against `second` on each metric (e.g. "ndcg@10")."""
    values_first = report.models[first].member_values
    values_second = report.models[second].member_values
    return {
        metric: paired_bootstrap(
            values_first[metric], values_second[metric], metric=metric, seed=seed
        )
        for metric in metrics
    }


def verdict_sentence(first: str, second: str, difference: Difference) -> str:
    """One plain sentence: does `first` beat `second` on this metric, with the CI."""
    outcome = {"better": "beats", "worse": "is WORSE than", "tie": "does NOT beat"}
    note = " (the interval contains zero)" if difference.verdict == "tie" else ""
    return (
        f"{first} {difference.first:.4f} {outcome[difference.verdict]} {second} "
        f"{difference.second:.4f} on {difference.metric}: difference {difference.interval()}"
        f"{note}, "
        f"{difference.members:,} members paired"
    )


def served_verdict(
    report: EvaluationReport, served: str, k: int, *, seed: int = 0
) -> dict[str, object] | None:
    """The served model against the strongest baseline (by NDCG@k) on NDCG@k and recall@k:
    the baseline, each difference with its CI and a sentence each (None: no baseline)."""
    baseline = strongest_baseline(report, f"ndcg@{k}")
    if baseline is None or served not in report.models:
        return None
    differences = compare_models(report, served, baseline, [f"ndcg@{k}", f"recall@{k}"], seed=seed)
    return {
        "served": served,
        "baseline": baseline,
        "differences": {metric: value.to_dict() for metric, value in differences.items()},
        "sentences": [verdict_sentence(served, baseline, value) for value in differences.values()],
    }
