"""Candidates, relevance, member features and slices of a window (the hand-made one of
conftest: March 2025, members m1..m5, offers O1..O6)."""

from datetime import date

import pytest

from perkrank.features.vocabulary import cold_member_feature_names, member_feature_names
from perkrank.training.window import EvaluationWindow, prepare_window

START, END = date(2025, 3, 1), date(2025, 4, 1)


def candidates_of(window: EvaluationWindow) -> dict[str, list[str]]:
    return {
        str(window.member_ids[row]): [str(window.offer_ids[o]) for o in group.offer_rows]
        for group in window.groups
        for row in group.member_rows
    }


def relevant_of(window: EvaluationWindow) -> dict[str, list[str]]:
    pairs = window.relevant.tocoo()
    relevant: dict[str, list[str]] = {str(m): [] for m in window.member_ids}
    for row, column in sorted(zip(pairs.row, pairs.col, strict=True)):
        relevant[str(window.member_ids[row])].append(str(window.offer_ids[column]))
    return relevant


def test_window_keeps_only_offers_active_during_it(window):
    assert window.offer_ids.tolist() == ["O1", "O2", "O3", "O5", "O6"]
    assert window.offer_is_new.tolist() == [False, True, True, True, True]


def test_candidates_follow_region_and_tier(window):
    assert candidates_of(window) == {"m1": ["O1", "O2", "O5"], "m2": ["O1", "O5", "O6"]}


def test_relevant_offers_need_a_purchase_at_partner_in_category_while_valid(window):
    assert relevant_of(window) == {"m1": ["O1", "O2"], "m2": ["O6"]}


def test_members_need_signup_before_window_and_a_relevant_offer(window):
    assert window.member_ids.tolist() == ["m1", "m2"]


def test_warm_members_bought_before_the_window(window):
    assert window.member_is_warm.tolist() == [True, False]


def test_cold_members_are_named_from_region_tier_and_tenure_at_the_start(window):
    m2_tenure_days = (START - date(2024, 1, 1)).days
    assert window.member_features[1] == cold_member_feature_names("south", "gold", m2_tenure_days)
    assert "tenure=1-3y" in window.member_features[1]
    assert window.member_features[0] == member_feature_names("north", "base")  # given


def test_bought_before_marks_candidates_of_items_bought_before(window):
    pairs = window.bought_before.tocoo()
    bought = {
        (str(window.member_ids[r]), str(window.offer_ids[c]))
        for r, c in zip(pairs.row, pairs.col, strict=True)
    }
    assert bought == {("m1", "O1")}


def slices_of(window: EvaluationWindow) -> dict[str, tuple[list[str], int]]:
    return {
        part.name: ([str(window.member_ids[r]) for r in part.member_rows], part.candidate_offers)
        for part in window.slices
    }


def test_slices_select_members_and_candidates(window):
    assert slices_of(window) == {
        "overall": (["m1", "m2"], 4),
        "warm": (["m1"], 3),
        "cold": (["m2"], 3),
        "repeat_items": (["m1"], 1),
        "new_items": (["m1", "m2"], 4),
        "new_offers": (["m1", "m2"], 3),
        "region=north": (["m1"], 3),
        "region=south": (["m2"], 3),
    }


def test_sample_keeps_at_most_max_members_and_is_seeded(window_of):
    first = window_of(max_members=1, seed=5)
    again = window_of(max_members=1, seed=5)
    assert len(first.member_ids) == 1
    assert first.member_ids.tolist() == again.member_ids.tolist()
    assert first.relevant.shape == (1, len(first.offer_ids))


def test_window_must_end_after_it_starts(hand_made_dataset):
    with pytest.raises(ValueError, match="must end after it starts"):
        prepare_window(
            hand_made_dataset,
            END,
            START,
            member_features={},
            items_bought_before={},
            offer_regions=[None] * len(hand_made_dataset.offers),
            item_features={},
        )
