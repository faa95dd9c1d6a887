"""The coupon stage: one scorer for evaluation and serving. On the hand-made Complete Journey
files, a bundle with a coupon stage, saved and loaded, orders a campaign's coupons in serving
exactly as the benchmark's evaluation scores them; the arrays save without pickles."""

from datetime import date, datetime
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from perkrank.config import InteractionConfig, ServeConfig
from perkrank.features.complete_journey import coupon_tables, import_complete_journey, read_raw
from perkrank.features.interactions import cutoff_features
from perkrank.features.loader import load_dataset
from perkrank.models import scoring
from perkrank.models.bundle import Bundle
from perkrank.models.coupon_features import RANKS, RELATIVE, Campaigns
from perkrank.models.coupon_stage import (
    CANDIDATE_OFFSET,
    FEATURES,
    GROUPS,
    CouponStage,
    CouponStats,
    feature_arrays,
    load_coupon_stage,
    save_coupon_stage,
)
from perkrank.models.linear_ranker import LinearRanker
from perkrank.models.popularity import fit_popularity
from perkrank.serving.domain.catalog import catalog_from_dataset
from perkrank.serving.domain.ranking import OfferRanker, OfferRequest
from perkrank.serving.domain.selection import Selection
from perkrank.training import coupon_evaluation as ce
from perkrank.training import coupon_ranker as cr
from perkrank.training.coupon_stats import offer_ids
from tests.features.complete_journey_raw import write_raw

START = date(2017, 3, 1)
"""Campaign 2's start: its two coupons are the offers eligible that day."""


def ranker(weights: dict[str, float]) -> LinearRanker:
    """A linear ranker over every feature with these weights (the rest 0)."""
    values = np.array([weights.get(name, 0.0) for name in FEATURES])
    n = len(FEATURES)
    return LinearRanker(FEATURES, (), np.zeros(n), np.ones(n), values, 0.5)


def rankers() -> dict[str, LinearRanker]:
    """Type A (campaign 2): own purchases of the coupon's products up, popularity and the
    category's redemption rate down: the two members of campaign 2 get different orders (H10
    bought coupon 111's product, H30 nothing). Type B/C: other weights, so a mixed-up group
    shows."""
    type_a = {
        "product_lines": 3.0,
        "coupon_popularity": -1.0,
        "category_recent": 0.25,
        "category_rate": -0.5,
        "product_share_x_size": 2.0,
        "category_share_x_size": 0.5,
    }
    return {
        "Type A": ranker(type_a),
        "Type B/C": ranker({"coupon_size": 1.0, "category_rate": 2.0}),
    }


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("coupon_stage")
    raw = write_raw(root / "raw")
    import_complete_journey(raw, root / "data")
    dataset = load_dataset(root / "data")
    tables = coupon_tables(read_raw(raw))
    index = ce.coupon_index(tables)
    task = ce.campaign_task(tables, index, "2", labels_before=None)
    stage = cr.campaign_stage(tables, index, task.start, rankers())
    features = cutoff_features(dataset, datetime(2017, 3, 1), InteractionConfig())
    popularity = fit_popularity(features.data)
    Bundle(popularity, popularity, coupon_stage=stage).save(root / "bundle")
    return dataset, index, task, stage, Bundle.load(root / "bundle")


def evaluated(index, task, stage) -> dict[str, tuple[list[str], np.ndarray]]:
    """The benchmark's side: each exposed member's coupons ranked by `CouponStage.scores`."""
    ids = offer_ids(index, task.coupon_rows)
    scores = stage.scores(task.members, ids)
    order = scoring.top_k(scores, len(ids))
    return {
        member: (ids[order[row]].tolist(), scores[row][order[row]])
        for row, member in enumerate(task.members.tolist())
    }


def test_serving_orders_a_campaigns_coupons_as_the_evaluation_scores_them(setup) -> None:
    dataset, index, task, stage, bundle = setup
    catalog = catalog_from_dataset(dataset, bundle)
    settings = ServeConfig(catalog_date=START, app_api_keys="test:app-key-for-tests-0001")
    serving = OfferRanker(bundle, catalog, settings)
    expected = evaluated(index, task, stage)
    for member, (order, scores) in expected.items():
        region, tier = serving.profile(OfferRequest(member, "app", 10))
        day = serving.day(0.0)
        segment = serving.segment(region, tier, day, serving.tenure_days(member, day))
        served = serving.shortlist(member, segment, 10).personalized
        assert [catalog.offers[row].offer_id for row in served.rows] == order, member
        assert np.array(served.scores) - CANDIDATE_OFFSET == pytest.approx(scores, abs=1e-6)
    assert expected["H10"][0] != expected["H30"][0], "both members ordered alike: test is blind"


def test_a_served_coupon_shows_its_logit_not_the_offset(setup) -> None:
    dataset, index, task, stage, bundle = setup
    catalog = catalog_from_dataset(dataset, bundle)
    settings = ServeConfig(catalog_date=START, app_api_keys="test:app-key-for-tests-0001")
    serving = OfferRanker(bundle, catalog, settings)
    for member, (order, scores) in evaluated(index, task, stage).items():
        region, tier = serving.profile(OfferRequest(member, "app", 10))
        day = serving.day(0.0)
        segment = serving.segment(region, tier, day, serving.tenure_days(member, day))
        shortlist = serving.shortlist(member, segment, 10)
        ids = [catalog.offers[row].offer_id for row in shortlist.personalized.rows]
        ranking = serving.explain(shortlist, Selection(ids, personalized=True), {})
        assert [served.offer.offer_id for served in ranking.offers] == order[:10], member
        shown = [served.score for served in ranking.offers]
        assert shown == pytest.approx(scores[:10].tolist(), abs=1e-6), member


def test_saved_stage_scores_alike(setup, tmp_path: Path) -> None:
    _, index, task, stage, _ = setup
    loaded = load_coupon_stage(save_coupon_stage(stage, tmp_path / "stage"))
    ids = offer_ids(index)
    np.testing.assert_array_equal(loaded.scores(task.members, ids), stage.scores(task.members, ids))


def test_an_unknown_member_gets_only_the_offer_features(setup) -> None:
    _, index, task, stage, _ = setup
    ids = offer_ids(index, task.coupon_rows)
    unknown = stage.scores(["H999"], ids)[0]
    h30 = stage.scores(["H30"], ids)[0]  # no purchases before the start, no redemptions
    np.testing.assert_array_equal(unknown, h30)


def test_unknown_offers_keep_their_other_score(setup) -> None:
    _, index, _, stage, _ = setup
    ids = [*offer_ids(index, np.array([0])).tolist(), "C99-000"]
    scores = stage.member_scores("H10", ids, np.array([7.0, 7.0]))
    assert scores[0] > CANDIDATE_OFFSET - 100
    assert scores[1] == 7.0


def test_each_offer_is_scored_by_its_groups_ranker(setup) -> None:
    _, index, task, stage, _ = setup
    ids = offer_ids(index)  # campaign 1's (Type B) and campaign 2's (Type A) coupons
    values = feature_arrays(stage.stats, stage.members.rows(task.members), np.arange(len(ids)))
    groups = stage.stats.offer_groups
    assert sorted(set(groups.tolist())) == [0, 1]
    scores = stage.scores(task.members, ids)
    for position, group in enumerate(GROUPS):
        part = groups == position
        expected = stage.rankers[group].predict(values[:, part].reshape(-1, len(FEATURES)))
        np.testing.assert_allclose(scores[:, part].ravel(), expected)
    other = stage.rankers["Type B/C"].predict(values[:, groups == 0].reshape(-1, len(FEATURES)))
    assert not np.allclose(scores[:, groups == 0].ravel(), other), "groups alike: test is blind"


def test_a_ranker_with_unknown_features_is_refused(setup) -> None:
    stats = setup[3].stats
    odd = LinearRanker(("shoe_size",), (), np.zeros(1), np.ones(1), np.ones(1), 0.0)
    with pytest.raises(ValueError, match="shoe_size"):
        CouponStage({"Type A": odd, "Type B/C": odd}, stats)
    with pytest.raises(ValueError, match="a ranker per group"):
        CouponStage({"Type A": rankers()["Type A"]}, stats)


def test_a_file_without_the_arrays_is_refused(tmp_path: Path, setup) -> None:
    directory = save_coupon_stage(setup[3], tmp_path / "stage")
    with open(directory / "coupon_stats.npz", "wb") as file:
        np.savez(file, member_ids=np.array(["H1"]))
    with pytest.raises(ValueError, match=r"coupon_stats\.npz: not coupon statistics"):
        load_coupon_stage(directory)


@pytest.mark.parametrize(
    ("values", "campaigns", "relative", "ranks"),
    [
        # campaign 0: mean 2; campaign 1: mean 0 (relative 0)
        ([1.0, 3.0, 2.0, 0.0, 0.0], [0, 0, 0, 1, 1], [0.5, 1.5, 1.0, 0, 0], [0, 1, 0.5, 0, 0]),
        # ties share the rank of the lower; a campaign of one offer ranks 0
        ([5.0, 5.0, 1.0, 9.0], [0, 0, 0, 1], [15 / 11, 15 / 11, 3 / 11, 1.0], [0.5, 0.5, 0, 0]),
        # campaigns interleaved: each offer compared with its own campaign only
        ([4.0, 1.0, 2.0, 8.0], [1, 0, 1, 0], [4 / 3, 2 / 9, 2 / 3, 16 / 9], [1, 0, 0, 1]),
    ],
)
def test_campaign_relative_and_ranks(values, campaigns, relative, ranks) -> None:
    values, index = np.array(values), Campaigns.of(np.array(campaigns))
    every = np.arange(len(values))
    assert index.relative(values, every) == pytest.approx(np.array(relative))
    assert index.ranks(values, every) == pytest.approx(np.array(ranks))
    # a request's offers, in any order, get the values they have among all the offers
    rows = every[::-1][: len(values) - 1]
    assert index.relative(values, rows).tolist() == index.relative(values, every)[rows].tolist()
    assert index.ranks(values, rows).tolist() == index.ranks(values, every)[rows].tolist()


def relative_before(values: np.ndarray, campaigns: np.ndarray) -> np.ndarray:
    """`RELATIVE` as it was computed per request before `Campaigns`: over every offer."""
    sizes = np.bincount(campaigns).astype(np.float64)
    means = (np.bincount(campaigns, values, minlength=len(sizes)) / sizes)[campaigns]
    return np.divide(values, means, out=np.zeros(len(values)), where=means > 0)


def ranks_before(values: np.ndarray, campaigns: np.ndarray) -> np.ndarray:
    """`RANKS` as they were computed per request before `Campaigns`: a sort of every offer."""
    sizes = np.bincount(campaigns)
    dense = np.unique(values, return_inverse=True)[1].ravel().astype(np.int64)
    keys = campaigns.astype(np.int64) * (int(dense.max(initial=0)) + 1) + dense
    lower = np.searchsorted(np.sort(keys), keys) - (np.cumsum(sizes) - sizes)[campaigns]
    return lower / np.maximum(sizes[campaigns] - 1, 1)


def random_stats(seed: int = 0) -> CouponStats:
    """Arrays of 40 members and 60 offers over 5 campaigns of uneven sizes, small integer
    counts (many ties and zeros); member 0 has no purchases."""
    rng = np.random.default_rng(seed)
    members, offers = 40, 60
    campaigns = np.sort(rng.choice(5, offers, p=[0.4, 0.3, 0.15, 0.1, 0.05]))

    def counts(rows: int, columns: int, density: float) -> sp.csr_matrix:
        values = rng.integers(1, 4, size=(rows, columns)) * (rng.random((rows, columns)) < density)
        return sp.csr_matrix(values.astype(np.float64))

    member_matrices = {
        name: counts(members, width, 0.15)
        for name, width in [("member_products", 30), ("member_items", 8),
                            ("member_manufacturers", 6), ("member_types", 10)]
    }  # fmt: skip
    for name, matrix in list(member_matrices.items()):
        matrix[0] = 0
        matrix.eliminate_zeros()
        member_matrices[f"{name}_recent"] = matrix * 0.5
    lines = np.asarray(member_matrices["member_products"].sum(axis=1)).ravel()
    return CouponStats(
        member_ids=np.array([f"M{m:02d}" for m in range(members)]),
        offer_ids=np.array([f"C{c}-{o}" for o, c in enumerate(campaigns)]),
        offer_products=counts(offers, 30, 0.1).sign(),
        offer_items=counts(offers, 8, 0.3).sign(),
        offer_upcs=rng.integers(0, 45, offers),
        offer_groups=(campaigns % 2).astype(np.int64),
        offer_popularity=rng.integers(0, 3, offers).astype(np.float64),
        offer_redemption_rate=rng.random(offers),
        offer_category_rate=rng.random(offers),
        member_lines=lines,
        member_redeemed=counts(members, offers, 0.05),
        offer_manufacturers=counts(offers, 6, 0.3).sign(),
        offer_types=counts(offers, 10, 0.2).sign(),
        **member_matrices,
    )


def features_before(stats: CouponStats, member_row: int, offers: np.ndarray) -> np.ndarray:
    """(offers × `FEATURES`) of one member as computed before `Campaigns`: every column over
    every offer of the arrays (each alone), `RELATIVE` and `RANKS` over all of them too."""
    every = np.arange(len(stats.offer_ids))
    columns = []
    for name in FEATURES:
        base = {**RELATIVE, **RANKS}.get(name, name)
        values = feature_arrays(stats, [member_row], every, (base,))[0, :, 0]
        if name in RELATIVE:
            values = relative_before(values, stats.campaigns.codes)
        elif name in RANKS:
            values = ranks_before(values, stats.campaigns.codes)
        columns.append(values[offers])
    return np.stack(columns, axis=1)


def test_requested_features_equal_the_every_offer_computation() -> None:
    stats = random_stats()
    rng = np.random.default_rng(1)
    members = np.array([-1, 0, *rng.choice(40, 10, replace=False)])
    one_campaign = np.flatnonzero(stats.campaigns.codes == 1)
    for offers in (one_campaign, rng.choice(60, 25, replace=False)):
        requested = feature_arrays(stats, members, offers)
        for row, member in enumerate(members):
            assert requested[row].tolist() == features_before(stats, member, offers).tolist()
    ranks = feature_arrays(stats, members, one_campaign, ("product_rank", "type_rel"))
    assert len(np.unique(ranks[:, :, 0])) > 3  # ranks vary: the comparison is not of zeros
    assert len(np.unique(ranks[:, :, 1])) > 3


def test_stage_scores_equal_those_of_the_every_offer_features() -> None:
    stats = random_stats(seed=2)
    weights = np.linspace(-1, 1, len(FEATURES))
    ones = np.ones(len(FEATURES))
    full = LinearRanker(FEATURES, (), np.zeros(len(FEATURES)), ones, weights, 0.1)
    stage = CouponStage({group: full for group in GROUPS}, stats)
    members, offers = [*stats.member_ids[[0, 3, 7]].tolist(), "unknown"], np.arange(5, 40)
    scores = stage.scores(members, stats.offer_ids[offers])
    rows = [stage.member_row(member) for member in members]
    before = np.stack([features_before(stats, -1 if r is None else r, offers) for r in rows])
    expected = np.empty(scores.shape)
    for group in range(len(GROUPS)):  # as `scores` predicts: a group's rows together
        part = stats.offer_groups[offers] == group
        flat = before[:, part].reshape(-1, len(FEATURES))
        expected[:, part] = full.predict(flat).reshape(len(members), -1)
    assert scores.tolist() == expected.tolist()


def test_campaign_features_do_not_depend_on_the_requested_offers(setup) -> None:
    _, index, task, stage, _ = setup
    names = ("product_rel", "size_rel", "category_rank")
    weighted = LinearRanker(names, (), np.zeros(3), np.ones(3), np.ones(3), 0.0)
    relative = CouponStage({group: weighted for group in GROUPS}, stage.stats)
    ids = offer_ids(index, task.coupon_rows)
    every = relative.scores(task.members, ids)
    for column, offer in enumerate(ids):
        alone = relative.scores(task.members, [offer])[:, 0]
        assert alone == pytest.approx(every[:, column])
    # H10 bought coupon 111's product and category, H30 nothing: different scores for H10
    values = feature_arrays(stage.stats, stage.members.rows(task.members), task.coupon_rows, names)
    assert values[0, :, 0].tolist() == [2.0, 0.0]
    assert values[1, :, 0].tolist() == [0.0, 0.0]
