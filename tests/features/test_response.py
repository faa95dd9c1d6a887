"""The response model: its formula by table, and the hidden world it rebuilds from generate's
arguments."""

import math
from datetime import date

import numpy as np
import pytest

from perkrank.features.synthetic import generate
from perkrank.features.synthetic.response import (
    CLICK_BASE,
    EXAMINE,
    REDEEM_BASE,
    TASTE_WEIGHT,
    VISITS,
    ResponseModel,
)
from perkrank.features.synthetic.world import GENERATOR_FILE, world_of


def sigmoid(value: float) -> float:
    return 1 / (1 + math.exp(-value))


def model() -> ResponseModel:
    """Member `m` with taste (1, 0, …) in 8 dimensions; offers with known factors and rewards."""
    taste = np.zeros(8)
    taste[0] = 1.0
    factors = {"plain": np.zeros(8), "liked": np.eye(8)[0] * math.sqrt(8) * 2.0}
    return ResponseModel(
        member_rows={"m": 0},
        tastes=taste[None, :],
        offer_factors=factors | {"rewarded": np.zeros(8)},
        offer_reward_effect={"plain": 0.0, "liked": 0.0, "rewarded": 0.4},
        visit_probability=np.array([0.2]),
        catalog_date=date(2025, 4, 8),
    )


@pytest.mark.parametrize(
    ("offers", "affinity", "reward", "position"),
    [
        (["plain"], 0.0, 0.0, 1),
        (["liked"], 2.0, 0.0, 1),
        (["rewarded"], 0.0, 0.4, 1),
        (["plain", "plain", "liked"], 2.0, 0.0, 3),
        (["plain", "rewarded"], 0.0, 0.4, 2),
    ],
)
def test_probabilities_follow_the_documented_formula(offers, affinity, reward, position):
    click, redeem = model().probabilities("m", offers)

    expected_click = EXAMINE ** (position - 1) * sigmoid(
        CLICK_BASE + TASTE_WEIGHT * affinity + reward
    )
    assert click[-1] == pytest.approx(expected_click)
    assert redeem[-1] == pytest.approx(sigmoid(REDEEM_BASE + TASTE_WEIGHT * affinity))


def test_expected_redemptions_sum_click_times_redeem_and_fall_with_position():
    response = model()
    click, redeem = response.probabilities("m", ["liked", "plain"])

    assert response.expected_redemptions("m", ["liked", "plain"]) == pytest.approx(
        float(click @ redeem)
    )
    assert response.expected_redemptions("m", ["liked", "plain"]) > response.expected_redemptions(
        "m", ["plain", "liked"]
    )
    assert response.expected_redemptions("m", []) == 0.0


def test_load_rebuilds_the_planted_world_of_generate(tmp_path):
    generate(tmp_path / "data", members=300, months=2, seed=4, start=date(2025, 1, 1))
    response = ResponseModel.load(tmp_path / "data")
    _, members, served_month = world_of(tmp_path / "data")

    assert served_month == date(2025, 3, 1)
    assert response.catalog_date == date(2025, 3, 8)
    assert list(response.member_rows) == members.member_ids
    np.testing.assert_array_equal(response.tastes, members.tastes)
    assert len(response.offer_factors) == len(response.offer_reward_effect) > 0
    assert (
        (response.visit_probability >= VISITS[0]) & (response.visit_probability <= VISITS[1])
    ).all()
    # a different seed plants other tastes
    generate(tmp_path / "other", members=300, months=2, seed=5, start=date(2025, 1, 1))
    assert not np.allclose(ResponseModel.load(tmp_path / "other").tastes, response.tastes)


def test_load_without_generator_arguments_names_the_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=GENERATOR_FILE):
        ResponseModel.load(tmp_path)
