"""Neighbour scores of the hand-made purchases of `test_ranker_features`, by hand.

Baskets (purchase days) at the cutoff, latest first, weighted 0.9**j:
  m1: A (age 1), A (11), B (60), A (91): weights 1, 0.9, 0.81, 0.729 (sum 3.439);
      profile A = (1 + 0.9 + 0.729) / 3.439, B = 0.81 / 3.439.
  m2: A (20), A (30): profile A = 1.
Two members in the pool: each one's single neighbour is the other.
"""

import numpy as np
import pytest

from perkrank.features import member_profiles
from perkrank.features.member_profiles import basket_profiles, neighbour_scores
from tests.features.test_ranker_features import AFTER, BEFORE, A, B, C, features_of

TOTAL = 1 + 0.9 + 0.81 + 0.729


def test_a_member_scores_what_their_neighbour_buys_and_nothing_else():
    m2_b, m2_a, m1_a, m1_b, m2_c = features_of(
        BEFORE + AFTER, [("m2", B), ("m2", A), ("m1", A), ("m1", B), ("m2", C)]
    )
    assert m2_b["neighbour_score"] == pytest.approx(0.81 / TOTAL)
    assert m2_a["neighbour_score"] == pytest.approx((1 + 0.9 + 0.729) / TOTAL)
    assert m1_a["neighbour_score"] == pytest.approx(1.0)
    assert m1_b["neighbour_score"] == 0.0  # m2 never bought B
    assert m2_c["neighbour_score"] == 0.0  # an item nobody bought before the cutoff


def test_profiles_weigh_baskets_by_their_order_not_by_purchases_in_them():
    # member 0: item 0 twice on its latest day, item 1 the day before; member 1: nothing
    profiles, baskets = basket_profiles(
        np.array([0, 0, 0]), np.array([0, 0, 1]), np.array([3, 3, 4]), 2, 2
    )
    assert profiles.toarray() == pytest.approx(np.array([[1 / 1.9, 0.9 / 1.9], [0.0, 0.0]]))
    assert baskets.tolist() == [2, 0]


def test_only_the_best_neighbour_scores_are_kept(monkeypatch):
    monkeypatch.setattr(member_profiles, "NEIGHBOUR_TOP", 1)
    # members 0 and 1 share item 0; member 1 also buys items 1 (2 baskets) and 2 (1 basket)
    profiles, baskets = basket_profiles(
        np.array([0, 1, 1, 1, 1]), np.array([0, 0, 1, 1, 2]), np.array([1, 1, 1, 2, 3]), 2, 3
    )
    keys, scores = neighbour_scores(profiles, baskets)
    members, items = np.divmod(keys, 3)
    assert members.tolist() == [0, 1]
    assert items.tolist() == [1, 0]  # member 0's best: item 1 (in two of member 1's baskets)
    assert np.all(scores > 0)
