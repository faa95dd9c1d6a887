"""Second-stage rankers over (member, candidate) feature rows, saved without pickles.

    lambdarank: a LightGBM booster with objective `lambdarank` (one query per member, rows
                of a query contiguous); saved as LightGBM's own text model
                (`Booster.model_to_string`), loaded with `lightgbm.Booster(model_str=...)`.
    linear:     L2-regularised logistic regression (scipy L-BFGS) on transformed features:
                sign(x)·log1p(|x|), NaN → 0 plus a missing flag per column that had NaNs in
                training, standardised; saved as JSON (names, means, scales, weights).
Both score a row by a real number; higher ranks first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_expit

from perkrank.models.linear_ranker import LinearRanker, transform

LAMBDARANK_PARAMS: dict[str, Any] = {
    "objective": "lambdarank",
    "metric": "ndcg",
    "eval_at": [10],
    "lambdarank_truncation_level": 20,
    "learning_rate": 0.05,
    "num_leaves": 7,
    "min_data_in_leaf": 1000,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "num_threads": 1,
    "deterministic": True,
    "force_row_wise": True,
    "verbosity": -1,
}
"""LightGBM parameters of the lambdarank ranker (`seed` is added by `fit_lambdarank`)."""
MAX_ROUNDS = 600
EARLY_STOPPING_ROUNDS = 50
HOLDOUT_SHARE = 0.2
"""Share of the training queries held out to choose the number of rounds."""


def fit_lambdarank(
    features: np.ndarray,
    labels: np.ndarray,
    group_sizes: Sequence[int],
    feature_names: Sequence[str],
    *,
    rounds: int,
    seed: int = 0,
    params: Mapping[str, Any] | None = None,
) -> lightgbm.Booster:
    """A lambdarank booster; `group_sizes` are the row counts of consecutive queries."""
    settings = {**LAMBDARANK_PARAMS, **(params or {}), "seed": seed}
    data = lightgbm.Dataset(
        features,
        label=np.asarray(labels, dtype=np.float64),
        group=np.asarray(group_sizes, dtype=np.int64),
        feature_name=list(feature_names),
        free_raw_data=True,
    )
    return lightgbm.train(settings, data, num_boost_round=rounds)


def choose_rounds(
    features: np.ndarray,
    labels: np.ndarray,
    query_ids: np.ndarray,
    feature_names: Sequence[str],
    *,
    seed: int = 0,
) -> int:
    """Boosting rounds that maximise NDCG@10 on a seeded `HOLDOUT_SHARE` of the queries
    (`query_ids`: one id per row, rows of a query contiguous), early-stopped."""
    queries = np.unique(query_ids)
    rng = np.random.default_rng(seed)
    held = np.isin(query_ids, rng.choice(queries, int(len(queries) * HOLDOUT_SHARE), replace=False))
    settings = {**LAMBDARANK_PARAMS, "seed": seed}

    def dataset(rows: np.ndarray, **options: Any) -> lightgbm.Dataset:
        _, sizes = np.unique(query_ids[rows], return_counts=True)
        return lightgbm.Dataset(
            features[rows],
            label=labels[rows],
            group=sizes,
            feature_name=list(feature_names),
            **options,
        )

    train = dataset(~held)
    booster = lightgbm.train(
        settings,
        train,
        num_boost_round=MAX_ROUNDS,
        valid_sets=[dataset(held, reference=train)],
        callbacks=[lightgbm.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False)],
    )
    return max(int(booster.best_iteration), 1)


def save_booster(booster: lightgbm.Booster, path: Path) -> Path:
    """Write the booster as LightGBM's text model."""
    path.write_text(booster.model_to_string())
    return path


def load_booster(path: Path) -> lightgbm.Booster:
    """A booster written by `save_booster`."""
    return lightgbm.Booster(model_str=path.read_text())


def fit_linear(
    features: np.ndarray,
    labels: np.ndarray,
    feature_names: Sequence[str],
    *,
    l2: float = 1.0,
    weights: np.ndarray | None = None,
) -> LinearRanker:
    """Logistic regression with penalty `l2`·|w|²/2 on the mean log-loss × rows; `weights`:
    one per row (default 1), scaling each row's log-loss."""
    missing = tuple(int(c) for c in np.flatnonzero(np.isnan(features).any(axis=0)))
    design, means, scales = standardised(transform(features, missing))
    y = np.asarray(labels, dtype=np.float64)
    w = None if weights is None else np.asarray(weights, dtype=np.float64)

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        logits = design @ theta[:-1] + theta[-1]
        terms = y * log_expit(logits) + (1 - y) * log_expit(-logits)
        residual = expit(logits) - y
        if w is not None:  # unweighted fits skip the two products
            terms, residual = w * terms, w * residual
        value = -terms.sum()
        gradient = np.append(design.T @ residual + l2 * theta[:-1], residual.sum())
        return value + 0.5 * l2 * theta[:-1] @ theta[:-1], gradient

    start = np.zeros(design.shape[1] + 1)
    theta = minimize(loss, start, jac=True, method="L-BFGS-B", options={"maxiter": 500}).x
    return LinearRanker(tuple(feature_names), missing, means, scales, theta[:-1], float(theta[-1]))


def standardised(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`raw` minus its column means over its column scales (a constant column's scale: 1),
    and the means and scales."""
    means = raw.mean(axis=0)
    scales = raw.std(axis=0)
    scales[scales == 0] = 1.0
    return (raw - means) / scales, means, scales
