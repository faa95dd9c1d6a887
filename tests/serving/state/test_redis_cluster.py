"""What only the Redis Cluster store has: its URL, shared keys in one slot per group, and
offer-wide limits reserved in the offers' slots — never passed under concurrency, and every
reservation a request did not use given back (the contract suites run on the cluster too,
through the `store` fixture)."""

import asyncio
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
import redis
from redis.cluster import RedisCluster
from redis.crc import key_slot

from perkrank.config import CapRule, ServeConfig
from perkrank.serving.domain.events import OfferEvent
from perkrank.serving.domain.selection import Candidate, Preferences, SelectionRequest
from perkrank.serving.state.keys import (
    decisions_key,
    events_key,
    live_history_key,
    live_setting_key,
    live_versions_key,
    no_personalization_key,
    offer_cap_key,
    redeemed_key,
    suppressed_key,
)
from perkrank.serving.state.ports import StateStoreError, open_store
from perkrank.serving.state.redis_cluster import RedisClusterStateStore, cluster_nodes

NOW = datetime(2024, 5, 17, 12, tzinfo=UTC).timestamp()
A = Candidate("offer-a", "partner-1", "food")
B = Candidate("offer-b", "partner-2", "travel")
C = Candidate("offer-c", "partner-3", "fuel")
TOTAL_25 = CapRule(name="offer_total_25", scope="offer_total", limit=25, window="total")


@pytest.mark.parametrize(
    ("url", "nodes", "login"),
    [
        ("redis+cluster://10.0.0.1:7000", [("10.0.0.1", 7000)], {}),
        (
            "redis+cluster://a:7000,b:7001,[::1]:7002",
            [("a", 7000), ("b", 7001), ("::1", 7002)],
            {},
        ),
        ("redis+cluster://:s%40cret@a:7000", [("a", 7000)], {"password": "s@cret"}),
        (
            "redis+cluster://ops:pw@a:7000,b:7000",
            [("a", 7000), ("b", 7000)],
            {"username": "ops", "password": "pw"},
        ),
    ],
)
def test_cluster_url_names_its_nodes_and_credentials(url, nodes, login):
    found, credentials = cluster_nodes(url)
    assert [(node.host, node.port) for node in found] == nodes
    assert credentials == login


@pytest.mark.parametrize(
    "url", ["redis+cluster://", "redis+cluster://host", "redis+cluster://h:x", "redis://a:1"]
)
def test_malformed_cluster_url_is_refused_naming_it(url):
    with pytest.raises(ValueError, match="redis_url"):
        cluster_nodes(url)


def test_each_group_of_shared_keys_has_one_slot_of_its_own():
    def slot(key: str) -> int:
        return key_slot(key.encode())

    live = {slot(live_setting_key("p", setting, cluster=True)) for setting in ("caps", "catalog")}
    live |= {slot(live_versions_key("p", cluster=True)), slot(live_history_key("p", "caps", True))}
    privacy = {slot(suppressed_key("p", cluster=True)), slot(no_personalization_key("p", True))}
    streams = {slot(events_key("p", cluster=True)), slot(decisions_key("p", cluster=True))}
    assert len(live) == 1 and len(privacy) == 1 and len(streams) == 2
    assert live.isdisjoint(privacy | streams) and privacy.isdisjoint(streams)
    assert events_key("p") == "p:events"  # one server: the layout is unchanged


def test_open_store_picks_the_cluster_adapter_for_a_cluster_url(
    redis_cluster_url, cluster_key_prefix
):
    store = open_store(ServeConfig(redis_url=redis_cluster_url, key_prefix=cluster_key_prefix))
    assert isinstance(store, RedisClusterStateStore)
    store.ping()
    asyncio.run(store.close())


def test_an_unreachable_cluster_is_a_state_store_error_naming_it():
    with pytest.raises(StateStoreError, match=r"127\.0\.0\.1:1"):
        RedisClusterStateStore("redis+cluster://127.0.0.1:1", "perkrank-test-unreachable", 200)


def test_every_primary_without_persistence_is_named_in_a_warning(cluster_store, caplog):
    caplog.set_level("WARNING", logger="perkrank.serving")
    cluster_store.warn_without_persistence()
    nodes = {node.name for node in cluster_store._client.get_primaries()}
    assert len(caplog.records) == 3
    assert {record.getMessage().split()[3].rstrip(":") for record in caplog.records} == nodes


@pytest.fixture
def cluster_store(redis_cluster_url, cluster_key_prefix):
    store = RedisClusterStateStore(redis_cluster_url, cluster_key_prefix, 2000)
    yield store
    asyncio.run(store.close())


@pytest.fixture
def cluster_client(redis_cluster_url):
    client = RedisCluster(startup_nodes=cluster_nodes(redis_cluster_url)[0], decode_responses=True)
    yield client
    client.close()


def select_all(store, requests):
    async def gather():
        return await asyncio.gather(*(store.select(request) for request in requests))

    return asyncio.run(gather())


def request(member_id, *candidates, rules=(TOTAL_25,), limit=1):
    return SelectionRequest(member_id, "app", NOW, limit, 10, candidates, candidates, rules)


def test_200_concurrent_members_never_pass_an_offer_total_cap_and_leave_no_reservation(
    cluster_store, cluster_client, cluster_key_prefix
):
    requests = [request(f"m-{n}", A, B, C) for n in range(200)]
    selections = select_all(cluster_store, requests)
    served = Counter(offer for selection in selections for offer in selection.offer_ids)
    assert served["offer-a"] == 25  # first everywhere: reserved, hence always chosen
    for offer in ("offer-a", "offer-b", "offer-c"):
        counter = cluster_client.get(
            offer_cap_key(cluster_key_prefix, offer, TOTAL_25.name, "total")
        )
        assert served[offer] <= 25
        assert int(counter or 0) == served[offer], offer  # unused reservations released


def test_reservations_are_released_when_the_member_script_leaves_the_offer_out(
    cluster_store, cluster_client, cluster_key_prefix
):
    per_member = CapRule(name="once", scope="member_offer", limit=1, window="day")
    rules = (TOTAL_25, per_member)
    cluster_store.set_preferences("opted-out", Preferences(opt_out_all=True))
    select_all(cluster_store, [request("opted-out", A, rules=rules)])
    select_all(cluster_store, [request("m-1", A, rules=rules)] * 3)
    counter = offer_cap_key(cluster_key_prefix, "offer-a", TOTAL_25.name, "total")
    assert cluster_client.get(counter) == "1"


class FailingPipe:
    """A script pipe to a primary that is gone."""

    async def call(self, arguments):
        raise redis.ConnectionError("the primary is gone")

    async def call_many(self, calls):
        raise redis.ConnectionError("the primary is gone")


@pytest.mark.parametrize(
    ("script", "key_part"), [("select", "{m:m-1}"), ("reserve", "{o:offer-b}")]
)
def test_a_failing_call_releases_every_reservation_made(
    cluster_store, cluster_client, cluster_key_prefix, monkeypatch, script, key_part
):
    open_pipe = cluster_store._pipe

    def pipe(name, text, key):
        return FailingPipe() if name == script and key_part in key else open_pipe(name, text, key)

    monkeypatch.setattr(cluster_store, "_pipe", pipe)
    with pytest.raises(StateStoreError, match="primary is gone"):
        select_all(cluster_store, [request("m-1", A, B)])
    counter = offer_cap_key(cluster_key_prefix, "offer-a", TOTAL_25.name, "total")
    assert cluster_client.get(counter) == "0"  # reserved, then released


def test_budget_is_never_passed_by_concurrent_selects(cluster_store):
    budgeted = Candidate("offer-a", "partner-1", "food", budget=5)

    def redeem(event_id: str) -> None:
        event = OfferEvent(
            "redemption", "m-0", "offer-a", "partner-1", "food", "app", NOW, event_id
        )
        cluster_store.record_events([event], (), NOW)

    for n in range(4):
        redeem(f"r-{n}")
    before = select_all(cluster_store, [request(f"m-{n}", budgeted, rules=()) for n in range(100)])
    assert all(selection.offer_ids == ["offer-a"] for selection in before)
    redeem("r-4")
    after = select_all(cluster_store, [request(f"m-{n}", budgeted, rules=()) for n in range(100)])
    assert all(selection.suppressed == {"budget": 1} for selection in after)


def test_200_concurrent_event_batches_count_each_event_id_once(
    cluster_store, cluster_client, cluster_key_prefix
):
    def redeem(n: int) -> None:
        event = OfferEvent(
            "redemption", f"m-{n}", "offer-a", "partner-1", "food", "app", NOW, f"id-{n % 100}"
        )
        cluster_store.record_events([event], (), NOW)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(redeem, range(200)))
    assert cluster_client.get(redeemed_key(cluster_key_prefix, "offer-a")) == "100"
    assert cluster_client.xlen(events_key(cluster_key_prefix, cluster=True)) == 100
    assert len(cluster_store.read_events("0-0", 1000)) == 100


def test_members_spread_over_every_primary(cluster_store, cluster_client, cluster_key_prefix):
    for n in range(30):
        cluster_store.set_preferences(f"m-{n}", Preferences(opted_out_channels=frozenset({"web"})))
    holders = set()
    for node in cluster_client.get_primaries():
        client = cluster_client.get_redis_connection(node)
        if any(client.scan_iter(match=f"{cluster_key_prefix}:{{m:*", count=1000)):
            holders.add(node.name)
    assert len(holders) == 3
