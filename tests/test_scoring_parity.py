"""One scorer: serving's orders equal evaluation's rankings, and the MLflow model's scores equal
`models.scoring`'s, for the same bundle, catalog and day.

The data is a small synthetic program; the ranker is built by hand with values on a 1/8 grid,
so every dot product is exact in float32 and any difference is a different member vector,
candidate set, formula or tie rule, never a rounding of one matrix product against another.
The fallback is the regional popularity fitted on the data. The second stage (a linear ranker
with random weights over the statistics of the purchases before the day) must order warm
members alike on both sides, and cold members by the fallback on both sides. With a calibration
and a value weight, both sides rank by `models.value.final_scores` alike.
"""

from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from unittest.mock import patch

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from perkrank.config import InteractionConfig, RankerConfig, ServeConfig
from perkrank.features.dataset import Dataset
from perkrank.features.interactions import build_training_data, cutoff_features
from perkrank.features.loader import load_dataset
from perkrank.features.offer_features import item_feature_table, offer_regions
from perkrank.features.synthetic import generate
from perkrank.features.vocabulary import (
    SPEND_FEATURES,
    TENURE_FEATURES,
    cold_member_feature_names,
    item_feature_names,
    item_id,
    member_feature_names,
)
from perkrank.models import scoring, value
from perkrank.models.bundle import Bundle
from perkrank.models.factors import Factors
from perkrank.models.linear_ranker import LinearRanker
from perkrank.models.popularity import fit_popularity
from perkrank.models.ranker import fit_lambdarank
from perkrank.models.second_stage import (
    SERVED_FEATURES,
    CandidateSizes,
    SecondStage,
    member_candidates,
)
from perkrank.models.second_stage_files import load_second_stage, save_second_stage
from perkrank.models.tree_ranker import from_lightgbm_dump
from perkrank.serving.domain.catalog import catalog_from_dataset, day_number
from perkrank.serving.domain.ranking import OfferRanker, OfferRequest
from perkrank.training import ranker_step
from perkrank.training.evaluation import rank_scores, rank_window
from perkrank.training.stage_scores import stage_score_batch
from perkrank.training.value_evaluation import offer_net_values
from perkrank.training.window import EvaluationWindow, prepare_window

DAY = date(2025, 4, 10)
"""The catalog day serving ranks for and the one-day evaluation window [DAY, DAY + 1)."""
K = 10
DIM = 4


def grid(rng: np.random.Generator, *shape: int) -> np.ndarray:
    """Random values in [-1, 1] on a 1/8 grid (sums and products stay exact in float32)."""
    return rng.integers(-8, 9, size=shape) / 8.0


def with_purchases_on_day(dataset: Dataset) -> Dataset:
    """The data plus, for every member who signed up before DAY, one purchase on DAY of every
    item an offer valid that day maps onto (so every member has relevant offers that day)."""
    offers = dataset.offers
    valid = offers[
        (offers["valid_from"] <= pd.Timestamp(DAY)) & (offers["valid_to"] >= pd.Timestamp(DAY))
    ]
    items = valid[["partner_id", "category"]].drop_duplicates()
    members = dataset.members.loc[dataset.members["signup_date"] < pd.Timestamp(DAY), ["member_id"]]
    extra = members.merge(items, how="cross").assign(
        ts=pd.Timestamp(DAY) + pd.Timedelta(hours=12), amount=10.0, channel="app"
    )
    purchases = pd.concat([dataset.purchases, extra[dataset.purchases.columns]], ignore_index=True)
    return Dataset(dataset.members, purchases, dataset.partners, dataset.offers)


def hand_made_ranker(dataset: Dataset, moment: datetime) -> Factors:
    """Known members (buyers before DAY) and most items learned; every member feature
    (region, tier, segment, tenure, spend) and item feature with a distinct vector; repeats
    from the decayed purchase counts. Every fifth item is left out: built from features."""
    rng = np.random.default_rng(5)
    data = build_training_data(dataset, moment, InteractionConfig())
    kept_items = np.flatnonzero(np.arange(len(data.item_ids)) % 5 != 0)
    regions, tiers = dataset.members["region"].unique(), dataset.members["tier"].unique()
    member_features = sorted(
        {
            name
            for region in regions
            for tier in tiers
            for name in member_feature_names(region, tier)
        }
        | set(TENURE_FEATURES)
        | set(SPEND_FEATURES)
    )
    item_features = sorted({name for names in data.item_features for name in names})
    return Factors(
        member_ids=data.member_ids,
        member_vectors=grid(rng, len(data.member_ids), DIM),
        item_ids=data.item_ids[kept_items],
        item_vectors=grid(rng, len(kept_items), DIM),
        item_biases=grid(rng, len(kept_items)),
        member_feature_ids=member_features,
        member_feature_vectors=grid(rng, len(member_features), DIM),
        item_feature_ids=item_features,
        item_feature_vectors=grid(rng, len(item_features), DIM),
        item_feature_biases=grid(rng, len(item_features)),
        repeat=data.purchase_counts[:, kept_items],
        repeat_weight=0.5,
        name="ranker",
    )


class Setup:
    """The same bundle, catalog and day on serving's side and evaluation's side."""

    def __init__(self, data_dir: Path) -> None:
        generate(data_dir, members=400, months=4, seed=3, start=date(2025, 1, 1))
        self.dataset = with_purchases_on_day(load_dataset(data_dir))
        moment = datetime.combine(DAY, datetime.min.time())
        features = cutoff_features(self.dataset, moment, InteractionConfig())
        self.bundle = Bundle(
            ranker=hand_made_ranker(self.dataset, moment), fallback=fit_popularity(features.data)
        )
        self.catalog = catalog_from_dataset(self.dataset, self.bundle)
        settings = ServeConfig(catalog_date=DAY, app_api_keys="test:app-key-for-tests-0001")
        self.ranker = OfferRanker(self.bundle, self.catalog, settings)
        self.window = prepare_window(
            self.dataset,
            DAY,
            DAY + timedelta(days=1),
            member_features=features.member_features,
            items_bought_before=features.items_bought_before,
            offer_regions=offer_regions(self.dataset),
            item_features=item_feature_table(self.dataset),
        )

    def evaluated(self, factors: Factors) -> dict[str, list[str]]:
        """Evaluation's top-K offer ids per member of the window under `factors`."""
        offer_rows = rank_window(self.window, factors, K)["all"].offer_rows
        return {
            member_id: [str(self.window.offer_ids[row]) for row in rows if row >= 0]
            for member_id, rows in zip(self.window.member_ids.tolist(), offer_rows, strict=True)
        }

    def served(self, member_id: str, *, tenure_days: int | None = None) -> tuple[list, list]:
        """Serving's personalized and fallback orders (top K offer ids) before the store."""
        region, tier = self.ranker.profile(OfferRequest(member_id, "app", K))
        day = self.ranker.day(0.0)
        if tenure_days is None:
            tenure_days = self.ranker.tenure_days(member_id, day)
        segment = self.ranker.segment(region, tier, day, tenure_days)
        shortlist = self.ranker.shortlist(member_id, segment, K)
        offers = self.catalog.offers
        return (
            [offers[row].offer_id for row in shortlist.personalized.rows[:K]],
            [offers[row].offer_id for row in shortlist.fallback.rows[:K]],
        )

    def tenure_days(self, member_id: str) -> int:
        return self.ranker.tenure_days(member_id, day_number(DAY))


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    return Setup(tmp_path_factory.mktemp("parity") / "data")


def members_of(window: EvaluationWindow, warm: bool) -> list[str]:
    return window.member_ids[window.member_is_warm == warm].tolist()


def test_the_window_has_warm_members_and_cold_ones_of_every_tenure(setup):
    window = setup.window
    cold = members_of(window, warm=False)
    assert len(members_of(window, warm=True)) > 50
    assert len(cold) > 5
    buckets = {cold_member_feature_names("r", "t", setup.tenure_days(member))[3] for member in cold}
    assert buckets - {TENURE_FEATURES[0]}, "no cold member with a tenure over 3 months"


def test_warm_members_get_the_same_personalized_ranking(setup):
    evaluated = setup.evaluated(setup.bundle.ranker)
    for member in members_of(setup.window, warm=True):
        assert setup.ranker.bundle.ranker.member_row(member) is not None
        assert setup.served(member)[0] == evaluated[member], member


@pytest.mark.parametrize("value_weight", [0.5, 2.0])
def test_value_weight_and_calibration_rank_alike_on_both_sides(setup, value_weight):
    calibration = value.Calibration(0.5, -1.0)
    bundle = replace(setup.bundle, calibration=calibration)
    settings = ServeConfig(
        catalog_date=DAY, app_api_keys="test:app-key-for-tests-0001", value_weight=value_weight
    )
    ranker = OfferRanker(bundle, setup.catalog, settings)
    scale = value.value_scale(offer_net_values(setup.dataset.offers))
    net = offer_net_values(setup.dataset.offers, setup.window.offer_ids.tolist())
    adjustments = value.value_terms(net, value_weight, scale)
    ranked = rank_window(setup.window, bundle.ranker, K, calibration, adjustments)["all"]
    evaluated = {
        member_id: [str(setup.window.offer_ids[row]) for row in rows if row >= 0]
        for member_id, rows in zip(setup.window.member_ids.tolist(), ranked.offer_rows, strict=True)
    }
    plain = setup.evaluated(setup.bundle.ranker)
    day = ranker.day(0.0)
    reordered = 0
    for member in setup.window.member_ids.tolist():
        region, tier = ranker.profile(OfferRequest(member, "app", K))
        segment = ranker.segment(region, tier, day, ranker.tenure_days(member, day))
        rows = ranker.shortlist(member, segment, K).personalized.rows[:K]
        served = [setup.catalog.offers[row].offer_id for row in rows]
        assert served == evaluated[member], member
        reordered += served != plain[member]
    assert reordered > 0, "value never changed an order: the test is blind"


def test_cold_members_are_ranked_from_their_real_tenure_on_both_sides(setup):
    evaluated = setup.evaluated(setup.bundle.ranker)
    differs_from_new_member = 0
    for member in members_of(setup.window, warm=False):
        assert setup.ranker.bundle.ranker.member_row(member) is None
        personalized, _ = setup.served(member)
        assert personalized == evaluated[member], member
        differs_from_new_member += personalized != setup.served(member, tenure_days=0)[0]
    assert differs_from_new_member > 0, "tenure never changed a cold order: the test is blind"


def test_personalization_off_follows_the_evaluated_fallback(setup):
    evaluated = setup.evaluated(setup.bundle.fallback)
    for member in setup.window.member_ids.tolist():
        assert setup.served(member)[1] == evaluated[member], member


def test_registered_model_scores_rows_with_the_scoring_module(setup):
    from perkrank.models.pyfunc import INPUT_COLUMNS, score_rows

    ranker = setup.bundle.ranker
    members = setup.dataset.members.head(60)
    offers = setup.catalog.offers[:15]
    rows = pd.DataFrame(
        [
            (member, region, tier, tenure, offer.partner_id, offer.category, offer.scope)
            for member, region, tier in members[["member_id", "region", "tier"]].itertuples(
                index=False
            )
            for tenure in (setup.tenure_days(member),)
            for offer in offers
        ]
        + [("stranger", "atlantis", "vip", 0, "P999", "Nothing", "local")],
        columns=list(INPUT_COLUMNS),
    )
    expected = []
    for row in rows.itertuples(index=False):
        items = scoring.item_inputs(
            ranker,
            [item_id(row.partner_id, row.category)],
            [item_feature_names(row.partner_id, row.category, row.scope)],
        )
        vector = scoring.member_vector(
            ranker,
            row.member_id,
            cold_member_feature_names(row.region, row.tier, row.tenure_days),
        )
        repeat = scoring.repeat_scores(ranker, ranker.member_row(row.member_id), items.rows)
        expected.append(scoring.scores(vector, items.vectors, items.biases, repeat)[0])
    assert (rows["member_id"].isin(ranker.member_ids)).any()
    unknown = rows[~rows["member_id"].isin(ranker.member_ids)]
    assert (unknown["tenure_days"] > 92).any()  # the tenure column changes cold members' scores
    np.testing.assert_array_equal(score_rows(ranker, rows), np.array(expected, dtype=np.float32))


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
