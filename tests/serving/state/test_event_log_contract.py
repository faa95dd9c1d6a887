"""The event log port: events counted against the caps that count them, idempotent on
event_id, kept in order and read page by page.

Each test runs against MemoryStateStore and RedisStateStore (the `store` fixture); the tests at
the end check the Redis event stream and id keys, and the memory store's bound.
"""

import asyncio
from datetime import UTC, datetime

import redis

from perkrank.config import CapRule
from perkrank.serving.domain.events import EVENT_ID_TTL_SECONDS, EventsRecorded, OfferEvent
from perkrank.serving.domain.selection import Candidate, SelectionRequest
from perkrank.serving.state.keys import event_id_key, events_key
from perkrank.serving.state.memory import MemoryStateStore
from perkrank.serving.state.redis_store import RedisStateStore

NOW = datetime(2024, 5, 17, 12, tzinfo=UTC).timestamp()
"""Friday noon, UTC."""
DAY = 86400
A = Candidate("offer-a", "partner-1", "food")
B = Candidate("offer-b", "partner-2", "travel")
ONE_REDEMPTION_A_MONTH = CapRule(
    name="redemption_month", scope="member_offer", limit=1, window="month", counts="redemption"
)


def event(event_type, offer=A, member_id="member-1", ts=NOW, event_id=None, channel="app"):
    return OfferEvent(
        event_type,
        member_id,
        offer.offer_id,
        offer.partner_id,
        offer.category,
        channel,
        ts,
        event_id,
    )


def served(store, *candidates, rules=(), member_id="member-1", now=NOW) -> list[str]:
    request = SelectionRequest(
        member_id=member_id,
        channel="app",
        now=now,
        limit=10,
        max_per_partner=10,
        personalized=candidates,
        fallback=candidates,
        rules=rules,
    )
    return asyncio.run(store.select(request)).offer_ids


# ---------------------------------------------------------------- the store


def test_one_redemption_a_month_stops_the_offer_after_its_redemption(store):
    rules = [ONE_REDEMPTION_A_MONTH]
    assert served(store, A, B, rules=rules) == ["offer-a", "offer-b"]
    assert served(store, A, B, rules=rules) == ["offer-a", "offer-b"]

    assert store.record_events([event("redemption")], rules, NOW) == EventsRecorded(1, 0)

    assert served(store, A, B, rules=rules) == ["offer-b"]
    assert served(store, A, B, rules=rules, now=NOW + 10 * DAY) == ["offer-b"]
    assert served(store, A, B, rules=rules, member_id="member-2") == ["offer-a", "offer-b"]
    june = datetime(2024, 6, 1, tzinfo=UTC).timestamp()
    assert served(store, A, B, rules=rules, now=june) == ["offer-a", "offer-b"]


def test_duplicate_event_ids_count_once(store):
    rules = [
        CapRule(name="two_clicks", scope="member_offer", limit=2, window="day", counts="click")
    ]
    click = event("click", event_id="click-1")

    first = store.record_events([click, click], rules, NOW)
    again = store.record_events([click], rules, NOW)

    assert (first, again) == (EventsRecorded(1, 1), EventsRecorded(0, 1))
    assert served(store, A, rules=rules) == ["offer-a"]
    store.record_events([event("click", event_id="click-2")], rules, NOW)
    assert served(store, A, rules=rules) == []
    assert [kept.event.event_id for kept in store.read_events("0-0", 10)] == ["click-1", "click-2"]


def test_an_offer_budget_counted_in_redemptions_stops_it_once_spent(store):
    budgeted = Candidate("offer-a", "partner-1", "food", budget=2)
    store.record_events([event("redemption", budgeted, member_id="member-9")], (), NOW)
    assert served(store, budgeted, B) == ["offer-a", "offer-b"]

    store.record_events([event("redemption", budgeted, member_id="member-8")], (), NOW)

    assert served(store, budgeted, B) == ["offer-b"]


def test_offer_total_rule_counting_impressions_holds_across_members(store):
    rules = [CapRule(name="seen", scope="offer_total", limit=2, window="week", counts="impression")]
    impressions = [event("impression", member_id=f"member-{n}") for n in range(2)]

    store.record_events(impressions, rules, NOW)

    assert served(store, A, B, rules=rules, member_id="member-7") == ["offer-b"]


def test_events_count_in_the_bucket_of_their_own_time(store):
    rules = [CapRule(name="one_click", scope="member_offer", limit=1, window="day", counts="click")]
    yesterday = store.record_events([event("click", ts=NOW - DAY)], rules, NOW)

    assert yesterday == EventsRecorded(1, 0)
    assert served(store, A, rules=rules) == ["offer-a"]
    store.record_events([event("click", ts=NOW - 60)], rules, NOW)
    assert served(store, A, rules=rules) == []


def test_events_are_kept_in_order_and_read_page_by_page(store):
    events = [event(kind, member_id=f"member-{n}") for n, kind in enumerate(["click"] * 5)]
    store.record_events(events[:3], (), NOW)
    store.record_events(events[3:], (), NOW)

    first = store.read_events("0-0", 2)
    second = store.read_events(first[-1].stream_id, 2)
    third = store.read_events(second[-1].stream_id, 2)

    assert [kept.event for kept in first + second + third] == events
    assert len(third) == 1
    assert store.read_events(third[-1].stream_id, 2) == []


def test_nothing_is_kept_after_the_largest_stream_id(store):
    store.record_events([event("click")], (), NOW)
    largest = f"{2**64 - 1}-{2**64 - 1}"

    assert store.read_events(largest, 10) == []
    assert len(store.read_events(f"{2**64 - 1}-0", 10) + store.read_events("0-0", 10)) == 1


def test_the_oldest_events_are_dropped_beyond_events_kept(redis_url, redis_key_prefix):
    stores = [
        MemoryStateStore(events_kept=10),
        RedisStateStore(redis_url, redis_key_prefix, 2000, events_kept=10),
    ]
    events = [event("impression", member_id=f"member-{n}") for n in range(300)]
    for state_store in stores:
        for start in range(0, 300, 100):
            state_store.record_events(events[start : start + 100], (), NOW)

    memory, redis_store = (state_store.read_events("0-0", 1000) for state_store in stores)
    assert [kept.event for kept in memory] == events[-10:]
    # Redis trims whole stream nodes (MAXLEN ~): at least 10 stay, the oldest go.
    assert 10 <= len(redis_store) < 300
    assert [kept.event for kept in redis_store] == events[-len(redis_store) :]
    asyncio.run(stores[1].close())


def test_redis_remembers_an_event_id_for_seven_days(redis_url, redis_key_prefix):
    store = RedisStateStore(redis_url, redis_key_prefix, 2000)
    store.record_events([event("click", event_id="e-1")], (), NOW)
    client = redis.Redis.from_url(redis_url)

    ttl = client.ttl(event_id_key(redis_key_prefix, "e-1"))

    assert EVENT_ID_TTL_SECONDS - 60 < ttl <= EVENT_ID_TTL_SECONDS
    assert client.xlen(events_key(redis_key_prefix)) == 1
    client.close()
    asyncio.run(store.close())
