"""Candidate generation and the two-stage frame on the hand-made March window of conftest.

Before March only P1|food sold (m4 on 1 Feb, m1 on 10 Feb), so it is the popular, regional and
new (first sold 28 days before the window) item. Evaluated: m1 (north/base: O1, O2, O5) and m2
(south/gold: O1, O5, O6). Relevant: m1 O1 and O2, m2 O6; m1 bought O1's item before.
"""

from datetime import datetime

import numpy as np
import pytest

from perkrank.features.member_features import history_at
from perkrank.features.ranker_features import FEATURE_NAMES, purchase_stats
from perkrank.training.candidates import (
    CF,
    NEW,
    OWN,
    POPULAR,
    REGIONAL,
    CandidateSizes,
    candidate_recall,
    eligibility,
    generate,
)
from perkrank.training.evaluation import rank_scores
from perkrank.training.two_stage import build_frame, own_plus_popularity

NO_EXTRAS = CandidateSizes(cf_top=0, popular_top=0, regional_top=0, new_top=0)


@pytest.fixture
def stats(hand_made_dataset):
    return purchase_stats(history_at(hand_made_dataset, datetime(2025, 3, 1)))


def rows(window, member, offer):
    return list(window.member_ids).index(member), list(window.offer_ids).index(offer)


def flags(window, sources, member):
    """{offer id: flags} of one member's candidates."""
    row = list(window.member_ids).index(member)
    return {
        str(window.offer_ids[column]): int(sources[row, column])
        for column in np.flatnonzero(sources[row])
    }


def test_own_items_are_exactly_the_items_bought_before(window, stats):
    sources = generate(window, stats, {}, NO_EXTRAS)
    assert flags(window, sources, "m1") == {"O1": OWN}
    assert flags(window, sources, "m2") == {}


def test_cf_adds_each_members_best_eligible_offers_only(window, stats):
    scores = np.zeros((len(window.member_ids), len(window.offer_ids)), dtype=np.float32)
    scores[:, list(window.offer_ids).index("O3")] = 9.0  # vip only: nobody here may get it
    scores[rows(window, "m1", "O5")] = 5.0
    scores[rows(window, "m2", "O6")] = 5.0
    sources = generate(window, stats, {"cf": scores}, CandidateSizes(1, 0, 0, 0))
    assert flags(window, sources, "m1") == {"O1": OWN, "O5": CF}
    assert flags(window, sources, "m2") == {"O6": CF}


def test_popular_regional_and_new_propose_the_only_item_sold_recently(window, stats):
    sources = generate(window, stats, {}, CandidateSizes(0, 5, 5, 5, new_days=30))
    everything = POPULAR | REGIONAL | NEW
    assert flags(window, sources, "m1") == {"O1": OWN | everything}
    assert flags(window, sources, "m2") == {"O1": everything}
    not_new = generate(window, stats, {}, CandidateSizes(0, 0, 0, 5, new_days=20))
    assert not (not_new & NEW).any()


def test_candidates_are_always_eligible(window, stats):
    scores = np.ones((len(window.member_ids), len(window.offer_ids)), dtype=np.float32)
    sources = generate(window, stats, {"cf": scores}, CandidateSizes(10, 10, 10, 10, 365))
    assert not (sources[~eligibility(window)]).any()
    assert (sources[eligibility(window)] > 0).all()


def test_candidate_recall_is_the_share_of_relevant_pairs_proposed(window, stats):
    recall = candidate_recall(window, generate(window, stats, {}, NO_EXTRAS))
    assert recall["overall"] == pytest.approx(1 / 3)
    assert recall["repeat_items"] == pytest.approx(1.0)
    assert recall["new_items"] == pytest.approx(0.0)
    assert recall["candidates_per_member"] == pytest.approx(0.5)


def test_frame_rows_carry_point_in_time_features_and_window_labels(window, stats):
    sources = generate(window, stats, {}, CandidateSizes(0, 5, 0, 0))
    frame = build_frame(window, stats, sources, {})
    pairs = {
        (str(window.member_ids[m]), str(window.offer_ids[o])): label
        for m, o, label in zip(frame.member_rows, frame.offer_rows, frame.labels, strict=True)
    }
    assert pairs == {("m1", "O1"): 1.0, ("m2", "O1"): 0.0}
    own_count = frame.features[:, FEATURE_NAMES.index("own_count")]
    assert own_count.tolist() == [1.0, 0.0]  # m1's March purchase of P1 food is a label only
    assert frame.group_sizes(len(window.member_ids)).tolist() == [1, 1]


def test_own_plus_popularity_puts_own_items_first(window, stats):
    ranking = rank_scores(window, own_plus_popularity(window, stats), 2)["all"]
    m1 = list(window.member_ids).index("m1")
    assert window.offer_ids[ranking.offer_rows[m1, 0]] == "O1"
