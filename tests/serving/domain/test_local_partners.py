"""The local floor's arithmetic and the orders' local tail (`serving.domain.local_partners`)."""

import numpy as np
import pytest

from perkrank.config import CapsConfig, LocalFloor
from perkrank.serving.domain.local_partners import (
    best_with_locals,
    local_slots,
    max_per_partner,
    rows_with_local_tail,
    with_local_tail,
)


@pytest.mark.parametrize(
    ("floor", "region", "limit", "slots"),
    [
        (None, "north", 10, 0),
        (LocalFloor(), "north", 10, 0),
        (LocalFloor(default=0.3), "north", 10, 3),  # 0.3 × 10 is 3.0000000000000004
        (LocalFloor(default=0.25), "north", 10, 3),  # rounded up: at least the share
        (LocalFloor(default=0.2), "north", 3, 1),
        (LocalFloor(default=1.0), "north", 4, 4),
        (LocalFloor(default=0.2, regions={"north": 0.5}), "north", 10, 5),
        (LocalFloor(default=0.2, regions={"north": 0.5}), "south", 10, 2),
        (LocalFloor(regions={"north": 0.5}), "south", 10, 0),
    ],
)
def test_local_slots(floor, region, limit, slots):
    assert local_slots(CapsConfig(local_floor=floor), region, limit) == slots


def test_the_caps_per_partner_limit_wins_over_serve_yaml():
    assert max_per_partner(CapsConfig(), 2) == 2
    assert max_per_partner(CapsConfig(max_per_partner=1), 2) == 1


def test_best_with_locals_appends_the_best_locals_outside_the_top():
    scores = np.array([0.9, 0.1, 0.8, 0.3, 0.5, 0.2])
    local = np.array([False, True, True, True, False, True])

    assert best_with_locals(scores, 2, None, 2).tolist() == [0, 2]
    assert best_with_locals(scores, 2, local, 0).tolist() == [0, 2]
    assert best_with_locals(scores, 2, local, 2).tolist() == [0, 2, 3, 5]
    assert best_with_locals(scores, 2, local, 9).tolist() == [0, 2, 3, 5, 1]
    assert best_with_locals(scores, 6, local, 3).tolist() == [0, 2, 4, 3, 5, 1]


@pytest.mark.parametrize(("pool", "tail"), [(2, 0), (2, 1), (2, 5), (6, 3), (0, 2)])
def test_both_local_tails_agree(pool, tail):
    rows = [4, 0, 3, 1, 5, 2]
    local = np.array([False, True, False, True, True, False])

    expected = with_local_tail(rows, pool, tail, lambda row: bool(local[row]))

    assert rows_with_local_tail(rows, pool, tail, local) == expected
    assert expected[:pool] == rows[:pool]
    assert all(local[row] for row in expected[pool:]) and len(expected) <= pool + tail
