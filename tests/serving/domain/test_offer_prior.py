"""The offer-level response prior in ranking: off without rates, no change when every offer
responds alike, and a strongly responding offer rises (scores gain weight · log(rate / g))."""

import numpy as np
import pytest

from perkrank.models.offer_rates import OfferRates
from perkrank.serving.domain.catalog import build_catalog
from perkrank.serving.domain.ranking import OfferRanker, OfferRequest
from perkrank.serving.state.memory import MemoryStateStore
from tests.serving.domain.test_ranking import (
    MEMBERS,
    NOW,
    OFFERS,
    make_bundle,
    offer_ids,
    rank,
    settings,
)

OFFER_IDS = np.array(["beauty", "grocery", "bakery"])
MEMBERS_TO_RANK = ["alice", "bob", "carol", "dave"]  # dave: unknown to everyone (cold)


def ranked(rates: OfferRates | None) -> dict[str, tuple[list[str], list[float]]]:
    bundle = make_bundle()
    bundle.offer_rates = rates
    ranker = OfferRanker(bundle, build_catalog(OFFERS, MEMBERS, bundle), settings())
    answers = {}
    for member in MEMBERS_TO_RANK:
        ranking = rank(ranker, MemoryStateStore(), OfferRequest(member, "app", 3), (), NOW)
        answers[member] = (offer_ids(ranking), [served.score for served in ranking.offers])
    return answers


def test_without_rates_or_with_equal_rates_every_order_and_score_is_unchanged():
    alike = OfferRates.fit(OFFER_IDS, [500, 500, 500], [50, 50, 50], weight=3.0)

    assert ranked(alike) == ranked(None)


def test_a_strongly_responding_offer_rises_by_the_weighted_log_lift():
    rates = OfferRates.fit(OFFER_IDS, [1000, 1000, 1000], [20, 20, 400], weight=1.0)
    before, after = ranked(None), ranked(rates)

    lift = dict(zip(OFFER_IDS.tolist(), rates.log_lift().tolist(), strict=True))
    assert after["alice"][0] == ["bakery", "beauty", "grocery"]
    assert before["alice"][0] == ["beauty", "bakery", "grocery"]
    for member in MEMBERS_TO_RANK:
        old = dict(zip(*before[member], strict=True))
        new = dict(zip(*after[member], strict=True))
        assert new == pytest.approx({offer: old[offer] + lift[offer] for offer in old}, abs=1e-5)
