"""The coupon ranker's training side: features of a campaign as of its start (exact values on
hand-made raw files, only earlier data), training rows, rolling-origin folds that fit only on
earlier campaigns and labels, and forward selection per offer group."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from perkrank.features.complete_journey import coupon_tables, read_raw
from perkrank.models.coupon_stage import FEATURES
from perkrank.models.ranker import fit_linear
from perkrank.training import coupon_evaluation as ce
from perkrank.training import coupon_ranker as cr
from tests.features.complete_journey_raw import write_raw


@pytest.fixture
def tables(tmp_path: Path) -> ce.CouponTables:
    return coupon_tables(read_raw(write_raw(tmp_path / "raw")))


def named(tables: ce.CouponTables, campaign_id: str) -> dict[str, list[list[float]]]:
    """Each feature of a campaign (members × coupons) as nested lists."""
    index = ce.coupon_index(tables)
    task = ce.campaign_task(tables, index, campaign_id, labels_before=None)
    values = cr.campaign_features(tables, index, task)
    return {name: values[:, :, column] for column, name in enumerate(FEATURES)}


def test_features_of_campaign_two_use_only_earlier_data(tables: ce.CouponTables) -> None:
    features = named(tables, "2")
    assert features["coupon_popularity"].tolist() == [[1, 0], [1, 0]]
    assert features["category_share"].tolist() == [[2 / 3, 0], [0, 0]]
    assert features["product_share"].tolist() == [[1 / 3, 0], [0, 0]]
    assert features["past_redemptions"].tolist() == [[1, 0], [0, 0]]
    assert features["coupon_size"].tolist() == [[1, 1], [1, 1]]
    assert features["product_lines"].tolist() == [[1, 0], [0, 0]]
    snack_days, pretzel_days = 54 + 0.5 / 24, 8 + 14 / 24
    assert features["product_recent"] == pytest.approx(
        np.array([[2 ** (-snack_days / 30), 0], [0, 0]])
    )
    both = 2 ** (-snack_days / 30) + 2 ** (-pretzel_days / 30)
    assert features["category_recent"] == pytest.approx(np.array([[both, 0], [0, 0]]))
    assert features["same_coupon"].tolist() == [[1, 0], [0, 0]]
    assert features["redemption_rate"].tolist() == [[0.5, 0], [0.5, 0]]


def test_manufacturer_and_type_features_of_campaign_two(tables: ce.CouponTables) -> None:
    features = named(tables, "2")
    # H10's three lines before the start: product 100 (manufacturer 1, CHIPS, coupon 111's
    # product), 300 (manufacturer 3) and 101 (manufacturer 1, PRETZELS); coupon 333 covers
    # product 200 (manufacturer 2), which nobody bought
    assert features["manufacturer_share"].tolist() == [[2 / 3, 0], [0, 0]]
    assert features["type_share"].tolist() == [[1 / 3, 0], [0, 0]]
    snack, pretzel = 2 ** (-(54 + 0.5 / 24) / 30), 2 ** (-(8 + 14 / 24) / 30)
    assert features["manufacturer_recent"] == pytest.approx(
        np.array([[snack + pretzel, 0], [0, 0]])
    )
    assert features["type_recent"] == pytest.approx(np.array([[snack, 0], [0, 0]]))


def test_campaign_one_features_see_nothing_later(tables: ce.CouponTables) -> None:
    features = named(tables, "1")
    assert features["category_share"].tolist() == [[1.0, 0.0], [0.0, 0.0]]
    assert features["coupon_popularity"].tolist() == [[0, 0], [0, 0]]
    assert features["coupon_size"].tolist() == [[2, 1], [2, 1]]
    assert features["same_coupon"].tolist() == [[0, 0], [0, 0]]
    assert features["past_redemptions"].tolist() == [[0, 0], [0, 0]]
    assert features["redemption_rate"].tolist() == [[0, 0], [0, 0]]
    assert features["product_lines"].tolist() == [[1, 0], [0, 0]]
    # H10's only line before campaign 1 is product 100: manufacturer 1 covers coupon 111
    assert features["manufacturer_share"].tolist() == [[1.0, 0.0], [0.0, 0.0]]


def test_new_features_of_campaign_two(tables: ce.CouponTables) -> None:
    features = named(tables, "2")
    # coupon 111 shares its category with campaign 1's 111 (one redemption, the repeat
    # dropped; two exposures); 333's category had no earlier coupon
    assert features["category_rate"].tolist() == [[0.5, 0.0], [0.5, 0.0]]
    log_size = np.log1p(1.0)
    assert features["product_share_x_size"] == pytest.approx(np.array([[log_size / 3, 0], [0, 0]]))
    assert features["category_share_x_size"] == pytest.approx(
        np.array([[2 * log_size / 3, 0], [0, 0]])
    )
    assert named(tables, "1")["category_rate"].tolist() == [[0, 0], [0, 0]]


def test_training_rows_keep_redeeming_pairs_only(tables: ce.CouponTables) -> None:
    blocks = cr.campaign_blocks(tables, ce.coupon_index(tables), ["1", "2"])
    rows = cr.training_rows(blocks, ["1", "2"], pd.Timestamp("2017-03-01"))
    assert rows.query_ids.tolist() == ["1/H10", "1/H10"]
    assert rows.labels.tolist() == [1.0, 0.0]
    assert rows.types.tolist() == ["Type B", "Type B"]
    assert rows.features.shape == (2, len(FEATURES))
    every = cr.training_rows(blocks, ["1", "2"], pd.Timestamp("2017-03-01"), redeeming_only=False)
    pairs = ["1/H10", "1/H20", "2/H10", "2/H30"]
    assert every.query_ids.tolist() == [pair for pair in pairs for _ in range(2)]
    later = cr.training_rows(blocks, ["2"], pd.Timestamp("2017-03-06"))
    assert later.query_ids.tolist() == ["2/H30", "2/H30"]
    assert later.labels.tolist() == [0.0, 1.0]


def test_training_rows_refuse_campaigns_without_redemptions(tables: ce.CouponTables) -> None:
    blocks = cr.campaign_blocks(tables, ce.coupon_index(tables), ["2"])
    with pytest.raises(ValueError, match="no household redeemed"):
        cr.training_rows(blocks, ["2"], pd.Timestamp("2017-03-01"))


def test_query_matrices_pad_short_queries() -> None:
    scores, labels = cr.query_matrices(
        np.array([3.0, 1.0, 2.0, 5.0, 4.0]),
        np.array([True, False, False, False, True]),
        np.array(["b", "b", "b", "a", "a"]),
    )
    assert scores.tolist() == [[5.0, 4.0, -np.inf], [3.0, 1.0, 2.0]]
    assert labels.tolist() == [[False, True, False], [True, False, False]]


def made_up_rows(queries: int = 60, coupons: int = 6, seed: int = 0) -> cr.TrainingRows:
    """One redeemed coupon per query; product_lines is high exactly on it, the rest noise;
    the first half of the queries Type A, the rest Type B."""
    rng = np.random.default_rng(seed)
    features = rng.random((queries * coupons, len(FEATURES)))
    labels = np.zeros(queries * coupons)
    labels[np.arange(queries) * coupons + rng.integers(0, coupons, queries)] = 1.0
    features[:, FEATURES.index("product_lines")] += 3 * labels
    query_ids = np.repeat([f"1/H{query:03d}" for query in range(queries)], coupons)
    types = np.where(np.arange(queries * coupons) < queries * coupons // 2, "Type A", "Type B")
    return cr.TrainingRows(features, labels, query_ids, types)


TYPES = ("Type B", "Type C", "Type B", "Type A", "Type A", "Type B", "Type A")


def made_up_blocks(members: int = 20, coupons: int = 6) -> dict[str, cr.CampaignBlock]:
    """Campaigns a week apart, of `TYPES`; in each, every member redeems one coupon two days
    after the start, on which product_lines is high (Type A) or coupon_size is (Type B/C)."""
    rng = np.random.default_rng(0)
    blocks = {}
    for number, kind in enumerate(TYPES, start=1):
        start = pd.Timestamp("2017-01-02") + pd.Timedelta(days=7 * number)
        features = rng.random((members, coupons, len(FEATURES)))
        chosen = rng.integers(0, coupons, members)
        signal = "product_lines" if kind == "Type A" else "coupon_size"
        features[np.arange(members), chosen, FEATURES.index(signal)] += 3
        dates = np.full((members, coupons), np.datetime64("NaT"), dtype="datetime64[ns]")
        dates[np.arange(members), chosen] = np.datetime64(start + pd.Timedelta(days=2))
        task = ce.Campaign(
            str(number), kind, start, np.array([f"H{m}" for m in range(members)]),
            np.arange(coupons), np.arange(coupons).astype(str), dates == dates,
        )  # fmt: skip
        blocks[str(number)] = cr.CampaignBlock(task, features, dates)
    return blocks


def test_rolling_folds_fit_only_on_what_came_before() -> None:
    blocks = made_up_blocks()
    folds = cr.rolling_folds(blocks, pd.Timestamp("2018-01-01"))
    # campaign 3 is the first with two earlier campaigns; campaign 4 (the first Type A) has no
    # earlier Type A campaign to fit its group's own rows
    assert [fold.campaign_id for fold in folds] == ["3", "5", "6", "7"]
    six = folds[2]
    assert six.group == "Type B/C"
    assert six.fit_campaigns == ("1", "2", "3", "4", "5")
    assert {query.split("/")[0] for query in six.fit.query_ids} == set(six.fit_campaigns)
    assert {query.split("/")[0] for query in six.validation.query_ids} == {"6"}
    # a redemption two days after campaign 6's start is no label of a fold it fits
    late = dict(blocks)
    dates = blocks["5"].redeemed_on.copy()
    dates[0] = np.datetime64("NaT")
    dates[0, 0] = np.datetime64(blocks["6"].task.start + pd.Timedelta(days=1))
    late["5"] = cr.CampaignBlock(blocks["5"].task, blocks["5"].features, dates)
    fold = next(
        f for f in cr.rolling_folds(late, pd.Timestamp("2018-01-01")) if f.campaign_id == "6"
    )
    assert "5/H0" not in set(fold.fit.query_ids)


def test_each_group_selects_its_own_signal() -> None:
    folds = cr.rolling_folds(made_up_blocks(), pd.Timestamp("2018-01-01"))
    type_a, type_bc = cr.choose(folds, "Type A"), cr.choose(folds, "Type B/C")
    assert type_a.features[0] == "product_lines"
    assert type_bc.features[0] == "coupon_size"
    assert set(type_a.per_setting) == {(rows, l2) for rows in cr.FIT_ON for l2 in cr.L2_GRID}
    assert type_a.score == max(score for _, score in type_a.per_setting.values()) == 1.0


def test_fitting_on_own_rows_keeps_the_groups_rows() -> None:
    rows = made_up_rows()
    own = cr.Choice("Type A", ("product_lines",), 1.0, "own")
    both = cr.Choice("Type A", ("product_lines",), 1.0, "all")
    only_a = cr.fit(rows.where(rows.types == "Type A"), ("product_lines",), 1.0)
    assert cr.fit_group(rows, own).weights == pytest.approx(only_a.weights)
    assert cr.fit_group(rows, both).weights != pytest.approx(only_a.weights)


def test_fitted_ranker_puts_the_redeemed_coupon_first() -> None:
    ranker = cr.fit(made_up_rows(), ("product_lines",), 1.0)
    test = made_up_rows(queries=10, seed=1)
    scores = ranker.predict(test.features[:, [FEATURES.index("product_lines")]])
    labels = test.labels.reshape(10, 6) > 0
    assert ce.ranking_metrics(scores.reshape(10, 6), labels)["ndcg@10"].tolist() == [1.0] * 10


def test_cached_fold_designs_score_as_the_served_fit() -> None:
    folds = cr.rolling_folds(made_up_blocks(), pd.Timestamp("2018-01-01"))
    chosen = ("coupon_size", "category_share")
    candidates = ("product_lines", "product_rel", "type_share")
    for fit_on in cr.FIT_ON:
        cached = np.hstack(
            [
                cr.fold_design(fold, fit_on).ndcg(
                    [FEATURES.index(name) for name in chosen],
                    [FEATURES.index(name) for name in candidates],
                    10.0,
                )
                for fold in folds
                if fold.group == "Type B/C"
            ]
        )
        for row, name in enumerate(candidates):
            choice = cr.Choice("Type B/C", (*chosen, name), 10.0, fit_on)
            assert cached[row] == pytest.approx(cr.fold_ndcg(folds, choice))


def test_a_design_reused_across_selection_steps_scores_as_fresh_ones() -> None:
    fold = next(f for f in cr.rolling_folds(made_up_blocks(), pd.Timestamp("2018-01-01"))
                if f.group == "Type B/C")  # fmt: skip
    reused = cr.fold_design(fold, "all")
    columns = [FEATURES.index(name) for name in ("coupon_size", "category_share", "type_rel")]
    rest = [FEATURES.index(name) for name in ("product_lines", "product_rel", "type_share")]
    for step in range(len(columns) + 1):
        warm = reused.ndcg(columns[:step], [*columns[step:], *rest], 0.1)
        fresh = cr.fold_design(fold, "all").ndcg(columns[:step], [*columns[step:], *rest], 0.1)
        assert warm == pytest.approx(fresh, abs=1e-12)
    assert ((*columns, rest[0]), 0.1) in reused.fitted


def test_only_the_latest_folds_of_each_group_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = made_up_blocks()
    every = [fold.campaign_id for fold in cr.rolling_folds(blocks, pd.Timestamp("2018-01-01"))]
    monkeypatch.setattr(cr, "MAX_FOLDS", 1)
    kept = cr.rolling_folds(blocks, pd.Timestamp("2018-01-01"))
    # Type A folds 5 and 7, Type B/C 3 and 6: the latest of each, in order of start
    assert every == ["3", "5", "6", "7"]
    assert [(fold.campaign_id, fold.group) for fold in kept] == [("6", "Type B/C"), ("7", "Type A")]


def test_the_served_fit_matches_scipys_logistic_regression() -> None:
    rows = made_up_rows()
    names = ("product_lines", "coupon_size", "category_rel")
    ours = cr.fit(rows, names, 3.0)
    reference = fit_linear(rows.features[:, [FEATURES.index(n) for n in names]], rows.labels,
                           names, l2=3.0)  # fmt: skip
    assert ours.weights == pytest.approx(reference.weights, abs=1e-4)
    assert ours.bias == pytest.approx(reference.bias, abs=1e-4)
    assert ours.means == pytest.approx(reference.means)


RISING = {"a": 0.1, "b": 0.2, "c": 0.3, "ca": 0.4, "cb": 0.35, "cab": 0.5}


@pytest.mark.parametrize(
    ("scores", "most", "chosen", "best"),
    [
        # adds b (best alone), then a (raises), stops when c lowers the score
        ({"a": 0.2, "b": 0.5, "c": 0.1, "ba": 0.6, "bc": 0.55, "bac": 0.58}, 3, ("b", "a"), 0.6),
        # a tie goes to the earlier candidate; no gain after it: one feature
        ({"a": 0.5, "b": 0.5, "c": 0.1, "ab": 0.5, "ac": 0.4}, 3, ("a",), 0.5),
        # every candidate raises it: all three
        (
            {"a": 0.1, "b": 0.2, "c": 0.3, "ca": 0.4, "cb": 0.35, "cab": 0.5},
            3,
            ("c", "a", "b"),
            0.5,
        ),
        # ... unless bounded
        ({"a": 0.1, "b": 0.2, "c": 0.3, "ca": 0.4, "cb": 0.35, "cab": 0.5}, 2, ("c", "a"), 0.4),
    ],
)
def test_forward_selection(scores, most, chosen, best) -> None:
    def score(names: tuple[str, ...], rest: list[str]) -> np.ndarray:
        return np.array([scores.get("".join((*names, name)), 0.0) for name in rest])

    assert cr.forward_selection(score, ("a", "b", "c"), most) == (chosen, best)
