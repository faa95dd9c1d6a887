"""Regional popularity: segments rank by their purchases, small or unknown ones borrow."""

import numpy as np
import scipy.sparse as sp

from perkrank.features.training_data import TrainingData
from perkrank.features.vocabulary import member_feature_names, segment_id
from perkrank.models.popularity import fit_global_popularity, fit_popularity
from perkrank.models.scoring import known_scores

ITEMS = ["A", "B", "C", "D"]


def regional_data() -> TrainingData:
    """north|gold buys A (50), north|base buys B once, south|gold buys C (100); D: never."""
    members = [(f"n{k}", "north", "gold", {"A": 10.0}) for k in range(5)]
    members += [("nb", "north", "base", {"B": 1.0})]
    members += [(f"s{k}", "south", "gold", {"C": 10.0}) for k in range(10)]
    counts = sp.lil_matrix((len(members), len(ITEMS)), dtype=np.float32)
    for row, (_, _, _, bought) in enumerate(members):
        for item, count in bought.items():
            counts[row, ITEMS.index(item)] = count
    counts = counts.tocsr()
    return TrainingData(
        member_ids=np.array([member[0] for member in members]),
        item_ids=np.array(ITEMS),
        user_items=counts,
        purchase_counts=counts,
        purchase_totals=counts,
        member_features=[member_feature_names(m[1], m[2]) for m in members],
        item_features=[[f"partner={item}"] for item in ITEMS],
        member_segments=np.array([segment_id(m[1], m[2]) for m in members]),
    )


def ranking(scores: np.ndarray) -> list[str]:
    return [ITEMS[row] for row in np.argsort(-scores, kind="stable")]


def cold_scores(factors, region: str, tier: str, score) -> np.ndarray:
    features = member_feature_names(region, tier)
    return score(factors, None, features, ITEMS, [[] for _ in ITEMS])


def test_members_of_a_large_segment_rank_its_purchases_first():
    factors = fit_popularity(regional_data())
    scores = known_scores(factors, np.array([factors.member_row("s0")]), np.arange(len(ITEMS)))[0]
    assert ranking(scores)[0] == "C"


def test_a_small_segment_ranks_like_its_region():
    factors = fit_popularity(regional_data())
    scores = known_scores(factors, np.array([factors.member_row("nb")]), np.arange(len(ITEMS)))[0]
    assert ranking(scores)[0] == "A"


def test_every_segments_scores_sum_to_one_over_items():
    factors = fit_popularity(regional_data())
    totals = known_scores(factors, np.arange(len(factors.member_ids)), np.arange(len(ITEMS))).sum(1)
    np.testing.assert_allclose(totals, 1.0, rtol=1e-5)


def test_cold_member_of_a_known_segment_scores_as_its_members(score):
    factors = fit_popularity(regional_data())
    known = known_scores(factors, np.array([factors.member_row("n0")]), np.arange(len(ITEMS)))[0]
    np.testing.assert_allclose(cold_scores(factors, "north", "gold", score), known, rtol=1e-6)


def test_cold_member_of_a_new_tier_gets_its_regions_ranking_and_of_a_new_region_the_global(
    score,
):
    factors = fit_popularity(regional_data())
    # north: A 50, B 1 purchases (C only through the global prior); overall C leads with 100.
    assert ranking(cold_scores(factors, "north", "vip", score)) == ["A", "C", "B", "D"]
    assert ranking(cold_scores(factors, "east", "silver", score)) == ["C", "A", "B", "D"]


def test_an_item_nobody_bought_scores_zero_everywhere():
    factors = fit_popularity(regional_data())
    scores = known_scores(factors, np.arange(len(factors.member_ids)), np.array([ITEMS.index("D")]))
    np.testing.assert_array_equal(scores, 0.0)


def test_global_popularity_ranks_every_member_by_overall_purchases(score):
    factors = fit_global_popularity(regional_data())
    for member_id in ("n0", "s3", "never-seen"):
        scores = score(factors, member_id, [], ITEMS, [[] for _ in ITEMS])
        assert ranking(scores) == ["C", "A", "B", "D"]
    assert np.isclose(factors.item_biases.sum(), 1.0)
