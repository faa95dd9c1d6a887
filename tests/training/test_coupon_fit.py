"""The batched Newton fit: each model equals its own fit and scipy's L-BFGS optimum of the same
objective, also on separable rows where plain Newton steps overshoot."""

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import expit, log_expit

from perkrank.training.coupon_fit import collapse, fit_many


def reference(design: np.ndarray, labels: np.ndarray, l2: float) -> np.ndarray:
    """[weights, bias] minimising the summed log-loss + l2·|w|²/2 (L-BFGS, tight tolerance)."""

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        logits = design @ theta[:-1] + theta[-1]
        value = -(labels * log_expit(logits) + (1 - labels) * log_expit(-logits)).sum()
        residual = expit(logits) - labels
        gradient = np.append(design.T @ residual + l2 * theta[:-1], residual.sum())
        return value + 0.5 * l2 * theta[:-1] @ theta[:-1], gradient

    start = np.zeros(design.shape[1] + 1)
    options = {"maxiter": 5000, "ftol": 1e-15, "gtol": 1e-10}
    return minimize(loss, start, jac=True, method="L-BFGS-B", options=options).x


def rows(separable: bool, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    shared, last = rng.normal(size=(300, 2)), rng.normal(size=(300, 3))
    signal = shared[:, 0] + last[:, 0]
    labels = (signal > 0.5 if separable else rng.random(300) < expit(signal - 1)).astype(float)
    return shared, last, labels


@pytest.mark.parametrize(("separable", "l2"), [(False, 1.0), (False, 100.0), (True, 0.1)])
def test_each_model_is_its_own_optimum(separable: bool, l2: float) -> None:
    shared, last, labels = rows(separable)
    together = fit_many(shared, last, (labels, np.ones(len(labels))), l2)
    assert together.shape == (3, 4)
    for model in range(3):
        design = np.column_stack([shared, last[:, model]])
        assert together[model] == pytest.approx(reference(design, labels, l2), abs=1e-4)
        alone = fit_many(shared, last[:, [model]], (labels, np.ones(len(labels))), l2)[0]
        assert together[model] == pytest.approx(alone, abs=1e-9)


def test_no_shared_columns() -> None:
    _, last, labels = rows(False)
    theta = fit_many(np.zeros((300, 0)), last, (labels, np.ones(len(labels))), 1.0)
    assert theta.shape == (3, 2)
    assert theta[0] == pytest.approx(reference(last[:, :1], labels, 1.0), abs=1e-4)


def test_collapsed_rows_fit_as_the_rows_they_stand_for() -> None:
    shared, last, labels = rows(False)
    repeated = np.vstack([np.column_stack([shared, last])] * 3)
    labels3 = np.concatenate([labels, np.zeros_like(labels), labels])
    unique, (positives, totals) = collapse(repeated, labels3)
    assert len(unique) == 300
    assert totals.tolist() == [3.0] * 300
    assert positives.sum() == 2 * labels.sum()
    merged = fit_many(unique[:, :2], unique[:, 2:], (positives, totals), 1.0)
    every = fit_many(repeated[:, :2], repeated[:, 2:], (labels3, np.ones(900)), 1.0)
    assert merged == pytest.approx(every, abs=1e-8)


@pytest.mark.parametrize(
    ("design", "labels", "unique", "positives", "totals"),
    [
        ([[1, 2], [1, 2], [0, 5]], [1, 0, 1], [[0, 5], [1, 2]], [1, 1], [1, 2]),
        ([[3, 0], [3, 0], [3, 0]], [0, 0, 1], [[3, 0]], [1], [3]),
    ],
)
def test_collapse(design, labels, unique, positives, totals) -> None:
    rows_, (found_positives, found_totals) = collapse(np.array(design, float), np.array(labels))
    assert rows_.tolist() == unique
    assert found_positives.tolist() == positives
    assert found_totals.tolist() == totals


@pytest.mark.parametrize(("separable", "l2"), [(False, 1.0), (True, 0.1)])
def test_a_warm_start_reaches_the_same_optimum(separable: bool, l2: float) -> None:
    shared, last, labels = rows(separable)
    counts = (labels, np.ones(len(labels)))
    first = fit_many(shared[:, :1], shared[:, 1:], counts, l2)[0]
    cold = fit_many(shared, last, counts, l2)
    warm = fit_many(shared, last, counts, l2, start=first)
    assert warm == pytest.approx(cold, abs=1e-9)
    assert not np.allclose(first[:-1], 0)  # the start is not the zero start
