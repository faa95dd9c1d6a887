"""The linear second-stage ranker as scoring reads it: a logistic regression over transformed
features, saved as JSON (fitted by `models.ranker.fit_linear`). numpy only, so serving can load
and score it without LightGBM or scipy's optimisers.

Transform: sign(x)·log1p(|x|), NaN → 0, plus a 0/1 missing flag per column that had NaNs in
training; then standardised by the training means and scales.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class LinearRanker:
    """Logistic regression on transformed features (see the module docstring)."""

    feature_names: tuple[str, ...]
    missing_columns: tuple[int, ...]
    """Columns that get a missing flag, in order, after the transformed features."""
    means: np.ndarray
    scales: np.ndarray
    weights: np.ndarray
    bias: float

    def design(self, features: np.ndarray) -> np.ndarray:
        """Standardised transformed features plus missing flags."""
        raw = transform(features, self.missing_columns)
        return (raw - self.means) / self.scales

    def predict(self, features: np.ndarray) -> np.ndarray:
        """The logit of each row."""
        return self.design(features) @ self.weights + self.bias

    def contributions(self, values: np.ndarray, columns: Sequence[int]) -> np.ndarray:
        """Each row's share of the logit from the features `columns` (`values`: their raw
        values, one column each), bias excluded. The transform is per column, so `predict`
        is the bias plus the contributions of disjoint column sets covering every feature."""
        columns = list(columns)
        values = np.asarray(values, dtype=np.float64)
        logged = _logged(values)
        total = ((logged - self.means[columns]) / self.scales[columns]) @ self.weights[columns]
        for position, column in enumerate(columns):
            slot = self.flag_slots.get(column)
            if slot is not None:
                missing = np.isnan(values[:, position])
                total = (
                    total + (missing - self.means[slot]) / self.scales[slot] * self.weights[slot]
                )
        return total

    @cached_property
    def flag_slots(self) -> dict[int, int]:
        """Design column of each flagged feature column's missing flag."""
        width = len(self.feature_names)
        return {column: width + flag for flag, column in enumerate(self.missing_columns)}

    def to_json(self) -> str:
        """The ranker as a JSON document."""
        return json.dumps(
            {
                "feature_names": list(self.feature_names),
                "missing_columns": list(self.missing_columns),
                "means": self.means.tolist(),
                "scales": self.scales.tolist(),
                "weights": self.weights.tolist(),
                "bias": self.bias,
            },
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str) -> LinearRanker:
        """A ranker written by `to_json`."""
        data = json.loads(text)
        return cls(
            feature_names=tuple(data["feature_names"]),
            missing_columns=tuple(data["missing_columns"]),
            means=np.asarray(data["means"], dtype=np.float64),
            scales=np.asarray(data["scales"], dtype=np.float64),
            weights=np.asarray(data["weights"], dtype=np.float64),
            bias=float(data["bias"]),
        )


def transform(features: np.ndarray, missing_columns: Sequence[int]) -> np.ndarray:
    """sign(x)·log1p(|x|) with NaN → 0, then a 0/1 missing flag per `missing_columns`."""
    values = np.asarray(features, dtype=np.float64)
    flags = np.isnan(values[:, list(missing_columns)]).astype(np.float64)
    return np.hstack([_logged(values), flags])


def _logged(values: np.ndarray) -> np.ndarray:
    """sign(x)·log1p(|x|) of float64 `values`, NaN → 0."""
    return np.nan_to_num(np.sign(values) * np.log1p(np.abs(values)), nan=0.0)
