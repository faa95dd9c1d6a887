"""Ranking metrics, candidates and relevance of a window, slices, and model evaluation."""

import math
from datetime import date

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from perkrank.features.dataset import Dataset
from perkrank.features.vocabulary import item_feature_names, item_id, member_feature_names
from perkrank.models import scoring
from perkrank.models.factors import Factors
from perkrank.training.evaluate import (
    EvaluationWindow,
    average_precision_at_k,
    catalog_coverage,
    evaluate_model,
    evaluate_models,
    hit_rate_at_k,
    ndcg_at_k,
    precision_at_k,
    prepare_window,
    recall_at_k,
    recommend,
)

START, END = date(2025, 3, 1), date(2025, 4, 1)
K_VALUES = (1, 2, 5)

# ---------------------------------------------------------------- metrics

HITS = np.array([[True, False, True, False, False]])


def test_precision_divides_hits_in_top_k_by_k():
    assert precision_at_k(HITS, 5)[0] == pytest.approx(2 / 5)
    assert precision_at_k(HITS, 2)[0] == pytest.approx(1 / 2)


def test_recall_divides_hits_in_top_k_by_all_relevant():
    assert recall_at_k(HITS, np.array([3]), 5)[0] == pytest.approx(2 / 3)
    assert recall_at_k(HITS, np.array([3]), 2)[0] == pytest.approx(1 / 3)


def test_ndcg_discounts_by_position_against_ideal_ranking():
    dcg = 1 + 1 / math.log2(4)
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(HITS, np.array([3]), 5)[0] == pytest.approx(dcg / ideal)
    assert ndcg_at_k(HITS, np.array([3]), 2)[0] == pytest.approx(1 / (1 + 1 / math.log2(3)))


def test_average_precision_sums_precision_at_relevant_positions():
    assert average_precision_at_k(HITS, np.array([3]), 5)[0] == pytest.approx((1 + 2 / 3) / 3)
    assert average_precision_at_k(HITS, np.array([3]), 2)[0] == pytest.approx(1 / 2)


def test_ndcg_and_map_normalize_by_k_when_more_offers_are_relevant_than_k():
    hits = np.array([[True, True, False]])
    assert ndcg_at_k(hits, np.array([10]), 2)[0] == pytest.approx(1.0)
    assert average_precision_at_k(hits, np.array([10]), 2)[0] == pytest.approx(1.0)
    assert recall_at_k(hits, np.array([10]), 2)[0] == pytest.approx(0.2)


def test_hit_rate_is_one_only_when_a_relevant_offer_is_in_top_k():
    hits = np.array([[False, True], [False, False]])
    assert hit_rate_at_k(hits, 2).tolist() == [1.0, 0.0]
    assert hit_rate_at_k(hits, 1).tolist() == [0.0, 0.0]


def test_metrics_count_missing_positions_as_misses_when_fewer_candidates_than_k():
    hits = np.array([[True]])
    assert precision_at_k(hits, 5)[0] == pytest.approx(1 / 5)
    assert ndcg_at_k(hits, np.array([1]), 5)[0] == pytest.approx(1.0)


def test_catalog_coverage_counts_distinct_shown_offers_over_candidates():
    top_offer_rows = np.array([[0, 1, -1], [1, 2, -1]])
    assert catalog_coverage(top_offer_rows, 2, 6) == pytest.approx(3 / 6)
    assert catalog_coverage(top_offer_rows, 1, 6) == pytest.approx(2 / 6)
    assert catalog_coverage(top_offer_rows, 3, 6) == pytest.approx(3 / 6)


# ---------------------------------------------------------------- a hand-made window
#
# Window: March 2025. P1 is a federal partner, P2 a local one in the north.
#   O1 P1 food    everywhere  base  Feb..Apr (existed before the window)
#   O2 P2 food    north only  base  March    (new)
#   O3 P1 travel  everywhere  vip   March    (new)
#   O4 P1 books   everywhere  base  Jan..mid Feb (over before the window)
#   O5 P1 books   everywhere  base  from 20 March (new)
#   O6 P1 travel  everywhere  gold  March    (new)
# m1 north/base, bought P1 food before the window (warm); in March: P1 food, P2 food,
#    P1 books on 5 March (before O5 starts), P1 travel (only vip/gold offers).
# m2 south/gold, no purchase before (cold); in March: P1 travel, P2 food (north only).
# m3 signs up in the window; m4 buys nothing in it; m5 buys on 1 April (after the window).


def make_dataset() -> Dataset:
    members = pd.DataFrame(
        {
            "member_id": ["m1", "m2", "m3", "m4", "m5"],
            "region": ["north", "south", "north", "north", "south"],
            "tier": ["base", "gold", "vip", "base", "base"],
            "birth_date": pd.to_datetime([None] * 5),
            "signup_date": pd.to_datetime(
                ["2024-01-01", "2024-01-01", "2025-03-10", "2024-01-01", "2024-01-01"]
            ),
        }
    )
    purchase_rows = [
        ("m1", "2025-02-10 12:00", "P1", "food"),
        ("m1", "2025-03-03 09:00", "P1", "food"),
        ("m1", "2025-03-04 10:00", "P2", "food"),
        ("m1", "2025-03-05 11:00", "P1", "books"),
        ("m1", "2025-03-06 11:00", "P1", "travel"),
        ("m2", "2025-03-07 08:00", "P1", "travel"),
        ("m2", "2025-03-08 08:00", "P2", "food"),
        ("m3", "2025-03-15 08:00", "P1", "food"),
        ("m4", "2025-02-01 08:00", "P1", "food"),
        ("m5", "2025-04-01 00:00", "P1", "food"),
    ]
    purchases = pd.DataFrame(purchase_rows, columns=["member_id", "ts", "partner_id", "category"])
    purchases["ts"] = pd.to_datetime(purchases["ts"])
    purchases["amount"] = 10.0
    purchases["channel"] = "store"
    partners = pd.DataFrame(
        {
            "partner_id": ["P1", "P2"],
            "name": ["Federal", "Local"],
            "scope": ["federal", "local"],
            "regions": [(), ("north",)],
            "categories": [("food", "travel", "books"), ("food",)],
        }
    )
    offer_rows = [
        ("O1", "P1", "food", "base", "2025-02-01", "2025-04-30"),
        ("O2", "P2", "food", "base", "2025-03-01", "2025-03-31"),
        ("O3", "P1", "travel", "vip", "2025-03-01", "2025-03-31"),
        ("O4", "P1", "books", "base", "2025-01-01", "2025-02-15"),
        ("O5", "P1", "books", "base", "2025-03-20", "2025-03-31"),
        ("O6", "P1", "travel", "gold", "2025-03-01", "2025-03-31"),
    ]
    offers = pd.DataFrame(
        offer_rows,
        columns=["offer_id", "partner_id", "category", "min_tier", "valid_from", "valid_to"],
    )
    offers["valid_from"] = pd.to_datetime(offers["valid_from"])
    offers["valid_to"] = pd.to_datetime(offers["valid_to"])
    offers["title"] = offers["offer_id"]
    offers["regions"] = [(), ("north",), (), (), (), ()]
    offers["budget"] = pd.array([None] * len(offers), dtype="Int64")
    offers["reward"] = "10%"
    return Dataset(members=members, purchases=purchases, partners=partners, offers=offers)


OFFER_REGIONS = [None, frozenset({"north"}), None, None, None, None]
BOUGHT_BEFORE = {"m1": frozenset({item_id("P1", "food")}), "m4": frozenset({item_id("P1", "food")})}


def make_window(dataset: Dataset | None = None, **options) -> EvaluationWindow:
    dataset = dataset if dataset is not None else make_dataset()
    scopes = dict(zip(dataset.partners["partner_id"], dataset.partners["scope"], strict=True))
    item_features = {
        item_id(partner, category): item_feature_names(partner, category, scopes[partner])
        for partner, category in zip(
            dataset.offers["partner_id"], dataset.offers["category"], strict=True
        )
    }
    member_features = {
        member: member_feature_names(region, tier)
        for member, region, tier in dataset.members[["member_id", "region", "tier"]].itertuples(
            index=False
        )
    }
    return prepare_window(
        dataset,
        START,
        END,
        member_features=member_features,
        items_bought_before=BOUGHT_BEFORE,
        offer_regions=OFFER_REGIONS,
        item_features=item_features,
        **options,
    )


@pytest.fixture(scope="module")
def window() -> EvaluationWindow:
    return make_window()


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


def test_sample_keeps_at_most_max_members_and_is_seeded():
    first = make_window(max_members=1, seed=5)
    again = make_window(max_members=1, seed=5)
    assert len(first.member_ids) == 1
    assert first.member_ids.tolist() == again.member_ids.tolist()
    assert first.relevant.shape == (1, len(first.offer_ids))


def test_window_must_end_after_it_starts():
    with pytest.raises(ValueError, match="must end after it starts"):
        prepare_window(
            make_dataset(),
            END,
            START,
            member_features={},
            items_bought_before={},
            offer_regions=OFFER_REGIONS,
            item_features={},
        )


# ---------------------------------------------------------------- models

ITEMS = [item_id("P1", "food"), item_id("P2", "food"), item_id("P1", "travel")]


def oracle(sign: float = 1.0) -> Factors:
    """Scores exactly the relevant items of m1 (P1/P2 food) and m2 (P1 travel) highest."""
    return Factors(
        member_ids=np.array(["m1", "m2"]),
        member_vectors=sign * np.array([[1.0, 0.0], [0.0, 1.0]]),
        item_ids=np.array(ITEMS),
        item_vectors=np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]),
        item_biases=np.zeros(3),
        name="oracle" if sign > 0 else "reversed",
    )


def test_oracle_scores_perfect_ndcg_on_every_slice(window):
    report = evaluate_model(window, oracle(), K_VALUES)
    for name, values in report.metrics.items():
        assert values["ndcg@5"] == pytest.approx(1.0), name
        assert values["recall@5"] == pytest.approx(1.0), name


def test_reversed_model_scores_worse_than_oracle(window):
    good = evaluate_model(window, oracle(), K_VALUES).metrics["overall"]
    bad = evaluate_model(window, oracle(-1.0), K_VALUES).metrics["overall"]
    assert bad["ndcg@2"] < good["ndcg@2"]
    assert bad["map@2"] < good["map@2"]
    assert bad["hit_rate@1"] < good["hit_rate@1"]


def test_coverage_counts_distinct_top_offers_over_candidate_offers(window):
    overall = evaluate_model(window, oracle(), K_VALUES).metrics["overall"]
    assert overall["coverage@1"] == pytest.approx(2 / 4)  # m1: O1 (tie with O2), m2: O6
    assert overall["coverage@5"] == pytest.approx(4 / 4)


def test_evaluate_models_reports_every_model_and_slice_sizes(window):
    report = evaluate_models(window, {"good": oracle(), "bad": oracle(-1.0)}, K_VALUES)
    assert list(report.models) == ["good", "bad"]
    assert report.models["good"].members["warm"] == 1
    assert report.window["members"] == 2
    assert report.to_dict()["models"]["bad"]["metrics"]["overall"]["ndcg@5"] < 1.0


def brute_force_ranking(window: EvaluationWindow, factors: Factors, k: int) -> dict[str, list[str]]:
    """Each member's ranking from per-member Factors calls, ties by offer_id."""
    expected = {}
    for group in window.groups:
        items = window.offer_items[group.offer_rows]
        names = [window.offer_item_features[o] for o in group.offer_rows]
        vectors, biases, item_rows = scoring.item_inputs(factors, items, names)
        for row in group.member_rows:
            member = str(window.member_ids[row])
            vector = scoring.member_vector(factors, member, window.member_features[row])
            repeat = scoring.repeat_scores(factors, factors.member_row(member), item_rows)
            scores = scoring.scores(vector, vectors, biases, repeat)
            order = sorted(
                range(len(items)), key=lambda i: (-scores[i], window.offer_ids[group.offer_rows[i]])
            )
            expected[member] = [str(window.offer_ids[group.offer_rows[i]]) for i in order[:k]]
    return expected


def test_batch_ranking_equals_per_member_factor_scores(window):
    rng = np.random.default_rng(11)
    member_features = ["region=south", "tier=gold"]
    item_features = ["partner=P1", "category=books", "scope=federal"]
    factors = Factors(
        member_ids=np.array(["m1", "mx"]),  # m2 is unknown: built from its features
        member_vectors=rng.normal(size=(2, 4)),
        item_ids=np.array(ITEMS),  # P1 books is unknown: built from its features
        item_vectors=rng.normal(size=(3, 4)),
        item_biases=rng.normal(size=3),
        member_feature_ids=np.array(member_features),
        member_feature_vectors=rng.normal(size=(2, 4)),
        item_feature_ids=np.array(item_features),
        item_feature_vectors=rng.normal(size=(3, 4)),
        item_feature_biases=rng.normal(size=3),
        repeat=sp.csr_matrix(np.array([[3.0, 0.0, 1.0], [0.0, 2.0, 0.0]])),
        repeat_weight=0.7,
    )
    assert recommend(window, factors, 2) == brute_force_ranking(window, factors, 2)
    assert recommend(window, factors, 5) == brute_force_ranking(window, factors, 5)
