"""Ranking one request: both orders, cold start, repeat boost, reasons, what the store gets."""

import asyncio
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
import scipy.sparse as sp

from perkrank.config import CapRule, ServeConfig
from perkrank.features.vocabulary import tenure_feature_after
from perkrank.models.bundle import Bundle
from perkrank.models.factors import Factors
from perkrank.serving.domain.catalog import Member, Offer, build_catalog, day_number
from perkrank.serving.domain.ranking import OfferRanker, OfferRequest
from perkrank.serving.domain.reasons import offer_reason
from perkrank.serving.domain.segments import best_order
from perkrank.serving.domain.selection import Preferences, Selection, SelectionRequest
from perkrank.serving.state.memory import MemoryStateStore

TODAY = date(2026, 6, 15)
NOW = datetime(2026, 6, 15, 12, tzinfo=UTC).timestamp()
ITEMS = ["P1|Beauty", "P2|Grocery", "P3|Bakery"]


def settings(**overrides):
    values = {"catalog_date": TODAY, "app_api_keys": "test:app-key-for-tests-0001"}
    return ServeConfig(**values | overrides)


def make_bundle():
    """alice likes Beauty, bob Grocery, bob bought Bakery often; cold north ~ Grocery, unless
    a member of 1-3 years (~ Beauty)."""
    ranker = Factors(
        member_ids=["alice", "bob"],
        member_vectors=[[1.0, 0.0], [0.0, 1.0]],
        item_ids=ITEMS,
        item_vectors=[[1.0, 0.0], [0.0, 1.0], [0.3, 0.3]],
        item_biases=[0.0, 0.0, 0.0],
        member_feature_ids=["region=north", "region=south", "tier=base", "tenure=1-3y"],
        member_feature_vectors=[[0.0, 0.5], [0.5, 0.0], [0.0, 0.0], [1.0, 0.0]],
        repeat=sp.csr_matrix(np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 9.0]])),
        repeat_weight=1.0,
    )
    fallback = Factors(
        member_ids=[],
        member_vectors=np.zeros((0, 1)),
        item_ids=ITEMS,
        item_vectors=[[0.1], [0.2], [0.3]],
        item_biases=[0.0, 0.0, 0.0],
        member_feature_ids=["tier=base", "tier=vip"],
        member_feature_vectors=[[1.0], [1.0]],
    )
    return Bundle(ranker=ranker, fallback=fallback)


def offer(offer_id, partner_id, category, partner_name, **fields):
    values = {
        "scope": "federal",
        "title": offer_id,
        "reward": "10% back",
        "min_tier": "base",
        "valid_from": TODAY - timedelta(days=1),
        "valid_to": TODAY + timedelta(days=1),
    }
    return Offer(offer_id, partner_id, partner_name, category=category, **values | fields)


OFFERS = [
    offer("beauty", "P1", "Beauty", "Glow"),
    offer("grocery", "P2", "Grocery", "FreshMart"),
    offer("bakery", "P3", "Bakery", "North Bakery"),
    offer("vip-beauty", "P1", "Beauty", "Glow", min_tier="vip"),
]
MEMBERS = {
    "alice": Member("north", "base"),
    "bob": Member("south", "base"),
    "carol": Member("north", "base", day_number(TODAY - timedelta(days=730))),
}


def make_ranker(**overrides):
    bundle = make_bundle()
    return OfferRanker(bundle, build_catalog(OFFERS, MEMBERS, bundle), settings(**overrides))


class RecordingStore(MemoryStateStore):
    """The in-process store, keeping every selection request it was asked."""

    def __init__(self):
        super().__init__()
        self.requests: list[SelectionRequest] = []

    async def select(self, request: SelectionRequest) -> Selection:
        self.requests.append(request)
        return await super().select(request)


def rank(ranker, store, request, rules, now):
    """Run `OfferRanker.rank` to completion."""
    return asyncio.run(ranker.rank(store, request, rules, now))


def offer_ids(ranking):
    return [served.offer.offer_id for served in ranking.offers]


def test_best_order_keeps_the_highest_scores_best_first_with_ties_by_row():
    scores = np.array([0.5, 0.9, 0.1, 0.9, 0.7], dtype=np.float32)
    rows = np.array([10, 11, 12, 13, 14])

    order = best_order(scores, rows, 3)

    assert order.rows == [11, 13, 14]
    assert order.scores == pytest.approx([0.9, 0.9, 0.7])


def test_best_order_returns_every_row_when_there_are_fewer_than_asked():
    scores = np.array([0.2, 0.5], dtype=np.float32)

    assert best_order(scores, np.array([0, 2]), 10).rows == [2, 0]


def test_known_member_is_ranked_by_their_vector():
    ranking = rank(make_ranker(), MemoryStateStore(), OfferRequest("alice", "app", 3), (), NOW)

    assert ranking.personalized is True
    assert offer_ids(ranking) == ["beauty", "bakery", "grocery"]
    assert [served.rank for served in ranking.offers] == [1, 2, 3]
    assert ranking.offers[0].score == pytest.approx(1.0)


def test_repeat_purchases_lift_an_item_and_say_so():
    ranking = rank(make_ranker(), MemoryStateStore(), OfferRequest("bob", "app", 3), (), NOW)

    assert offer_ids(ranking) == ["bakery", "grocery", "beauty"]
    assert ranking.offers[0].score == pytest.approx(0.3 + np.log1p(9.0))
    assert ranking.offers[0].reason == "you often buy Bakery at North Bakery"
    assert ranking.offers[1].reason == "picked for you"


def test_members_the_ranker_never_saw_are_ranked_by_region():
    ranker = make_ranker()
    store = MemoryStateStore()

    north = rank(ranker, store, OfferRequest("new-1", "app", 3, region="north"), (), NOW)
    south = rank(ranker, store, OfferRequest("new-2", "app", 3, region="south"), (), NOW)

    assert offer_ids(north)[0] == "grocery"
    assert offer_ids(south)[0] == "beauty"
    assert {served.reason for served in north.offers} == {"popular in your region"}


def test_a_listed_member_the_ranker_never_saw_is_ranked_with_their_tenure():
    ranker = make_ranker()

    carol = rank(ranker, MemoryStateStore(), OfferRequest("carol", "app", 3), (), NOW)
    stranger = rank(
        ranker, MemoryStateStore(), OfferRequest("new-1", "app", 3, region="north"), (), NOW
    )

    assert ranker.tenure_days("carol", ranker.day(NOW)) == 730
    assert ranker.tenure_days("new-1", ranker.day(NOW)) == 0
    assert offer_ids(carol)[0] == "beauty"  # north + 1-3 years
    assert offer_ids(stranger)[0] == "grocery"  # north, just signed up
    assert carol.offers[0].reason == "popular in your region"


def test_personalization_off_follows_the_fallback_order():
    store = MemoryStateStore()
    store.set_preferences("alice", Preferences(personalization=False))

    ranking = rank(make_ranker(), store, OfferRequest("alice", "app", 3), (), NOW)

    assert ranking.personalized is False
    assert offer_ids(ranking) == ["bakery", "grocery", "beauty"]
    assert ranking.offers[0].score == pytest.approx(0.3)


def test_tier_offers_are_served_to_the_tier_and_say_so():
    ranking = rank(
        make_ranker(), MemoryStateStore(), OfferRequest("alice", "app", 4, tier="vip"), (), NOW
    )

    assert "vip-beauty" in offer_ids(ranking)
    reasons = {served.offer.offer_id: served.reason for served in ranking.offers}
    assert reasons["vip-beauty"] == "VIP offer"


@pytest.mark.parametrize(
    ("request_region", "request_tier", "member_id", "expected"),
    [
        (None, None, "alice", ("north", "base")),
        ("south", "gold", "alice", ("south", "gold")),
        (None, None, "stranger", ("unknown", "base")),
        ("east", None, "stranger", ("east", "base")),
    ],
)
def test_request_overrides_member_profile_which_overrides_defaults(
    request_region, request_tier, member_id, expected
):
    request = OfferRequest(member_id, "app", 3, region=request_region, tier=request_tier)

    assert make_ranker().profile(request) == expected


def test_catalog_date_fixes_the_day_else_the_utc_date_of_now():
    fixed = make_ranker()
    today = make_ranker(catalog_date=None)
    new_year = datetime(2027, 1, 1, 0, 0, 1, tzinfo=UTC).timestamp()

    assert fixed.day(new_year) == (TODAY - date(1970, 1, 1)).days
    assert today.day(new_year) == (date(2027, 1, 1) - date(1970, 1, 1)).days


def test_store_gets_each_orders_best_pool_the_rules_and_the_partner_limit():
    store = RecordingStore()
    rules = (CapRule(name="member_offer_week", scope="member_offer", limit=3, window="week"),)
    ranker = make_ranker(
        candidate_pool_multiplier=1, candidate_pool_margin=1, max_offers_per_partner=1
    )

    rank(ranker, store, OfferRequest("alice", "web", 1), rules, NOW)

    (request,) = store.requests
    assert [candidate.offer_id for candidate in request.personalized] == ["beauty", "bakery"]
    assert [candidate.offer_id for candidate in request.fallback] == ["bakery", "grocery"]
    assert (request.member_id, request.channel, request.limit) == ("alice", "web", 1)
    assert (request.max_per_partner, request.now, tuple(request.rules)) == (1, NOW, rules)


def test_regions_nobody_knows_share_one_cached_segment():
    ranker = make_ranker()
    day = ranker.day(NOW)

    assert ranker.segment("atlantis", "base", day) is ranker.segment("lemuria", "base", day)
    assert ranker.segment("north", "base", day) is not ranker.segment("south", "base", day)


def test_members_of_one_tenure_bucket_share_a_cached_segment():
    ranker = make_ranker()
    day = ranker.day(NOW)

    assert ranker.segment("north", "base", day, 400) is ranker.segment("north", "base", day, 700)
    assert ranker.segment("north", "base", day, 0) is ranker.segment("north", "base", day, 60)
    assert ranker.segment("north", "base", day, 0) is not ranker.segment("north", "base", day, 400)


def test_a_warmed_ranker_has_built_the_segments_the_other_had_cached():
    old, new = make_ranker(), make_ranker()
    day = old.day(NOW)
    old.segment("north", "base", day, 400)
    old.segment("atlantis", "base", day)

    assert new.warm_like(old) == 2
    built = new.segments._cache
    assert set(built) == set(old.segments._cache)
    # what the requests will then look up is the segment the warm-up built, not a new one
    assert (
        new.segment("north", "base", day, 700)
        is built[("north", "base", day, tenure_feature_after(400), "base", frozenset())]
    )
    assert (
        new.segment("lemuria", "base", day)
        is built[(None, "base", day, tenure_feature_after(0), "base", frozenset())]
    )


@pytest.mark.parametrize(
    ("min_tier", "personalized", "known_member", "repeated", "reason"),
    [
        ("base", True, True, True, "you often buy Beauty at Glow"),
        ("vip", True, True, True, "you often buy Beauty at Glow"),
        ("vip", True, True, False, "VIP offer"),
        ("gold", False, True, False, "Gold offer"),
        ("base", True, True, False, "picked for you"),
        ("base", True, False, False, "popular in your region"),
        ("base", False, True, True, "popular in your region"),
    ],
)
def test_reason_prefers_habit_then_tier_then_model_then_region(
    min_tier, personalized, known_member, repeated, reason
):
    served = offer("beauty", "P1", "Beauty", "Glow", min_tier=min_tier)

    assert (
        offer_reason(
            served, personalized=personalized, known_member=known_member, repeated=repeated
        )
        == reason
    )
