"""A blend scores every (member, item) as the weighted sum of its components' scaled scores."""

from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp

from perkrank.config import AlsConfig, LightFMConfig
from perkrank.models.als import fit_als
from perkrank.models.blend import blend, score_scale
from perkrank.models.factors import Factors
from perkrank.models.hybrid import fit_lightfm
from perkrank.models.popularity import fit_popularity
from perkrank.models.repeat import fit_repeat
from perkrank.models.scoring import known_scores

MEMBER_FEATURES = {
    "m1": ["region=north"],
    "m2": ["region=north", "tier=gold"],
    "m3": ["tier=gold"],
    "m9": ["region=north", "tier=gold", "segment=unknown"],
}
ITEM_FEATURES = {
    "i1": ["category=Food"],
    "i2": [],
    "i3": ["partner=P1", "category=Food"],
    "i9": ["partner=P1", "category=Food", "scope=local"],
}


def random_factors(seed: int, member_ids, item_ids, member_feature_ids, item_feature_ids, dim):
    generator = np.random.default_rng(seed)
    return Factors(
        member_ids=member_ids,
        member_vectors=generator.normal(size=(len(member_ids), dim)),
        item_ids=item_ids,
        item_vectors=generator.normal(size=(len(item_ids), dim)),
        item_biases=generator.normal(size=len(item_ids)),
        member_feature_ids=member_feature_ids,
        member_feature_vectors=generator.normal(size=(len(member_feature_ids), dim)),
        item_feature_ids=item_feature_ids,
        item_feature_vectors=generator.normal(size=(len(item_feature_ids), dim)),
        item_feature_biases=generator.normal(size=len(item_feature_ids)),
    )


def components() -> dict[str, Factors]:
    """Overlapping components: each knows some members, items and feature names."""
    repeat = sp.csr_matrix([[2.0, 0.0], [0.0, 5.0]])
    return {
        "a": random_factors(1, ["m1", "m2"], ["i1", "i2"], ["region=north"], ["category=Food"], 2),
        "b": random_factors(
            2, ["m2", "m3"], ["i2", "i3"], ["region=north", "tier=gold"], ["partner=P1"], 3
        ),
        "r": Factors(
            member_ids=["m1", "m3"],
            member_vectors=np.zeros((2, 0)),
            item_ids=["i1", "i3"],
            item_vectors=np.zeros((2, 0)),
            item_biases=[0.0, 0.0],
            repeat=repeat,
            repeat_weight=1.0,
        ),
    }


def weighted_scores(parts, weights, member_id, items, score) -> np.ndarray:
    """Σ weight · score / scale over the components, each scoring as serving would."""
    total = np.zeros(len(items))
    for name, factors in parts.items():
        if weights.get(name, 0.0):
            scale = score_scale(factors, seed=0)
            item_features = [ITEM_FEATURES.get(item, []) for item in items]
            member_features = MEMBER_FEATURES.get(member_id, [])
            part = score(factors, member_id, member_features, items, item_features)
            total += weights[name] / scale * part
    return total


@pytest.mark.parametrize("member_id", ["m1", "m2", "m3", "m9"])
def test_blend_scores_equal_the_weighted_sum_of_component_scores(member_id, score):
    parts, weights = components(), {"a": 0.7, "b": 1.5, "r": 2.0}
    blended = blend(parts, weights, member_features=MEMBER_FEATURES, item_features=ITEM_FEATURES)
    items = ["i1", "i2", "i3", "i9"]
    item_features = [ITEM_FEATURES[item] for item in items]
    np.testing.assert_allclose(
        score(blended, member_id, MEMBER_FEATURES[member_id], items, item_features),
        weighted_scores(parts, weights, member_id, items, score),
        rtol=1e-5,
        atol=1e-5,
    )


def test_blend_of_known_rows_covers_the_union_of_members_and_items():
    blended = blend(components(), {"a": 1.0, "b": 1.0, "r": 1.0})
    assert sorted(blended.member_ids) == ["m1", "m2", "m3"]
    assert sorted(blended.item_ids) == ["i1", "i2", "i3"]
    assert blended.dim == 5


def test_zero_weight_components_are_left_out(score):
    parts, weights = components(), {"a": 1.0, "b": 0.0, "r": 0.0}
    blended = blend(parts, weights, member_features=MEMBER_FEATURES, item_features=ITEM_FEATURES)
    assert blended.dim == 2 and blended.repeat is None
    items = ["i1", "i2", "i3"]
    np.testing.assert_allclose(
        score(blended, "m1", [], items, [ITEM_FEATURES[item] for item in items]),
        weighted_scores(parts, weights, "m1", items, score),
        rtol=1e-5,
    )


def test_a_weight_means_the_same_whatever_the_scale_of_the_components_scores():
    quiet = components()["a"]
    louder = replace(
        quiet, member_vectors=10 * quiet.member_vectors, item_biases=10 * quiet.item_biases
    )
    every_member, every_item = np.arange(2), np.arange(2)
    np.testing.assert_allclose(
        known_scores(blend({"a": louder}, {"a": 1.0}), every_member, every_item),
        known_scores(blend({"a": quiet}, {"a": 1.0}), every_member, every_item),
        rtol=1e-5,
    )
    assert score_scale(blend({"a": quiet}, {"a": 1.0}), seed=0) == pytest.approx(1.0, rel=1e-5)


def test_a_weight_for_a_missing_component_is_an_error():
    with pytest.raises(ValueError, match="not given: lightfm"):
        blend(components(), {"a": 1.0, "lightfm": 1.0})


def test_all_zero_weights_are_an_error():
    with pytest.raises(ValueError, match="every blend weight is zero"):
        blend(components(), {"a": 0.0})


def test_two_components_with_repeat_scores_are_an_error():
    parts = components()
    parts["r2"] = parts["r"]
    with pytest.raises(ValueError, match="repeat"):
        blend(parts, {"r": 1.0, "r2": 1.0})


def test_blend_of_fitted_models_keeps_the_checkerboard_and_the_weighted_sum(checkerboard, score):
    data = checkerboard.data
    parts = {
        "als": fit_als(data, AlsConfig(factors=4, regularization=1.0), seed=1, threads=1),
        "lightfm": fit_lightfm(data, LightFMConfig(no_components=4, epochs=30), seed=1, threads=1),
        "popularity": fit_popularity(data),
        "repeat": fit_repeat(data),
    }
    weights = {"als": 1.0, "lightfm": 1.0, "popularity": 0.5, "repeat": 0.1}
    member_features = dict(zip(data.member_ids, data.member_features, strict=True))
    item_features = dict(zip(data.item_ids, data.item_features, strict=True))
    blended = blend(parts, weights, member_features=member_features, item_features=item_features)

    for member_id, held_out in checkerboard.held_out.items():
        other_items = checkerboard.group_items[1 - checkerboard.member_group[member_id]]
        items = [held_out, *other_items]
        scores = score(blended, member_id, [], items, checkerboard.item_feature_lists(items))
        assert scores[0] > scores[1:].max(), member_id

    items = [*data.item_ids, "P99|Food"]
    new_item_features = [*data.item_features, ["partner=P99", "category=Food", "scope=federal"]]
    for member_id, features in [("M003", []), ("cold", checkerboard.cold_member_features(1))]:
        expected = sum(
            weight
            / score_scale(parts[name], seed=0)
            * score(parts[name], member_id, features, items, new_item_features)
            for name, weight in weights.items()
        )
        np.testing.assert_allclose(
            score(blended, member_id, features, items, new_item_features),
            expected,
            rtol=1e-4,
            atol=1e-4,
        )
