"""The value-aware ranking formula, calibration and the bundle's calibration file."""

import json

import numpy as np
import pytest

from perkrank.models import value
from perkrank.models.bundle import CALIBRATION_FILE, Bundle
from perkrank.models.factors import Factors


@pytest.mark.parametrize(
    ("scores", "calibration", "adjustments", "expected"),
    [
        ([1.0, 0.3, 0.0], value.IDENTITY, None, [1.0, 0.3, 0.0]),
        ([1.0, 0.3, 0.0], value.Calibration(2.0, -1.0), None, [1.0, -0.4, -1.0]),
        ([1.0, 0.3, 0.0], value.IDENTITY, [-0.5, 0.0, 1.0], [0.5, 0.3, 1.0]),
        ([1.0, 0.3, 0.0], value.Calibration(2.0, -1.0), [-0.5, 0.0, 1.0], [0.5, -0.4, 0.0]),
        ([[1.0, 0.0], [0.0, 1.0]], value.IDENTITY, [0.25, -0.25], [[1.25, -0.25], [0.25, 0.75]]),
    ],
)
def test_final_scores_add_value_and_levers_to_the_calibrated_log_odds(
    scores, calibration, adjustments, expected
):
    scores = np.array(scores, dtype=np.float32)
    adjustments = None if adjustments is None else np.array(adjustments)

    result = value.final_scores(scores, calibration, adjustments)

    assert result.dtype == np.float32
    np.testing.assert_allclose(result, np.array(expected), rtol=1e-6)


def test_identity_without_adjustments_leaves_the_scores_untouched():
    scores = np.array([0.1, 0.2], dtype=np.float32)

    assert value.final_scores(scores, value.IDENTITY, None) is scores


@pytest.mark.parametrize(
    ("net", "weight", "scale", "expected"),
    [
        ([10.0, -5.0, 0.0], 1.0, None, [1.0, -0.5, 0.0]),
        ([10.0, -5.0, 0.0], 2.0, None, [2.0, -1.0, 0.0]),
        ([10.0, -5.0, 0.0], 0.0, None, [0.0, 0.0, 0.0]),
        ([0.0, 0.0], 1.0, None, [0.0, 0.0]),
        ([10.0, -5.0], 1.0, 20.0, [0.5, -0.25]),
        ([], 1.0, None, []),
    ],
)
def test_value_terms_scale_net_values_by_the_largest_one(net, weight, scale, expected):
    assert value.value_terms(np.array(net), weight, scale).tolist() == pytest.approx(expected)


def test_net_value_is_funding_minus_cost_with_missing_as_zero():
    cost = np.array([5.0, np.nan, 2.0])
    funding = np.array([0.0, 3.0, np.nan])

    assert value.net_values(cost, funding).tolist() == [-5.0, 3.0, -2.0]


def test_expected_value_is_probability_times_net_value():
    assert value.expected_values([0.5, 0.1], [4.0, -10.0]).tolist() == [2.0, -1.0]


def test_calibration_is_strictly_increasing_so_it_never_reorders():
    calibration = value.Calibration(0.7, -3.0)
    scores = np.linspace(-50, 50, 1001)

    probabilities = calibration.probabilities(scores)

    assert np.all(np.diff(calibration.log_odds(scores)) > 0)
    assert np.all(np.diff(probabilities) >= 0)
    assert np.all((probabilities >= 0) & (probabilities <= 1))


def test_platt_fit_recovers_the_scaling_that_made_the_outcomes():
    rng = np.random.default_rng(3)
    scores = rng.normal(0.0, 2.0, 200_000)
    outcomes = rng.random(len(scores)) < value.sigmoid(0.8 * scores - 2.5)

    fitted = value.fit_platt(scores, outcomes)

    assert fitted.slope == pytest.approx(0.8, abs=0.02)
    assert fitted.intercept == pytest.approx(-2.5, abs=0.03)


def test_platt_fit_converges_on_heavy_tailed_scores_where_plain_newton_steps_diverge():
    rng = np.random.default_rng(0)
    count = 100_000  # like a blend's: most scores near 0, a few repeat-boosted up to 60
    scores = np.where(
        rng.random(count) < 0.97, rng.normal(1.5, 1.5, count), rng.uniform(15, 60, count)
    )
    outcomes = rng.random(count) < value.sigmoid(0.18 * scores - 4.1)

    fitted = value.fit_platt(scores, outcomes)

    assert fitted.slope == pytest.approx(0.18, abs=0.01)
    assert fitted.intercept == pytest.approx(-4.1, abs=0.1)
    assert fitted.probabilities(scores).sum() == pytest.approx(outcomes.sum(), rel=1e-6)


def test_platt_fit_keeps_the_order_even_when_scores_predict_backwards():
    scores = np.array([0.0, 1.0, 2.0, 3.0])
    outcomes = np.array([1, 1, 0, 0])

    fitted = value.fit_platt(scores, outcomes)

    assert fitted.slope > 0
    assert np.all(np.diff(fitted.log_odds(scores)) > 0)


@pytest.mark.parametrize(
    ("scores", "outcomes"), [([], []), ([1.0, 2.0], [0, 0]), ([1.0, 2.0], [1, 1]), ([1.0], [0, 1])]
)
def test_platt_fit_refuses_what_it_cannot_fit(scores, outcomes):
    with pytest.raises(ValueError):
        value.fit_platt(np.array(scores), np.array(outcomes))


@pytest.mark.parametrize(("slope", "intercept"), [(0.0, 0.0), (-1.0, 0.0), (np.nan, 0.0)])
def test_a_calibration_that_would_reorder_or_is_not_a_number_is_refused(slope, intercept):
    with pytest.raises(ValueError, match="slope > 0"):
        value.Calibration(slope, intercept)


def factors() -> Factors:
    return Factors(
        member_ids=["m"],
        member_vectors=[[1.0]],
        item_ids=["P1|Beauty"],
        item_vectors=[[1.0]],
        item_biases=[0.0],
        member_feature_ids=["tier=base"],
        member_feature_vectors=[[1.0]],
    )


def test_a_bundle_keeps_its_calibration_as_json(tmp_path):
    bundle = Bundle(factors(), factors(), calibration=value.Calibration(0.5, -2.0))

    loaded = Bundle.load(bundle.save(tmp_path / "bundle"))

    stored = json.loads((tmp_path / "bundle" / CALIBRATION_FILE).read_text())
    assert stored == {"method": "platt", "slope": 0.5, "intercept": -2.0}
    assert loaded.calibration == value.Calibration(0.5, -2.0)


def test_a_bundle_without_calibration_loads_with_the_identity(tmp_path):
    directory = Bundle(factors(), factors()).save(tmp_path / "bundle")

    assert not (directory / CALIBRATION_FILE).exists()
    assert Bundle.load(directory).calibration == value.IDENTITY


def test_a_broken_calibration_file_is_named(tmp_path):
    directory = Bundle(factors(), factors()).save(tmp_path / "bundle")
    (directory / CALIBRATION_FILE).write_text('{"method": "isotonic"}')

    with pytest.raises(ValueError, match=CALIBRATION_FILE):
        Bundle.load(directory)
