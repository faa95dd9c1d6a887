"""Every model, one contract: it learns the checkerboard, is reproducible and survives saving."""

from collections.abc import Callable
from functools import partial

import numpy as np
import pytest

from perkrank.config import AlsConfig, BprConfig, LightFMConfig
from perkrank.features.training_data import TrainingData
from perkrank.models.als import fit_als
from perkrank.models.bpr import fit_bpr
from perkrank.models.factors import Factors
from perkrank.models.hybrid import fit_lightfm
from perkrank.models.own_pop import fit_own_pop
from perkrank.models.popularity import fit_popularity
from perkrank.models.repeat import fit_repeat
from perkrank.models.scoring import known_scores


def fit_popularity_model(data: TrainingData, *, seed: int, threads: int) -> Factors:
    return fit_popularity(data)


def fit_repeat_model(data: TrainingData, *, seed: int, threads: int) -> Factors:
    return fit_repeat(data)


def fit_own_pop_model(data: TrainingData, *, seed: int, threads: int) -> Factors:
    return fit_own_pop(data)


FITS: dict[str, Callable[..., Factors]] = {
    "als": partial(fit_als, config=AlsConfig(factors=4, regularization=1.0, iterations=15)),
    "bpr": partial(fit_bpr, config=BprConfig(factors=4, learning_rate=0.05, iterations=100)),
    "lightfm": partial(fit_lightfm, config=LightFMConfig(no_components=4, epochs=30)),
    "popularity": fit_popularity_model,
    "repeat": fit_repeat_model,
    "own_pop": fit_own_pop_model,
}
LEARNING_MODELS = ["als", "bpr", "lightfm", "popularity"]
"""Models that rank items a member never bought (repeat only ranks what they did buy)."""
FEATURE_MODELS = ["lightfm", "popularity"]
"""Models that score members they never saw from their features."""


def all_arrays(factors: Factors) -> dict[str, np.ndarray]:
    arrays = {
        name: getattr(factors, name)
        for name in (
            "member_ids",
            "member_vectors",
            "item_ids",
            "item_vectors",
            "item_biases",
            "member_feature_ids",
            "member_feature_vectors",
            "item_feature_ids",
            "item_feature_vectors",
            "item_feature_biases",
        )
    }
    if factors.repeat is not None:
        arrays["repeat"] = factors.repeat.toarray()
    return arrays


@pytest.mark.parametrize("model", LEARNING_MODELS)
def test_held_out_item_of_own_group_ranks_above_every_item_of_other_group(model, checkerboard):
    factors = FITS[model](checkerboard.data, seed=7, threads=2)
    for member_id, held_out in checkerboard.held_out.items():
        other_group = 1 - checkerboard.member_group[member_id]
        item_rows = [
            factors.item_row(item) for item in [held_out, *checkerboard.group_items[other_group]]
        ]
        scores = known_scores(
            factors, np.array([factors.member_row(member_id)]), np.array(item_rows)
        )[0]
        assert scores[0] > scores[1:].max(), member_id


def test_repeat_ranks_a_members_own_purchases_above_everything_else(checkerboard):
    factors = FITS["repeat"](checkerboard.data, seed=7, threads=2)
    bought = checkerboard.data.purchase_counts.toarray() > 0
    scores = known_scores(
        factors, np.arange(len(factors.member_ids)), np.arange(len(factors.item_ids))
    )
    for row in range(len(factors.member_ids)):
        assert scores[row, bought[row]].min() > scores[row, ~bought[row]].max()


@pytest.mark.parametrize("model", list(FITS))
def test_fit_with_the_same_seed_gives_the_same_factors(model, checkerboard):
    # One thread: BPR's and LightFM's parallel updates race (Hogwild), so only a single
    # thread makes them reproducible.
    first = all_arrays(FITS[model](checkerboard.data, seed=11, threads=1))
    second = all_arrays(FITS[model](checkerboard.data, seed=11, threads=1))
    assert first.keys() == second.keys()
    for name in first:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)


@pytest.mark.parametrize("model", list(FITS))
def test_saved_and_loaded_factors_score_the_same(model, checkerboard, score, tmp_path):
    factors = FITS[model](checkerboard.data, seed=7, threads=2)
    loaded = Factors.load(factors.save(tmp_path / model))
    every_member = np.arange(len(factors.member_ids))
    every_item = np.arange(len(factors.item_ids))
    np.testing.assert_array_equal(
        known_scores(loaded, every_member, every_item),
        known_scores(factors, every_member, every_item),
    )
    items = [*checkerboard.data.item_ids, "P99|Food"]
    item_features = [*checkerboard.data.item_features, ["partner=P99", "category=Food"]]
    cold_features = checkerboard.cold_member_features(0)
    np.testing.assert_array_equal(
        score(loaded, None, cold_features, items, item_features),
        score(factors, None, cold_features, items, item_features),
    )
    assert loaded.name == factors.name


@pytest.mark.parametrize("model", FEATURE_MODELS)
def test_cold_members_are_ranked_by_their_features(model, checkerboard, score):
    factors = FITS[model](checkerboard.data, seed=7, threads=2)
    items = list(checkerboard.data.item_ids)
    item_features = checkerboard.data.item_features
    rankings = []
    for group in (0, 1):
        scores = score(
            factors, None, checkerboard.cold_member_features(group), items, item_features
        )
        own = np.isin(items, checkerboard.group_items[group])
        assert scores[own].min() > scores[~own].max()
        rankings.append(np.argsort(-scores))
    assert not np.array_equal(rankings[0], rankings[1])
