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
    logged = np.nan_to_num(np.sign(values) * np.log1p(np.abs(values)), nan=0.0)
    flags = np.isnan(values[:, list(missing_columns)]).astype(np.float64)
    return np.hstack([logged, flags])
