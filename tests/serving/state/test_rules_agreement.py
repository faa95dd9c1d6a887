"""Three-way agreement: the pure rules (select_offers), MemoryStateStore and RedisStateStore
(serving/select.lua on a real redis-server) decide alike and count alike.

Each example seeds both stores through their public API (preferences, events, earlier
selections) and keeps a model of the counters the way the rules define them: every event adds
1 to the counters of the rules counting its type, every selection adds the pure function's
increments. Every selection must be the same from all three, and at the end each store holds
exactly the model's counters. Times sit 5 minutes or more from any window boundary, so no
counter expires while an example runs.
"""

import asyncio
import dataclasses
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from redis.cluster import RedisCluster

from perkrank.config import CAP_SCOPES, CapRule
from perkrank.serving.domain.events import OfferEvent
from perkrank.serving.domain.rules import CapCounter, MemberState, select_offers
from perkrank.serving.domain.selection import Candidate, Preferences, SelectionRequest
from perkrank.serving.domain.windows import current_bucket
from perkrank.serving.state.keys import (
    member_cap_key,
    offer_cap_key,
    redeemed_key,
    shown_decision_key,
)
from perkrank.serving.state.memory import KEY_PREFIX, MemoryStateStore
from perkrank.serving.state.redis_cluster import RedisClusterStateStore, cluster_nodes
from perkrank.serving.state.redis_store import RedisStateStore

NOW = datetime(2024, 5, 17, 12, tzinfo=UTC).timestamp()
"""Friday noon, UTC."""
HALF_HOURS = 16 * 48
"""Times span 16 days from NOW: they cross days, the ISO week and the month of June."""
MEMBERS = ("member-1", "member:{2}%")
CHANNELS = ("app", "web", "store")
PARTNERS = ("partner-1", "partner-2", "partner-3")
CATEGORIES = ("food", "travel", "fuel")
OFFERS = (*(f"offer-{n}" for n in range(5)), "offer-{5}%")
"""Ids with `{`, `}` and `%` check that every store escapes them alike (keys.py)."""
DECISIONS = ("", "", "decision-1", "decision-2", "decision:{3}%")
"""Few ids, so that selections re-show decisions often (on any channel)."""
WINDOWS: tuple[str | int, ...] = ("day", "week", "month", "total", 3600, 600)

times = st.integers(0, HALF_HOURS - 1).map(lambda half_hour: NOW + 1800 * half_hour + 900)
"""A quarter past or to the hour: at least 300 s from the end of any bucket of WINDOWS."""
candidates = st.builds(
    Candidate,
    offer_id=st.sampled_from(OFFERS),
    partner_id=st.sampled_from(PARTNERS),
    category=st.sampled_from(CATEGORIES),
    budget=st.sampled_from([None, None, None, 0, 1, 2]),
    local=st.booleans(),
)
candidate_lists = st.lists(candidates, min_size=1, max_size=8)
"""Offers may repeat within a list; partners and categories repeat often."""
preferences = st.builds(
    Preferences,
    opt_out_all=st.sampled_from([False] * 9 + [True]),
    opted_out_channels=st.just(frozenset()) | st.frozensets(st.sampled_from(CHANNELS), max_size=1),
    opted_out_categories=st.just(frozenset())
    | st.frozensets(st.sampled_from(CATEGORIES), max_size=2),
    opted_out_partners=st.just(frozenset()) | st.frozensets(st.sampled_from(PARTNERS), max_size=2),
    personalization=st.sampled_from([True, True, False]),
    consents=st.just(frozenset()) | st.frozensets(st.sampled_from(CATEGORIES), max_size=2),
    purchase_reasons=st.booleans(),
)
cap_rule = st.builds(
    CapRule,
    name=st.sampled_from(["rule_a", "rule_b", "rule_c"]),
    scope=st.sampled_from(CAP_SCOPES),
    limit=st.sampled_from([1, 2, 3, 0]),
    window=st.sampled_from(WINDOWS),
    counts=st.sampled_from(["served", "served", "impression", "click", "redemption"]),
)
cap_rules = st.sampled_from([1, 2, 3, 0]).flatmap(
    lambda size: st.lists(
        cap_rule, min_size=size, max_size=size, unique_by=lambda cap_rule: cap_rule.name
    )
)
selections = st.builds(
    SelectionRequest,
    member_id=st.sampled_from(MEMBERS),
    channel=st.sampled_from(CHANNELS),
    now=times,
    limit=st.sampled_from([1, 2, 3, 4, 5, 0]),
    max_per_partner=st.integers(1, 3),
    personalized=candidate_lists,
    fallback=st.lists(candidates, max_size=8),
    sensitive=st.frozensets(st.sampled_from(CATEGORIES), max_size=2),
    decision_id=st.sampled_from(DECISIONS),
    local_slots=st.sampled_from([0, 0, 1, 2, 3]),
)
"""Sensitive categories are left out of the personalized walk unless consented to; a
decision id seen before for the member is a re-show (served rules skipped); local slots
(the local floor) take local candidates first."""
events = st.builds(
    lambda event_type, member_id, offer, channel, ts: OfferEvent(
        event_type, member_id, offer.offer_id, offer.partner_id, offer.category, channel, ts
    ),
    st.sampled_from(["impression", "click", "redemption"]),
    st.sampled_from(MEMBERS),
    candidates,
    st.sampled_from(CHANNELS),
    times,
)
batches = st.tuples(st.lists(selections, min_size=2, max_size=5), st.booleans()).map(
    lambda drawn: (
        [dataclasses.replace(one, fallback=drawn[0][0].fallback) for one in drawn[0]]
        if drawn[1]
        else drawn[0]
    )
)
"""Selections made together (`select_many`), half of them sharing one fallback order as a
campaign's members of one segment do (one server sends it once)."""
STEP_KINDS = (
    "select",
    "select",
    "select",
    "select",
    "batch",
    "event",
    "event",
    "repeat",
    "preferences",
)
step_of_kind = {
    "select": selections,
    "batch": batches,
    "event": events,
    "repeat": st.just("repeat"),
    "preferences": st.tuples(st.sampled_from(MEMBERS), preferences),
}
steps = st.lists(
    st.sampled_from(STEP_KINDS).flatmap(step_of_kind.__getitem__), min_size=4, max_size=16
)
"""A selection, a batch of selections (`select_many`: one script call on one server), an
event, new preferences of a member, or the last selection once more."""

ModelKey = tuple[str | None, CapCounter]
"""A counter as the model keeps it: (member id, None for offer_total; counter)."""


class Model:
    """The counters as the rules define them, kept apart from both stores."""

    def __init__(self, members: dict[str, Preferences], rules: Sequence[CapRule]) -> None:
        self.preferences = dict(members)
        self.rules = rules
        self.counts: Counter[ModelKey] = Counter()
        self.redeemed: Counter[str] = Counter()
        self.shown: set[tuple[str, str]] = set()
        """(member id, decision id) of decisions shown."""

    def state(self, request: SelectionRequest) -> MemberState:
        member_id = request.member_id
        counts = {
            counter: count
            for (member, counter), count in self.counts.items()
            if member in (member_id, None)
        }
        reshown = (member_id, request.decision_id) in self.shown
        return MemberState(self.preferences[member_id], counts, self.redeemed, reshown)

    def record(self, event: OfferEvent) -> None:
        by_scope = {"member_partner": event.partner_id, "member_channel": event.channel}
        for rule in self.rules:
            if rule.counts == event.type:
                bucket = current_bucket(rule.window, event.ts).label
                value = by_scope.get(rule.scope, event.offer_id)
                counter = CapCounter(rule.name, rule.scope, bucket, value)
                self.counts[_member_of(counter, event.member_id), counter] += 1
        if event.type == "redemption":
            self.redeemed[event.offer_id] += 1

    def stored(self, prefix: str) -> dict[tuple[str, str | None], int]:
        """The counters as a store with `prefix` keeps them: (key, hash field) → count."""
        stored: dict[tuple[str, str | None], int] = {}
        for (member_id, counter), count in self.counts.items():
            if member_id is None:
                key = offer_cap_key(prefix, counter.value, counter.rule, counter.bucket)
                stored[key, None] = count
            else:
                key = member_cap_key(prefix, member_id, counter.rule, counter.bucket)
                stored[key, counter.value] = count
        for offer_id, count in self.redeemed.items():
            stored[redeemed_key(prefix, offer_id), None] = count
        for member_id, decision_id in self.shown:
            stored[shown_decision_key(prefix, member_id, decision_id), None] = 1
        return stored


def _member_of(counter: CapCounter, member_id: str) -> str | None:
    return None if counter.scope == "offer_total" else member_id


def memory_counters(store: MemoryStateStore) -> dict[tuple[str, str | None], int]:
    """The cap and redemption counters and shown decisions the memory store holds (keyed as
    in Redis)."""
    return {
        (key, field): count
        for (key, field), (count, _) in store._counters.items()
        if ":cap:" in key or key.endswith(":redeemed") or ":shown:" in key
    }


def redis_counters(url: str, prefix: str) -> dict[tuple[str, str | None], int]:
    """The cap and redemption counters and shown decisions under `prefix` in Redis (on
    Cluster, without counters at 0: a released reservation leaves its offer counter at 0)."""
    cluster = url.startswith("redis+cluster://")
    if cluster:
        client = RedisCluster(startup_nodes=cluster_nodes(url)[0], decode_responses=True)
    else:
        client = redis.Redis.from_url(url, decode_responses=True)
    counters: dict[tuple[str, str | None], int] = {}
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        if ":cap:" not in key and not key.endswith(":redeemed") and ":shown:" not in key:
            continue
        if client.type(key) == "hash":
            counters.update(((key, field), int(n)) for field, n in client.hgetall(key).items())
        else:
            counters[key, None] = int(client.get(key))
    client.close()
    return {counter: n for counter, n in counters.items() if n or not cluster}


async def run_steps(
    model: Model, stores: tuple[MemoryStateStore, RedisStateStore], steps: list[Any]
) -> None:
    """Apply every step to the model and both stores, comparing every selection."""
    last = None
    for step in steps:
        if isinstance(step, OfferEvent):
            model.record(step)
            for store in stores:
                store.record_events([step], model.rules, step.ts)
            continue
        if isinstance(step, tuple):
            member_id, member_preferences = step
            model.preferences[member_id] = member_preferences
            for store in stores:
                store.set_preferences(member_id, member_preferences)
            continue
        if isinstance(step, list):
            batch = [dataclasses.replace(one, rules=model.rules) for one in step]
            expected = [expect(model, request) for request in batch]
            event("batch")
            for store in stores:
                assert await store.select_many(batch) == expected, type(store).__name__
            last = batch[-1]
            continue
        if step == "repeat":
            if last is None:
                continue
            step = last
        request = last = dataclasses.replace(step, rules=model.rules)
        expected_one = expect(model, request)
        for store in stores:
            assert await store.select(request) == expected_one, type(store).__name__


def expect(model: Model, request: SelectionRequest) -> Any:
    """The pure rules' selection of `request`, its increments applied to the model."""
    state = model.state(request)
    choice = select_offers(state, request)
    expected = choice.selection()
    for reason in expected.suppressed:
        event(f"left out: {reason}")
    event(f"chose {'some' if expected.offer_ids else 'none'}")
    if request.local_slots and _floor_moved(state, request, choice):
        event("the local floor changed the list")
    for increment in choice.increments:
        counter = increment.counter
        model.counts[_member_of(counter, request.member_id), counter] += increment.amount
    if choice.remember_decision:
        model.shown.add((request.member_id, request.decision_id))
    if state.reshown:
        event("re-shown decision")
    return expected


def _floor_moved(state: MemberState, request: SelectionRequest, choice: Any) -> bool:
    """The local floor chose an offer the walk without it would not have."""
    plain = dataclasses.replace(request, local_slots=0)
    return select_offers(state, plain).positions != choice.positions


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    members=st.fixed_dictionaries({member_id: preferences for member_id in MEMBERS}),
    rules=cap_rules,
    steps=steps,
)
@pytest.mark.parametrize("adapter", [RedisStateStore, RedisClusterStateStore])
def test_pure_rules_memory_and_redis_choose_and_count_alike(
    request, adapter, members, rules, steps
):
    """On one Redis server and on a three-primary Redis Cluster."""
    cluster = adapter is RedisClusterStateStore
    redis_url = request.getfixturevalue("redis_cluster_url" if cluster else "redis_url")
    key_prefix = request.getfixturevalue("cluster_key_prefix" if cluster else "redis_key_prefix")
    prefix = f"{key_prefix}-{uuid.uuid4().hex[:8]}"
    memory = MemoryStateStore()
    redis_store = adapter(redis_url, prefix, 2000)
    model = Model(members, tuple(rules))
    for store in (memory, redis_store):
        for member_id, member_preferences in members.items():
            store.set_preferences(member_id, member_preferences)

    async def scenario() -> None:
        try:
            await run_steps(model, (memory, redis_store), steps)
        finally:
            await redis_store.close()

    asyncio.run(scenario())
    assert memory_counters(memory) == model.stored(KEY_PREFIX)
    assert redis_counters(redis_url, prefix) == model.stored(prefix)
