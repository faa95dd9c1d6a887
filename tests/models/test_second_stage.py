"""The served second stage: candidates first, own purchases among them, and a bundle that
saves and loads it (JSON + npz) into the same scores."""

from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from perkrank.features.loader import load_dataset
from perkrank.features.ranker_features import FEATURE_NAMES
from perkrank.features.synthetic import generate
from perkrank.models.bundle import Bundle
from perkrank.models.factors import Factors
from perkrank.models.linear_ranker import LinearRanker
from perkrank.models.second_stage import (
    CANDIDATE_OFFSET,
    SERVED_FEATURES,
    SecondStage,
    blend_ranks,
    bought,
    member_bought,
    member_candidates,
    member_scores,
    row_ranks,
)
from perkrank.models.second_stage_files import STATS_FILE, load_second_stage, save_second_stage
from perkrank.models.stage_parts import BLEND, CATEGORY, ITEM, MEMBER, OWN
from perkrank.training.ranker_step import served_stage
from tests.models.flagged_ranker import flagged

CUTOFF = date(2025, 4, 1)


def linear(seed: int, names: tuple[str, ...] = SERVED_FEATURES) -> LinearRanker:
    rng = np.random.default_rng(seed)
    width = len(names)
    return LinearRanker(names, (), np.zeros(width), np.ones(width), rng.normal(size=width), 0.0)


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> SecondStage:
    data_dir = tmp_path_factory.mktemp("stage") / "data"
    generate(data_dir, members=300, months=3, seed=5, start=date(2025, 1, 1))
    return served_stage(load_dataset(data_dir), CUTOFF, linear(3))


def warm_rows(stage: SecondStage, count: int) -> list[int]:
    rows = [stage.member_row(m) for m in stage.stats.member_ids.tolist()]
    return [row for row in rows if row is not None][:count]


def blend_scores(stage: SecondStage, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Every known item plus two unknown ones, and random blend scores over them."""
    item_rows = np.r_[np.arange(len(stage.stats.item_ids)), -1, -1]
    return item_rows, np.random.default_rng(seed).normal(size=len(item_rows)).astype(np.float32)


def test_candidates_rank_above_the_rest_and_hold_the_members_own_items(stage):
    item_rows, scores = blend_scores(stage, 0)
    flags = stage.segment_flags(item_rows, str(stage.region_ids[0]))
    small = replace(stage, sizes=replace(stage.sizes, cf_top=5, popular_top=5, regional_top=5))
    pair_members, pair_items = np.divmod(stage.stats.pair_keys, len(stage.stats.item_ids))
    for row in warm_rows(stage, 20):
        chosen, features = member_candidates(
            small.stats, small.sizes, row, item_rows, np.zeros_like(flags), scores
        )
        bought = np.flatnonzero(np.isin(item_rows, pair_items[pair_members == row]))
        top = np.argsort(-scores)[:5]
        assert set(bought.tolist()) | set(top.tolist()) == set(chosen.tolist())
        own = features[:, SERVED_FEATURES.index("own_count")] > 0
        assert np.array_equal(np.flatnonzero(own), np.flatnonzero(np.isin(chosen, bought)))
        chosen, _ = member_candidates(small.stats, small.sizes, row, item_rows, flags, scores)
        ranked = member_scores(small, row, item_rows, flags, scores)
        others = np.setdiff1d(np.arange(len(scores)), chosen)
        assert len(others) > 0
        assert ranked[chosen].min() > CANDIDATE_OFFSET / 2 > ranked[others].max()
        np.testing.assert_array_equal(ranked[others], scores[others])


def test_a_bundle_saves_and_loads_the_stage_into_the_same_scores(stage, tmp_path):
    factors = Factors(
        member_ids=["m"],
        member_vectors=np.ones((1, 2)),
        item_ids=["i"],
        item_vectors=np.ones((1, 2)),
        item_biases=np.zeros(1),
        name="blend",
    )
    bundle = Bundle(ranker=factors, fallback=factors, second_stage=stage)
    loaded = Bundle.load(bundle.save(tmp_path / "bundle")).second_stage
    assert isinstance(loaded.stats.member_categories, np.ndarray)  # held dense when small
    item_rows, scores = blend_scores(stage, 1)
    for row in warm_rows(stage, 30):
        flags = stage.segment_flags(item_rows, str(stage.region_ids[-1]))
        assert np.array_equal(flags, loaded.segment_flags(item_rows, str(loaded.region_ids[-1])))
        np.testing.assert_array_equal(
            member_scores(stage, row, item_rows, flags, scores),
            member_scores(loaded, row, item_rows, flags, scores),
        )
    assert Bundle.load(Bundle(factors, factors).save(tmp_path / "old")).second_stage is None


@pytest.mark.parametrize(
    ("scores", "ranks"),
    [
        ([0.5, 2.0, 1.0], [3, 1, 2]),
        ([1.0, 1.0, 3.0, 1.0], [2, 3, 1, 4]),  # ties: the lower position ranks first
        ([-0.0, 0.0, -1.0], [1, 2, 3]),
    ],
)
def test_blend_ranks_count_higher_scores_then_earlier_ties(scores, ranks):
    result = blend_ranks(np.array([scores, scores[::-1]], dtype=np.float32))
    np.testing.assert_array_equal(result[0], ranks)
    higher = [sum(s > v for s in scores[::-1]) for v in scores[::-1]]
    earlier = [scores[::-1][:i].count(v) for i, v in enumerate(scores[::-1])]
    np.testing.assert_array_equal(result[1], np.add(higher, earlier) + 1)


@pytest.mark.parametrize("seed", range(6))
def test_one_row_ranks_equal_blend_ranks(seed):
    rng = np.random.default_rng(seed)
    tied = rng.choice([-1.5, -0.0, 0.0, 0.25, 2.0], size=300)  # -0.0 ties 0.0 too
    scores = np.where(rng.random(300) < 0.5, tied, rng.normal(size=300)).astype(np.float32)
    scores[rng.integers(0, 300, 5)] = -np.inf
    if seed % 2:
        scores[rng.integers(0, 300, 3)] = np.nan  # NaNs rank last, in position order
    np.testing.assert_array_equal(row_ranks(scores), blend_ranks(scores[np.newaxis])[0])
    unique = rng.normal(size=50)
    np.testing.assert_array_equal(row_ranks(unique), blend_ranks(unique[np.newaxis])[0])
    assert row_ranks(np.array([], dtype=np.float32)).shape == (0,)


def test_one_members_purchases_equal_bought(stage):
    item_rows = np.r_[np.arange(len(stage.stats.item_ids)), -1, 0, -1]
    for row in [*warm_rows(stage, 30), 0, len(stage.stats.member_ids) - 1]:
        expected = bought(stage.stats, np.array([row]), item_rows)[0]
        np.testing.assert_array_equal(member_bought(stage.stats, row, item_rows), expected)


@pytest.mark.parametrize("seed", [0, 1])
def test_served_logits_equal_the_ranker_on_the_feature_rows(stage, seed, tmp_path):
    factors = Factors(
        member_ids=["m"],
        member_vectors=np.ones((1, 2)),
        item_ids=["i"],
        item_vectors=np.ones((1, 2)),
        item_biases=np.zeros(1),
        name="blend",
    )
    sparse = replace(stage, ranker=flagged(seed))
    saved = Bundle(ranker=factors, fallback=factors, second_stage=sparse).save(tmp_path / "b")
    dense = Bundle.load(saved).second_stage
    item_rows, scores = blend_scores(stage, seed)
    scores[:3] = scores[3]  # tied blend scores
    rows = np.random.default_rng(seed).permutation(warm_rows(stage, 10_000))[:40]
    for served in (sparse, dense):
        for row in rows.tolist():
            region = str(stage.region_ids[row % len(stage.region_ids)])
            flags = served.segment_flags(item_rows, region)
            chosen, features = member_candidates(
                served.stats, served.sizes, row, item_rows, flags, scores
            )
            expected = CANDIDATE_OFFSET + served.ranker.predict(features)
            ranked = member_scores(served, row, item_rows, flags, scores)
            np.testing.assert_allclose(ranked[chosen], expected, rtol=0, atol=1e-9)


def test_served_logits_of_non_finite_blend_scores_equal_the_ranker(stage):
    """A NaN or infinite blend score takes the ranker's own transform (NaN → 0 plus its
    missing flag, ±inf → the largest float), as `predict` does."""
    served = replace(stage, ranker=flagged(4))
    item_rows, scores = blend_scores(stage, 4)
    scores[[1, 5]] = np.nan
    scores[[2, 7]] = -np.inf
    scores[3] = np.inf
    compared = 0
    for row in warm_rows(stage, 40):
        flags = served.segment_flags(item_rows, str(stage.region_ids[0]))
        chosen, features = member_candidates(
            served.stats, served.sizes, row, item_rows, flags, scores
        )
        expected = CANDIDATE_OFFSET + served.ranker.predict(features)
        ranked = member_scores(served, row, item_rows, flags, scores)
        np.testing.assert_allclose(ranked[chosen], expected, rtol=1e-12, atol=1e-9)
        compared += int(np.isin(chosen, [1, 2, 3, 5, 7]).sum())
    assert compared > 0, "no non-finite blend score among the candidates: the test is blind"


def test_a_stats_file_without_an_array_is_named_in_the_error(stage, tmp_path):
    directory = tmp_path / "stage"
    save_second_stage(stage, directory)
    with np.load(directory / STATS_FILE) as archive:
        arrays = {name: archive[name] for name in archive.files if name != "pair_keys"}
    np.savez(directory / STATS_FILE, **arrays)
    with pytest.raises(ValueError, match=str(Path(directory / STATS_FILE))):
        load_second_stage(directory)


def test_a_ranker_of_other_features_is_refused(stage):
    with pytest.raises(ValueError, match="feature names"):
        replace(stage, ranker=linear(1, ("own_count",)))


def test_the_logit_parts_cover_every_pair_feature_once():
    groups = OWN + CATEGORY + MEMBER + ITEM
    assert sorted(groups) == sorted(FEATURE_NAMES)
    assert SERVED_FEATURES[len(FEATURE_NAMES) : len(FEATURE_NAMES) + len(BLEND)] == BLEND
