"""The second stage (a linear ranker with random weights over the statistics of the purchases
before the day, alone or with LightGBM trees) orders warm members alike on serving's side and
evaluation's, and cold members by the fallback on both sides; the MLflow model orders a
member's rows as serving does; the fit frame, snapshots and tree weight it is fitted with.
The world is tests/scoring_setup.py's.
"""

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from unittest.mock import patch

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from perkrank.config import RankerConfig, ServeConfig
from perkrank.features.dataset import Dataset
from perkrank.models import scoring
from perkrank.models.linear_ranker import LinearRanker
from perkrank.models.ranker import fit_lambdarank
from perkrank.models.second_stage import (
    SERVED_FEATURES,
    CandidateSizes,
    SecondStage,
    member_candidates,
)
from perkrank.models.second_stage_files import load_second_stage, save_second_stage
from perkrank.models.tree_ranker import from_lightgbm_dump
from perkrank.serving.domain.ranking import OfferRanker, OfferRequest
from perkrank.training import ranker_step
from perkrank.training.evaluation import rank_scores
from perkrank.training.stage_scores import stage_score_batch
from tests.scoring_setup import DAY, K, Setup, members_of


def hand_made_second_stage(dataset: Dataset) -> SecondStage:
    """A linear ranker with random weights over the statistics of the purchases before DAY."""
    rng = np.random.default_rng(11)
    columns = len(SERVED_FEATURES)
    linear = LinearRanker(
        feature_names=SERVED_FEATURES,
        missing_columns=(),
        means=np.zeros(columns),
        scales=np.ones(columns),
        weights=rng.normal(size=columns),
        bias=0.0,
    )
    return ranker_step.served_stage(dataset, DAY, linear)


def with_trees(setup: Setup, stage: SecondStage, directory: Path) -> SecondStage:
    """`stage` plus LightGBM lambdarank trees fitted on the window's candidate rows (random
    labels), converted to `models.tree_ranker` and saved and loaded back as a bundle is."""
    data = ranker_step.stage_data(setup.dataset, DAY)
    features, _, members = ranker_step.frame(setup.window, setup.bundle.ranker, data, stage.sizes)
    order = np.argsort(members, kind="stable")
    features, members = features[order], members[order]
    features[np.random.default_rng(3).random(features.shape) < 0.05] = np.nan
    labels = (np.random.default_rng(4).random(len(members)) < 0.3).astype(float)
    _, sizes = np.unique(members, return_counts=True)
    booster = fit_lambdarank(
        features,
        labels,
        sizes,
        SERVED_FEATURES,
        rounds=20,
        params={"min_data_in_leaf": 20, "learning_rate": 0.3},
    )
    trees = from_lightgbm_dump(booster.dump_model(), SERVED_FEATURES)
    np.testing.assert_allclose(
        trees.predict(features), booster.predict(features, raw_score=True), atol=1e-9
    )
    saved = save_second_stage(replace(stage, trees=trees), directory / "second_stage")
    return load_second_stage(saved)


@pytest.fixture(scope="module", params=["linear", "linear+trees"])
def staged(
    setup: Setup, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[OfferRanker, dict[str, list[str]]]:
    """Serving's ranker with the second stage (the linear ranker alone, or with trees), and
    evaluation's top-K under it."""
    stage = hand_made_second_stage(setup.dataset)
    if request.param == "linear+trees":
        stage = with_trees(setup, stage, tmp_path_factory.mktemp("trees"))
        assert stage.trees is not None
    bundle = replace(setup.bundle, second_stage=stage)
    settings = ServeConfig(catalog_date=DAY, app_api_keys="test:app-key-for-tests-0001")
    ranker = OfferRanker(bundle, setup.catalog, settings)
    scores = stage_score_batch(setup.window, bundle.ranker, bundle.fallback, bundle.second_stage)
    offer_rows = rank_scores(setup.window, scores, K)["all"].offer_rows
    evaluated = {
        member_id: [str(setup.window.offer_ids[row]) for row in rows if row >= 0]
        for member_id, rows in zip(setup.window.member_ids.tolist(), offer_rows, strict=True)
    }
    return ranker, evaluated


def test_the_trees_change_the_order(setup, tmp_path):
    """Trees in the stage matter: evaluation's top-K moves for many warm members."""
    stage = hand_made_second_stage(setup.dataset)
    bundle = setup.bundle

    def top(second_stage: SecondStage) -> np.ndarray:
        scores = stage_score_batch(setup.window, bundle.ranker, bundle.fallback, second_stage)
        return rank_scores(setup.window, scores, K)["all"].offer_rows

    changed = (top(stage) != top(with_trees(setup, stage, tmp_path))).any(axis=1)
    assert changed.sum() > 20


def served_order(ranker: OfferRanker, member_id: str) -> list[str]:
    region, tier = ranker.profile(OfferRequest(member_id, "app", K))
    day = ranker.day(0.0)
    segment = ranker.segment(region, tier, day, ranker.tenure_days(member_id, day))
    rows = ranker.shortlist(member_id, segment, K).personalized.rows[:K]
    return [ranker.catalog.offers[row].offer_id for row in rows]


def test_the_second_stage_orders_warm_members_alike_on_both_sides(setup, staged):
    ranker, evaluated = staged
    blend = setup.evaluated(setup.bundle.ranker)
    stage = ranker.bundle.second_stage
    reordered = 0
    for member in members_of(setup.window, warm=True):
        assert stage.member_row(member) is not None, member
        assert served_order(ranker, member) == evaluated[member], member
        reordered += evaluated[member] != blend[member]
    assert reordered > 20, "the second stage hardly changed an order: the test is blind"


def test_cold_members_get_the_fallback_with_a_second_stage_on_both_sides(setup, staged):
    ranker, evaluated = staged
    fallback = setup.evaluated(setup.bundle.fallback)
    for member in members_of(setup.window, warm=False):
        assert ranker.bundle.second_stage.member_row(member) is None, member
        assert served_order(ranker, member) == evaluated[member] == fallback[member], member


@pytest.mark.parametrize("warm", [True, False])
def test_registered_model_orders_a_members_rows_as_serving(setup, staged, warm):
    from perkrank.models.pyfunc import INPUT_COLUMNS, score_rows

    ranker, evaluated = staged
    member = members_of(setup.window, warm=warm)[0]
    region, tier = ranker.profile(OfferRequest(member, "app", K))
    day = ranker.day(0.0)
    segment = ranker.segment(region, tier, day, ranker.tenure_days(member, day))
    offers = [ranker.catalog.offers[row] for row in segment.rows]
    rows = pd.DataFrame(
        [
            (member, region, tier, setup.tenure_days(member), o.partner_id, o.category, o.scope)
            for o in offers
        ],
        columns=list(INPUT_COLUMNS),
    )
    bundle = ranker.bundle
    scores = score_rows(bundle.ranker, rows, bundle.second_stage, bundle.fallback)
    top = [offers[position].offer_id for position in scoring.best(scores, K)]
    assert top == served_order(ranker, member) == evaluated[member]


def test_the_fit_frame_holds_each_members_candidates_as_serving_builds_them(setup):
    """`frame` (blocks of members at once) == `member_candidates` member by member."""
    data = ranker_step.stage_data(setup.dataset, DAY)
    sizes = CandidateSizes(cf_top=7)
    blend = setup.bundle.ranker
    relevant = np.random.default_rng(5).random(setup.window.relevant.shape) < 0.3
    window = replace(setup.window, relevant=sp.csr_matrix(relevant))  # every offer is, else
    with patch.object(ranker_step, "FRAME_BLOCK", 50):  # several blocks per group
        features, labels, members = ranker_step.frame(window, blend, data, sizes)
    expected_features, expected_labels, expected_members = [], [], []
    for inputs in ranker_step.ranked_members(window, blend, data, sizes):
        chosen, rows = member_candidates(
            data.stats, sizes, inputs.stats_row, inputs.item_rows, inputs.flags, inputs.blend_scores
        )
        expected_features.append(rows)
        expected_labels.append(relevant[inputs.member, inputs.offers[chosen]].astype(float))
        expected_members.append(np.full(len(chosen), inputs.member))
    assert len(expected_members) > 100 and 0 < labels.sum() < len(labels)
    np.testing.assert_array_equal(features, np.vstack(expected_features))
    np.testing.assert_array_equal(labels, np.concatenate(expected_labels))
    np.testing.assert_array_equal(members, np.concatenate(expected_members))


def test_snapshots_start_a_step_apart_before_the_validation_window():
    config = RankerConfig(snapshots=3, snapshot_step_days=30)
    assert ranker_step.snapshot_cutoffs(DAY, config) == [
        DAY - timedelta(days=30),
        DAY - timedelta(days=60),
    ]
    assert ranker_step.snapshot_cutoffs(DAY, RankerConfig()) == []


@pytest.mark.parametrize("tree_weight", [0.0, 0.5])
def test_the_fitted_trees_carry_their_weight_of_the_linear_spread(setup, tree_weight):
    """Stacked snapshots fit; the served trees' score spreads `tree_weight` × the logit's."""
    data = ranker_step.stage_data(setup.dataset, DAY)
    blend = setup.bundle.ranker
    relevant = np.random.default_rng(6).random(setup.window.relevant.shape) < 0.3
    window = replace(setup.window, relevant=sp.csr_matrix(relevant))  # the real one: too few
    config = RankerConfig(snapshots=2, tree_weight=tree_weight, tree_rounds=5)
    earlier = [ranker_step.Snapshot(window, blend, data)]
    models = ranker_step.fit_ranker(window, blend, data, seed=0, config=config, earlier=earlier)
    assert models is not None
    if tree_weight == 0:
        assert models.trees is None
        return
    features, _, _ = ranker_step.frame(window, blend, data, CandidateSizes())
    assert models.trees.feature_names == SERVED_FEATURES
    np.testing.assert_allclose(
        np.std(models.trees.predict(features)),
        tree_weight * np.std(models.linear.predict(features)),
        rtol=1e-6,
    )
