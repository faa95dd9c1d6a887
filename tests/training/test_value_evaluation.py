"""Calibration on a window, value per list and the λ trade-off curve, on a generated program
ranked by its regional popularity (any factors will do)."""

from datetime import date, datetime, timedelta

import numpy as np
import pytest

from perkrank.config import InteractionConfig
from perkrank.features.interactions import cutoff_features
from perkrank.features.loader import load_dataset
from perkrank.features.offer_features import item_feature_table, offer_regions
from perkrank.features.synthetic import generate
from perkrank.models import value
from perkrank.models.popularity import fit_popularity
from perkrank.training.evaluation import model_inputs, rank_window
from perkrank.training.metrics import ndcg_at_k
from perkrank.training.value_evaluation import (
    fit_window_calibration,
    list_values,
    offer_net_values,
    value_tradeoff,
)
from perkrank.training.window import prepare_window

START = date(2025, 4, 1)
K = 10


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    directory = tmp_path_factory.mktemp("value") / "data"
    generate(directory, members=1500, months=5, seed=4, start=date(2025, 1, 1))
    dataset = load_dataset(directory)
    features = cutoff_features(
        dataset, datetime.combine(START, datetime.min.time()), InteractionConfig()
    )
    window = prepare_window(
        dataset,
        START,
        START + timedelta(days=30),
        member_features=features.member_features,
        items_bought_before=features.items_bought_before,
        offer_regions=offer_regions(dataset),
        item_features=item_feature_table(dataset),
    )
    return dataset, window, fit_popularity(features.data)


def test_calibration_on_a_window_predicts_as_many_redemptions_as_there_were(world):
    _, window, factors = world
    member_vectors, offers, _ = model_inputs(window, factors)
    scores = np.concatenate(
        [
            (member_vectors[g.member_rows] @ offers.vectors[g.offer_rows].T).ravel()
            + np.tile(offers.biases[g.offer_rows], len(g.member_rows))
            for g in window.groups
        ]
    )
    redeemed = window.relevant.nnz

    calibration = fit_window_calibration(window, factors, seed=1, most=len(scores))

    assert calibration.slope > 0
    # a logistic fit with an intercept predicts, in sum, the outcomes it was fitted on
    assert calibration.probabilities(scores).sum() == pytest.approx(redeemed, rel=1e-3)


def test_value_per_list_counts_redeemed_net_value_and_expected_value(world):
    dataset, window, factors = world
    net = offer_net_values(dataset.offers, window.offer_ids.tolist())
    ranking = rank_window(window, factors, K, restrictions=("all",))["all"]
    members = next(part for part in window.slices if part.name == "overall").member_rows

    values = list_values(window, factors, ranking, value.Calibration(1.0, -3.0), net, K)

    top = ranking.offer_rows[members]
    realized = np.where(ranking.hits[members], net[np.maximum(top, 0)], 0.0).sum(axis=1)
    assert values["value@10"] == pytest.approx(realized.mean())
    assert values["expected_value@10"] != 0


def test_the_trade_off_curve_buys_expected_value_with_relevance(world):
    dataset, window, factors = world
    calibration = fit_window_calibration(window, factors, seed=1)
    net = offer_net_values(dataset.offers, window.offer_ids.tolist())
    scale = value.value_scale(offer_net_values(dataset.offers))

    pure, heavy = value_tradeoff(window, factors, calibration, net, scale, K, (0.0, 8.0))

    plain = rank_window(window, factors, K, restrictions=("all",))["all"]
    members = next(part for part in window.slices if part.name == "overall").member_rows
    plain_ndcg = ndcg_at_k(plain.hits[members], plain.relevant_counts[members], K).mean()
    assert pure["ndcg@10"] == pytest.approx(plain_ndcg)  # calibration alone never reorders
    assert heavy["expected_value@10"] > pure["expected_value@10"]
    assert heavy["ndcg@10"] < pure["ndcg@10"]
