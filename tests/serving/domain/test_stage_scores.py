"""An offers response's score for a second-stage candidate: the ranker's logit (plus the
value and lever terms), never the offset that ranks candidates above the other offers; the
order stays the one the offset gives."""

import asyncio
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from perkrank.config import AlsConfig, InteractionConfig, ServeConfig
from perkrank.features.interactions import cutoff_features
from perkrank.features.loader import load_dataset
from perkrank.features.synthetic import generate
from perkrank.models import scoring
from perkrank.models.als import fit_als
from perkrank.models.bundle import Bundle
from perkrank.models.popularity import fit_popularity
from perkrank.models.second_stage import CANDIDATE_OFFSET, member_candidates
from perkrank.serving.domain.catalog import catalog_from_dataset
from perkrank.serving.domain.ranking import OfferRanker, OfferRequest
from perkrank.serving.state.memory import MemoryStateStore
from perkrank.training.ranker_step import served_stage
from tests.models.flagged_ranker import flagged

CUTOFF = date(2025, 4, 1)
DAY = CUTOFF - timedelta(days=1)
NOW = datetime(2025, 3, 31, 12, tzinfo=UTC).timestamp()
LIMIT = 10


@pytest.fixture(scope="module")
def ranker(tmp_path_factory: pytest.TempPathFactory) -> OfferRanker:
    data_dir = tmp_path_factory.mktemp("stage_scores") / "data"
    generate(data_dir, members=300, months=3, seed=5, start=date(2025, 1, 1))
    dataset = load_dataset(data_dir)
    moment = datetime.combine(CUTOFF, datetime.min.time())
    data = cutoff_features(dataset, moment, InteractionConfig()).data
    bundle = Bundle(
        ranker=fit_als(data, AlsConfig(), seed=5, threads=1),
        fallback=fit_popularity(data),
        second_stage=served_stage(dataset, CUTOFF, flagged(2)),
    )
    offers = dataset.offers.assign(
        valid_from=dataset.offers["valid_from"].min(), valid_to=dataset.offers["valid_to"].max()
    )  # every offer valid on DAY: many candidates per member
    catalog = catalog_from_dataset(replace(dataset, offers=offers), bundle)
    settings = ServeConfig(
        catalog_date=DAY, value_weight=0.5, app_api_keys="test:app-key-for-tests-0001"
    )
    return OfferRanker(bundle, catalog, settings)


def expected_scores(ranker: OfferRanker, member: str) -> dict[str, float]:
    """Each eligible offer's score computed apart: the linear ranker's logit on the
    candidate's feature row, else the blend's score; plus the value term."""
    bundle, stage = ranker.bundle, ranker.bundle.second_stage
    region, tier = ranker.profile(OfferRequest(member, "app", LIMIT))
    day = ranker.day(NOW)
    segment = ranker.segment(region, tier, day, ranker.tenure_days(member, day))
    row = bundle.ranker.member_row(member)
    repeat = scoring.repeat_scores(bundle.ranker, row, segment.item_rows)
    blend = scoring.scores(
        bundle.ranker.member_vectors[row], segment.vectors, segment.biases, repeat
    )
    chosen, features = member_candidates(
        stage.stats,
        stage.sizes,
        stage.member_row(member),
        segment.stage_items,
        segment.stage_flags,
        blend,
    )
    scores = blend.astype(np.float64)
    scores[chosen] = stage.ranker.predict(features)
    scores += 0.0 if segment.adjustments is None else segment.adjustments
    return {
        ranker.catalog.offers[offer_row].offer_id: float(score)
        for offer_row, score in zip(segment.rows.tolist(), scores, strict=True)
    }


def test_a_candidates_score_is_its_logit_and_the_order_keeps_candidates_first(ranker):
    stage = ranker.bundle.second_stage
    members = [
        member
        for member in stage.stats.member_ids.tolist()
        if stage.member_row(member) is not None and ranker.bundle.ranker.member_row(member)
    ][:25]
    candidates_shown = 0
    for member in members:
        request = OfferRequest(member, "app", LIMIT)
        ranking = asyncio.run(ranker.rank(MemoryStateStore(), request, (), NOW))
        assert ranking.personalized and len(ranking.offers) == LIMIT
        region, tier = ranker.profile(request)
        day = ranker.day(NOW)
        segment = ranker.segment(region, tier, day, ranker.tenure_days(member, day))
        order = ranker.shortlist(member, segment, ranker.pool_size(LIMIT)).personalized
        keys = dict(zip(order.rows, order.scores, strict=True))
        expected = expected_scores(ranker, member)
        for served in ranking.offers:
            offer_id = served.offer.offer_id
            assert served.score == pytest.approx(expected[offer_id], abs=1e-6), (member, offer_id)
            assert abs(served.score) < CANDIDATE_OFFSET / 2
            key = keys[ranker.catalog.offer_rows[offer_id]]
            candidates_shown += key > CANDIDATE_OFFSET / 2
        ranked_keys = [keys[ranker.catalog.offer_rows[s.offer.offer_id]] for s in ranking.offers]
        assert ranked_keys == sorted(ranked_keys, reverse=True), member
    assert candidates_shown > 50, "hardly any second-stage candidate shown: the test is blind"
