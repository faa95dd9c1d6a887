"""One scorer: serving's orders equal evaluation's rankings, and the MLflow model's scores equal
`models.scoring`'s, for the same bundle, catalog and day.

The data is a small synthetic program; the ranker is built by hand with values on a 1/8 grid,
so every dot product is exact in float32 and any difference is a different member vector,
candidate set, formula or tie rule, never a rounding of one matrix product against another
(tests/scoring_setup.py). The fallback is the regional popularity fitted on the data. With a
calibration and a value weight, both sides rank by `models.value.final_scores` alike. The
second stage's parity is in test_second_stage_parity.py.
"""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from perkrank.config import ServeConfig
from perkrank.features.vocabulary import (
    TENURE_FEATURES,
    cold_member_feature_names,
    item_feature_names,
    item_id,
)
from perkrank.models import scoring, value
from perkrank.serving.domain.ranking import OfferRanker, OfferRequest
from perkrank.training.evaluation import rank_window
from perkrank.training.value_evaluation import offer_net_values
from tests.scoring_setup import DAY, K, members_of


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
