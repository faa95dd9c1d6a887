"""The live settings port in both state stores: versioned caps and catalogs, audit, reload requests.

Each test runs against MemoryStateStore and RedisStateStore (the `store` fixture); the last
ones check what only Redis has: the key layout and writers in separate clients.
"""

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from perkrank.config import CapRule, CapsConfig
from perkrank.lever_config import Lever, LeversConfig
from perkrank.serving.state.keys import live_history_key, live_setting_key, live_versions_key
from perkrank.serving.state.live_records import (
    CATALOGS_KEPT,
    HISTORY_LENGTH,
    CapsVersion,
    LiveVersions,
)
from perkrank.serving.state.redis_store import RedisStateStore

NOW = 1_780_000_000.0
WEEKLY = CapsConfig(
    rules=(CapRule(name="member_offer_week", scope="member_offer", limit=3, window="week"),)
)
DAILY = CapsConfig(
    rules=(
        CapRule(name="member_offer_week", scope="member_offer", limit=5, window="week"),
        CapRule(name="partner_day", scope="member_partner", limit=2, window="day"),
    )
)
OFFERS = [{"offer_id": "o-1", "title": "10% back"}, {"offer_id": "o-2", "title": "2x points"}]


def caps_of(limit: int) -> CapsConfig:
    return CapsConfig(rules=(CapRule(name="cap", scope="offer_total", limit=limit, window="day"),))


def test_a_fresh_store_holds_no_live_settings(store):
    assert store.live_versions() == LiveVersions(caps=0, catalog=0, reload=0)
    assert store.get_caps() is None
    assert store.get_catalog() is None
    assert store.caps_history(10) == []


def test_levers_are_versioned_and_audited_apart_from_caps(store):
    boost = LeversConfig(
        levers=(Lever(name="boost", target="partner", value="P1", multiplier=2.0),)
    )
    store.seed_caps(WEEKLY, "startup", NOW)

    assert store.get_levers() is None
    first = store.put_levers(boost, "marketing", NOW + 1)
    second = store.put_levers(LeversConfig(), "ops", NOW + 2)

    assert (first.version, first.levers, first.actor, first.at) == (1, boost, "marketing", NOW + 1)
    assert store.get_levers() == second
    assert store.live_versions() == LiveVersions(caps=1, catalog=0, reload=0, levers=2)
    newest, oldest = store.levers_history(10)
    assert (newest.version, newest.actor, newest.new) == (2, "ops", {"levers": []})
    assert newest.old == boost.model_dump(mode="json")
    assert oldest.old is None
    assert [change.version for change in store.caps_history(10)] == [1]


def test_seeding_writes_version_1_only_when_no_caps_are_stored(store):
    first = store.seed_caps(WEEKLY, "startup", NOW)
    again = store.seed_caps(DAILY, "startup", NOW + 1)

    assert (first.version, first.caps, first.actor, first.at) == (1, WEEKLY, "startup", NOW)
    assert again == first
    assert store.live_versions().caps == 1
    assert len(store.caps_history(10)) == 1


def test_putting_caps_makes_the_next_version_and_audits_old_and_new(store):
    store.seed_caps(WEEKLY, "startup", NOW)

    stored = store.put_caps(DAILY, "marketing", NOW + 60)

    assert (stored.version, stored.caps, stored.actor) == (2, DAILY, "marketing")
    assert store.get_caps() == stored
    assert store.live_versions().caps == 2
    newest, oldest = store.caps_history(10)
    assert (newest.version, newest.actor, newest.at) == (2, "marketing", NOW + 60)
    assert newest.old == {"rules": [rule.model_dump() for rule in WEEKLY.rules]}
    assert newest.new == {"rules": [rule.model_dump() for rule in DAILY.rules]}
    assert (oldest.version, oldest.actor, oldest.old) == (1, "startup", None)
    assert store.seed_caps(WEEKLY, "startup", NOW + 120) == stored


def test_history_keeps_the_newest_changes_up_to_its_length(store):
    for limit in range(HISTORY_LENGTH + 5):
        store.put_caps(caps_of(limit), "ops", NOW + limit)

    history = store.caps_history(HISTORY_LENGTH + 50)

    assert len(history) == HISTORY_LENGTH
    assert history[0].version == HISTORY_LENGTH + 5
    assert history[-1].version == 6
    assert [change.version for change in store.caps_history(3)] == [105, 104, 103]


def test_concurrent_puts_each_get_their_own_version(store):
    with ThreadPoolExecutor(max_workers=8) as pool:
        versions = list(
            pool.map(lambda limit: store.put_caps(caps_of(limit), "ops", NOW).version, range(40))
        )

    assert sorted(versions) == list(range(1, 41))
    history = store.caps_history(50)
    assert [change.version for change in history] == list(range(40, 0, -1))
    for older, newer in zip(history[1:], history[:-1], strict=True):
        assert newer.old == older.new  # each change starts from the version before it


def test_publishing_a_catalog_versions_it_and_audits_a_summary(store):
    first = store.publish_catalog(OFFERS[:1], "a" * 64, "ops", NOW)
    second = store.publish_catalog(OFFERS, "b" * 64, "catalog-team", NOW + 1)

    assert (first.version, second.version) == (1, 2)
    current = store.get_catalog()
    assert (current.offers, current.sha256, current.actor) == (OFFERS, "b" * 64, "catalog-team")
    assert store.live_versions() == LiveVersions(caps=0, catalog=2, reload=0)
    newest, oldest = store.catalog_history(10)
    assert newest.old == {"offers": 1, "sha256": "a" * 64}
    assert newest.new == {"offers": 2, "sha256": "b" * 64}
    assert (oldest.version, oldest.old) == (1, None)


def test_reload_requests_bump_the_generation(store):
    assert [store.request_reload() for _ in range(3)] == [1, 2, 3]
    assert store.live_versions().reload == 3


@pytest.mark.parametrize("store", ["redis"], indirect=True)
def test_redis_live_settings_live_where_the_key_layout_says(store, redis_url, redis_key_prefix):
    store.seed_caps(WEEKLY, "startup", NOW)
    store.publish_catalog(OFFERS, "c" * 64, "ops", NOW)
    store.request_reload()
    client = redis.Redis.from_url(redis_url, decode_responses=True)

    versions = client.hgetall(live_versions_key(redis_key_prefix))
    caps = json.loads(client.get(live_setting_key(redis_key_prefix, "caps")))
    history = client.lrange(live_history_key(redis_key_prefix, "catalog"), 0, -1)

    assert versions == {"caps": "1", "catalog": "1", "reload": "1"}
    value = {"rules": [rule.model_dump(mode="json") for rule in WEEKLY.rules]}  # as before
    assert caps == {"version": 1, "actor": "startup", "at": NOW, "value": value}
    assert [json.loads(entry)["new"] for entry in history] == [{"offers": 2, "sha256": "c" * 64}]
    assert set(client.scan_iter(f"{redis_key_prefix}*")) == {
        f"{redis_key_prefix}:live:versions",
        f"{redis_key_prefix}:live:caps",
        f"{redis_key_prefix}:live:caps:history",
        f"{redis_key_prefix}:live:catalog",
        f"{redis_key_prefix}:live:catalog:history",
        f"{redis_key_prefix}:live:catalog:v:1",
    }
    client.close()


def test_the_last_published_catalogs_are_kept_whole_for_rollback(store):
    for version in range(1, CATALOGS_KEPT + 3):
        store.publish_catalog([{"offer_id": f"o-{version}"}], f"{version:064d}", "ops", NOW)

    newest = CATALOGS_KEPT + 2
    assert store.get_catalog_version(newest) == store.get_catalog()
    assert store.get_catalog_version(3).offers == [{"offer_id": "o-3"}]
    assert store.get_catalog_version(3).sha256 == f"{3:064d}"
    assert store.get_catalog_version(2) is None  # dropped: older than the last CATALOGS_KEPT
    assert store.get_catalog_version(newest + 1) is None


def test_processes_starting_together_seed_the_caps_once(redis_url, redis_key_prefix):
    def start_process(limit: int) -> CapsVersion:
        """What a starting process does, with connections of its own."""
        store = RedisStateStore(redis_url, redis_key_prefix, 2000)
        return store.seed_caps(caps_of(limit), "startup", NOW)

    with ThreadPoolExecutor(max_workers=6) as pool:
        seeded = list(pool.map(start_process, range(6)))

    assert {stored.version for stored in seeded} == {1}
    assert len({stored.caps for stored in seeded}) == 1  # every process got the one written
