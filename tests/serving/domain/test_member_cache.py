"""A known member's pre-selection work kept for their next request (`MemberCache`): the
answers equal a ranker's that keeps nothing, through opt-outs, caps, consents, a new day, a
published catalog and another model; the cache stays within its size."""

import asyncio
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from perkrank.config import AlsConfig, CapRule, InteractionConfig, ServeConfig
from perkrank.experiment_config import EpsilonExploration
from perkrank.features.interactions import cutoff_features
from perkrank.features.loader import load_dataset
from perkrank.features.synthetic import generate
from perkrank.models.als import fit_als
from perkrank.models.bundle import Bundle
from perkrank.models.popularity import fit_popularity
from perkrank.serving.domain.catalog import Catalog, catalog_from_dataset, with_offers
from perkrank.serving.domain.member_cache import MemberCache
from perkrank.serving.domain.ranking import OfferRanker, OfferRequest
from perkrank.serving.domain.selection import Preferences
from perkrank.serving.state.memory import MemoryStateStore
from perkrank.training.ranker_step import served_stage
from tests.models.flagged_ranker import flagged

CUTOFF = date(2025, 4, 1)
NOW = datetime(2025, 3, 31, 12, tzinfo=UTC).timestamp()
DAY_SECONDS = 86_400
RULES = (
    CapRule(name="member_offer_day", scope="member_offer", limit=1, window="day"),
    CapRule(name="partner_week", scope="member_partner", limit=3, window="week"),
)


def settings(**overrides) -> ServeConfig:
    return ServeConfig(app_api_keys="test:app-key-for-tests-0001", value_weight=0.5, **overrides)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> tuple[Bundle, Bundle, Catalog]:
    """Two bundles with a second stage (seeds 5 and 6) and a catalog valid on every day."""
    data_dir = tmp_path_factory.mktemp("member_cache") / "data"
    generate(data_dir, members=300, months=3, seed=5, start=date(2025, 1, 1))
    dataset = load_dataset(data_dir)
    moment = datetime.combine(CUTOFF, datetime.min.time())
    data = cutoff_features(dataset, moment, InteractionConfig()).data
    stage = served_stage(dataset, CUTOFF, flagged(2))
    bundles = [
        Bundle(
            ranker=fit_als(data, AlsConfig(), seed=seed, threads=1),
            fallback=fit_popularity(data),
            second_stage=stage,
        )
        for seed in (5, 6)
    ]
    first = dataset.offers["valid_from"].min()
    last = first + (datetime.fromtimestamp(NOW, UTC).date() - first.date())  # NOW's day
    offers = dataset.offers.assign(
        valid_from=first,
        valid_to=[last + timedelta(days=i % 3) for i in range(len(dataset.offers))],
    )  # every offer valid on NOW's day, two thirds the next day, a third the day after
    catalog = catalog_from_dataset(replace(dataset, offers=offers), bundles[0])
    return bundles[0], bundles[1], catalog


def known_members(ranker: OfferRanker, count: int) -> list[str]:
    stage = ranker.bundle.second_stage
    return [
        member
        for member in ranker.catalog.member_profiles
        if stage.member_row(member) is not None
        and ranker.bundle.ranker.member_row(member) is not None
    ][:count]


def answer(
    ranker: OfferRanker,
    store: MemoryStateStore,
    request: OfferRequest,
    now: float,
    exploration: EpsilonExploration | None = None,
):
    """Everything a response shows of one ranking."""
    ranking = asyncio.run(ranker.rank(store, request, RULES, now, exploration=exploration, seed=7))
    offers = [(s.offer.offer_id, s.rank, s.score, s.reason, s.propensity) for s in ranking.offers]
    return ranking.personalized, offers, ranking.suppressed


def both(bundle: Bundle, catalog: Catalog, **overrides) -> tuple[OfferRanker, OfferRanker]:
    """A ranker that keeps members' work and one that keeps none."""
    cached = OfferRanker(bundle, catalog, settings(**overrides))
    uncached = OfferRanker(bundle, catalog, settings(member_cache_size=0, **overrides))
    return cached, uncached


def test_cached_answers_equal_uncached_through_opt_outs_caps_and_days(served):
    bundle, _, catalog = served
    cached, uncached = both(bundle, catalog)
    stores = MemoryStateStore(), MemoryStateStore()
    members = known_members(cached, 12)
    assert len(members) == 12
    requests = [
        OfferRequest(member, channel, limit)
        for member in members
        for channel, limit in (("app", 10), ("web", 10), ("app", 5))
    ]
    changes = {
        1: Preferences(opted_out_categories=frozenset({catalog.offers[0].category})),
        2: Preferences(personalization=False),
        3: Preferences(opted_out_partners=frozenset({catalog.offers[1].partner_id})),
        4: Preferences(purchase_reasons=False),
        5: Preferences(opt_out_all=True),
    }
    answers = 0
    for day in range(3):  # a new day is another segment: recomputed, never yesterday's
        now = NOW + day * DAY_SECONDS
        for round_number in range(3):  # repeats: served from the cache, capped by the store
            for number, request in enumerate(requests):
                if round_number == 1 and number // 3 in changes:  # preferences change
                    for store in stores:
                        store.set_preferences(request.member_id, changes[number // 3])
                got = answer(cached, stores[0], request, now)
                assert got == answer(uncached, stores[1], request, now), (day, request)
                answers += bool(got[1])
    assert cached.members.hits >= 2 * 3 * len(requests) - len(requests)
    assert len(uncached.members) == 0 and uncached.members.hits == 0
    assert answers > len(requests) * 3, "hardly any offers: the comparison is blind"


def test_a_hit_skips_the_members_scoring_and_gives_the_same_shortlist(served, monkeypatch):
    bundle, _, catalog = served
    ranker = OfferRanker(bundle, catalog, settings(catalog_date=CUTOFF - timedelta(days=1)))
    member = known_members(ranker, 1)[0]
    request = OfferRequest(member, "app", 10)
    first = answer(ranker, MemoryStateStore(), request, NOW)
    scored = []
    original = ranker.shortlist
    monkeypatch.setattr(ranker, "shortlist", lambda *a, **k: scored.append(a) or original(*a, **k))
    assert answer(ranker, MemoryStateStore(), request, NOW + 3600) == first
    assert scored == [] and ranker.members.hits == 1
    answer(ranker, MemoryStateStore(), replace(request, limit=5), NOW)  # another pool
    assert len(scored) == 1 and len(ranker.members) == 2


def test_exploration_samples_the_kept_order_without_changing_it(served):
    bundle, _, catalog = served
    cached, uncached = both(bundle, catalog)
    exploration = EpsilonExploration(kind="epsilon", epsilon=0.5)
    for member in known_members(cached, 5):
        request = OfferRequest(member, "app", 10)
        for _ in range(2):
            got = answer(cached, MemoryStateStore(), request, NOW, exploration)
            assert got == answer(uncached, MemoryStateStore(), request, NOW, exploration)
            plain = answer(cached, MemoryStateStore(), request, NOW)
            assert plain == answer(uncached, MemoryStateStore(), request, NOW)


def test_a_published_catalog_or_another_model_starts_with_nothing_kept(served):
    bundle, other_bundle, catalog = served
    old = OfferRanker(bundle, catalog, settings())
    members = known_members(old, 6)
    for member in members:
        answer(old, MemoryStateStore(), OfferRequest(member, "app", 10), NOW)
    served_ids = {
        offer_id
        for member in members
        for offer_id, *_ in answer(old, MemoryStateStore(), OfferRequest(member, "app", 10), NOW)[1]
    }
    assert old.members.hits == len(members)
    kept = [offer for offer in catalog.offers if offer.offer_id not in served_ids]
    published = with_offers(catalog, kept, bundle)
    for new_bundle, new_catalog in ((bundle, published), (other_bundle, catalog)):
        new, uncached = both(new_bundle, new_catalog)
        assert len(new.members) == 0
        for member in members:
            request = OfferRequest(member, "app", 10)
            got = answer(new, MemoryStateStore(), request, NOW)
            assert got == answer(uncached, MemoryStateStore(), request, NOW)
            if new_catalog is published:
                assert not {offer_id for offer_id, *_ in got[1]} & served_ids
        assert new.members.hits == 0


def test_the_cache_keeps_at_most_its_size_least_recently_used_first(served):
    bundle, _, catalog = served
    ranker = OfferRanker(bundle, catalog, settings(member_cache_size=3))
    members = known_members(ranker, 5)
    for member in members[:3]:
        answer(ranker, MemoryStateStore(), OfferRequest(member, "app", 10), NOW)
    answer(ranker, MemoryStateStore(), OfferRequest(members[0], "app", 10), NOW)  # used again
    for member in members[3:]:
        answer(ranker, MemoryStateStore(), OfferRequest(member, "app", 10), NOW)
    assert len(ranker.members) == 3
    hits = ranker.members.hits
    answer(ranker, MemoryStateStore(), OfferRequest(members[0], "app", 10), NOW)
    assert ranker.members.hits == hits + 1  # kept: used after members[1] and [2]
    answer(ranker, MemoryStateStore(), OfferRequest(members[1], "app", 10), NOW)
    assert ranker.members.hits == hits + 1  # dropped
    assert len(ranker.members) == 3


def test_an_entry_of_another_segment_object_is_not_used():
    cache = MemberCache(4)
    assert cache.get("m", object(), 60, 0) is None  # type: ignore[arg-type]
    assert (cache.hits, cache.misses) == (0, 1)


def test_the_cache_size_is_validated():
    with pytest.raises(ValueError):
        settings(member_cache_size=-1)
    assert settings(member_cache_size=0).member_cache_size == 0
