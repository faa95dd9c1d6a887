"""The numpy tree evaluator against LightGBM's own predict."""

from __future__ import annotations

import json

import lightgbm
import numpy as np
import pytest

from perkrank.models.tree_ranker import TreeRanker, from_lightgbm_dump

NAMES = tuple(f"f{column}" for column in range(6))


def _data(rows: int, seed: int, nan_share: float = 0.15) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(rows, len(NAMES)))
    values[:, 1] = rng.integers(0, 4, rows)  # many exact zeros: the Zero missing type
    values[:, 2] = np.round(values[:, 2], 1)
    values[rng.random(values.shape) < nan_share] = np.nan
    values[:, 5] = rng.normal(size=rows)  # never missing in training
    return values


def _booster(objective: str, seed: int, **params: object) -> lightgbm.Booster:
    features = _data(3000, seed)
    rng = np.random.default_rng(seed + 1)
    signal = np.nan_to_num(features[:, 0]) + (features[:, 1] == 0) + np.isnan(features[:, 3])
    labels = (signal + rng.normal(size=len(signal)) > 1.0).astype(float)
    settings = {
        "objective": objective,
        "num_leaves": 15,
        "min_data_in_leaf": 20,
        "learning_rate": 0.1,
        "verbosity": -1,
        "seed": seed,
        "num_threads": 1,
        **params,
    }
    group = [30] * 100 if objective != "binary" else None
    data = lightgbm.Dataset(features, label=labels, group=group, feature_name=list(NAMES))
    return lightgbm.train(settings, data, num_boost_round=40)


@pytest.mark.parametrize(
    ("objective", "params"),
    [
        ("lambdarank", {}),
        ("binary", {}),
        ("lambdarank", {"zero_as_missing": True}),
        ("rank_xendcg", {"use_missing": False}),
    ],
)
def test_numpy_scores_equal_lightgbm_raw_scores(objective: str, params: dict) -> None:
    booster = _booster(objective, seed=3, **params)
    ranker = from_lightgbm_dump(booster.dump_model(), NAMES)
    probe = _data(2000, seed=11, nan_share=0.3)
    probe[:50, 5] = np.nan  # missing where training had none
    probe[50:60] = 0.0
    expected = booster.predict(probe, raw_score=True)
    np.testing.assert_allclose(ranker.predict(probe), expected, rtol=0, atol=1e-9)


def test_the_json_artifact_scores_like_the_dump() -> None:
    booster = _booster("lambdarank", seed=5)
    ranker = from_lightgbm_dump(booster.dump_model(), NAMES)
    loaded = TreeRanker.from_json(ranker.to_json())
    probe = _data(500, seed=2)
    np.testing.assert_array_equal(loaded.predict(probe), ranker.predict(probe))
    assert loaded.depth == ranker.depth > 0


def test_a_single_leaf_tree_scores_its_value() -> None:
    dump = {
        "feature_names": list(NAMES),
        "tree_info": [{"tree_structure": {"leaf_value": 0.25}}],
    }
    ranker = from_lightgbm_dump(dump, NAMES)
    np.testing.assert_array_equal(ranker.predict(np.zeros((3, len(NAMES)))), [0.25] * 3)


def test_bad_artifacts_and_inputs_are_refused() -> None:
    ranker = from_lightgbm_dump(_booster("lambdarank", seed=1).dump_model(), NAMES)
    document = json.loads(ranker.to_json())
    document["left"][0] = len(document["value"]) + 5
    with pytest.raises(ValueError, match="left points outside"):
        TreeRanker.from_json(json.dumps(document))
    with pytest.raises(ValueError, match="expected \\(rows, 6\\)"):
        ranker.predict(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="feature names differ"):
        from_lightgbm_dump(_booster("binary", seed=1).dump_model(), ("a", *NAMES[1:]))
