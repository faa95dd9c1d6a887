"""The coupon rankers' logistic fit, batched: many models that share their first columns and
differ in one last column (a forward-selection step's candidates) fitted at once by damped
Newton steps, every model's logits, gradients and Hessians from matrix products over all
models together. The served ranker is the one-model case of the same function, so the
cross-validation scores exactly what is served.

Objective per model (as `models.ranker.fit_linear`'s): the summed log-loss of
sigmoid(design · w + b) plus `l2`·|w|²/2 (the bias unpenalised), from w = 0, b = 0. Identical
rows are fitted once, weighted (`collapse`: most coupons of a campaign have no purchases of the
household, so their rows repeat across households); the objective is the same. A Newton
step that raises a model's objective (beyond rounding) is halved until it does not.
"""

from __future__ import annotations

import numpy as np
from scipy.special import log_expit

Counts = tuple[np.ndarray, np.ndarray]
"""Per row: positive labels and the rows it stands for."""
MAX_STEPS = 100
MAX_HALVINGS = 40
TOLERANCE = 1e-9
"""A model stops when its largest Newton step is below this."""
SLACK = 1e-12
"""Relative rise of the objective a step may bring (rounding near the optimum)."""


def collapse(design: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, Counts]:
    """The distinct rows of `design`, and per distinct row its positive labels and its rows."""
    unique, inverse, rows = np.unique(design, axis=0, return_inverse=True, return_counts=True)
    positives = np.bincount(inverse.ravel(), np.asarray(labels, np.float64), len(unique))
    return unique, (positives, rows.astype(np.float64))


def fit_many(
    shared: np.ndarray,
    last: np.ndarray,
    counts: Counts,
    l2: float,
    start: np.ndarray | None = None,
) -> np.ndarray:
    """Per column j of `last` (rows × models): [weights, bias] (models × (shared columns + 2))
    of the logistic regression on [`shared`, `last[:, j]`] (the weight before the bias is
    column j's); `counts`: each row's positive labels and rows it stands for (`collapse`).
    `start`: [weights, bias] of the model on `shared` alone, where every model starts (its last
    weight 0) instead of 0 (the objective is strictly convex: the same optimum, fewer steps)."""
    positives, totals = counts
    models, width = last.shape[1], shared.shape[1] + 2
    penalty = np.full(width, float(l2))
    penalty[-1] = 0.0
    outer = (shared[:, :, None] * shared[:, None, :]).reshape(len(shared), -1)
    theta = np.zeros((models, width))
    logits = np.zeros(last.shape)
    if start is not None:
        theta[:, :-2], theta[:, -1] = start[:-1], start[-1]
        logits += (shared @ start[:-1] + start[-1])[:, None]
    loss, logged = _objective(logits, theta, counts, penalty)
    active = np.arange(models)
    for _ in range(MAX_STEPS):
        if not len(active):
            break
        column = last[:, active]
        probabilities = np.exp(logged[:, active])
        weights = totals[:, None] * probabilities * (1 - probabilities)
        residual = totals[:, None] * probabilities - positives[:, None]
        gradient = np.column_stack(
            [residual.T @ shared, (residual * column).sum(axis=0), residual.sum(axis=0)]
        ) + penalty * theta[active]  # fmt: skip
        step = np.linalg.solve(
            _hessian(shared, outer, column, weights, penalty), gradient[:, :, None]
        )[:, :, 0]
        scale = np.ones(len(active))
        trial = theta[active] - step
        trial_logits = shared @ trial[:, :-2].T + column * trial[:, -2] + trial[:, -1]
        value, trial_logged = _objective(trial_logits, trial, counts, penalty)
        for _ in range(MAX_HALVINGS - 1):  # halve the steps that raised the objective
            worse = value > loss[active] * (1 + SLACK)
            if not worse.any():
                break
            scale[worse] /= 2
            redo = np.flatnonzero(worse)
            trial[redo] = theta[active[redo]] - scale[redo, None] * step[redo]
            trial_logits[:, redo] = (shared @ trial[redo, :-2].T + column[:, redo] * trial[redo, -2]
                                     + trial[redo, -1])  # fmt: skip
            value[redo], trial_logged[:, redo] = _objective(
                trial_logits[:, redo], trial[redo], counts, penalty
            )
        worse = value > loss[active] * (1 + SLACK)
        better = ~worse
        moved = active[better]
        theta[moved], loss[moved] = trial[better], value[better]
        logits[:, moved], logged[:, moved] = trial_logits[:, better], trial_logged[:, better]
        done = worse | (np.abs(scale[:, None] * step).max(axis=1) < TOLERANCE)
        active = active[~done]
    return theta


def _hessian(
    shared: np.ndarray,
    outer: np.ndarray,
    column: np.ndarray,
    weights: np.ndarray,
    penalty: np.ndarray,
) -> np.ndarray:
    """Per model (columns of `column` and `weights`): the objective's Hessian over [shared
    weights, its last weight, bias]; `outer`: each row's shared × shared products."""
    models, width = column.shape[1], shared.shape[1] + 2
    hessian = np.empty((models, width, width))
    hessian[:, :-2, :-2] = (weights.T @ outer).reshape(models, width - 2, width - 2)
    weighted = weights * column
    by_last = weighted.T @ shared
    by_bias = weights.T @ shared
    hessian[:, :-2, -2], hessian[:, -2, :-2] = by_last, by_last
    hessian[:, :-2, -1], hessian[:, -1, :-2] = by_bias, by_bias
    hessian[:, -2, -2] = (weighted * column).sum(axis=0)
    hessian[:, -2, -1] = hessian[:, -1, -2] = weighted.sum(axis=0)
    hessian[:, -1, -1] = weights.sum(axis=0)
    return hessian + np.diag(penalty)


def _objective(
    logits: np.ndarray, theta: np.ndarray, counts: Counts, penalty: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per model (columns of `logits`): summed log-loss plus the penalty; and log σ(logits)."""
    positives, totals = counts
    logged = log_expit(logits)
    log_loss = (totals - positives)[:, None] * logits - totals[:, None] * logged
    return log_loss.sum(axis=0) + 0.5 * (penalty * theta**2).sum(axis=1), logged
