"""The member state port: preferences, and opt-outs, partner limit, budgets and caps, even under
load.

Each test runs against MemoryStateStore and RedisStateStore (the `store` fixture); the tests at
the end check what only Redis has: key expiry, errors, agreement with the memory store.
"""

import asyncio
import dataclasses
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perkrank.config import CAP_SCOPES, CapRule, ServeConfig
from perkrank.features.schema import CHANNELS
from perkrank.serving.domain.events import OfferEvent
from perkrank.serving.domain.selection import Candidate, Preferences, Selection, SelectionRequest
from perkrank.serving.domain.windows import current_bucket
from perkrank.serving.state.keys import (
    cap_counter,
    member_cap_key,
    offer_cap_key,
    shown_decision_key,
)
from perkrank.serving.state.memory import MemoryStateStore
from perkrank.serving.state.ports import StateStore, StateStoreError, open_store
from perkrank.serving.state.redis_store import RedisStateStore

NOW = datetime(2024, 5, 17, 12, tzinfo=UTC).timestamp()
"""Friday noon, UTC."""
HOUR = 3600
DAY = 86400

A = Candidate("offer-a", "partner-1", "food")
B = Candidate("offer-b", "partner-2", "travel")
C = Candidate("offer-c", "partner-3", "food")
D = Candidate("offer-d", "partner-1", "fuel")


def rule(name: str, scope: str, limit: int, window: str | int = "day", **fields) -> CapRule:
    return CapRule(name=name, scope=scope, limit=limit, window=window, **fields)


def ask(
    store: StateStore,
    *candidates: Candidate,
    member_id: str = "member-1",
    channel: str = "app",
    now: float = NOW,
    limit: int = 10,
    max_per_partner: int = 10,
    rules: Sequence[CapRule] = (),
    fallback: Sequence[Candidate] | None = None,
    decision_id: str = "",
) -> Selection:
    """Select from `candidates` (best first) with everything else set to a simple default."""
    request = SelectionRequest(
        member_id=member_id,
        channel=channel,
        now=now,
        limit=limit,
        max_per_partner=max_per_partner,
        personalized=candidates,
        fallback=candidates if fallback is None else fallback,
        rules=rules,
        decision_id=decision_id,
    )
    return asyncio.run(store.select(request))


def served(store: StateStore, *candidates: Candidate, **options) -> list[str]:
    """The offer ids `ask` returns."""
    return ask(store, *candidates, **options).offer_ids


def record(store: StateStore, event_type, member_id, channel, offer: Candidate, rules=()) -> None:
    """Record one event about `offer` that happened NOW."""
    event = OfferEvent(
        event_type, member_id, offer.offer_id, offer.partner_id, offer.category, channel, NOW
    )
    store.record_events([event], rules, NOW)


# ---------------------------------------------------------------- preferences


def test_unknown_member_opts_out_of_nothing(store):
    assert store.get_preferences("member-new") == Preferences()


def test_preferences_read_back_as_written(store):
    preferences = Preferences(
        opt_out_all=True,
        opted_out_channels=frozenset({"web"}),
        opted_out_categories=frozenset({"food", "fuel"}),
        opted_out_partners=frozenset({"partner:with:colons"}),
        personalization=False,
    )
    store.set_preferences("member-1", preferences)
    assert store.get_preferences("member-1") == preferences


def test_setting_preferences_replaces_every_field(store):
    store.set_preferences(
        "member-1",
        Preferences(
            opt_out_all=True,
            opted_out_channels=frozenset({"web"}),
            opted_out_categories=frozenset({"food"}),
            opted_out_partners=frozenset({"partner-1"}),
            personalization=False,
        ),
    )
    replacement = Preferences(opted_out_categories=frozenset({"travel"}))
    store.set_preferences("member-1", replacement)
    assert store.get_preferences("member-1") == replacement


def test_preferences_of_one_member_do_not_touch_another(store):
    store.set_preferences("member-1", Preferences(opt_out_all=True))
    assert store.get_preferences("member-2") == Preferences()
    assert served(store, A, member_id="member-2") == ["offer-a"]


# ---------------------------------------------------------------- opt-outs


def test_member_who_opted_out_of_everything_gets_nothing(store):
    store.set_preferences("member-1", Preferences(opt_out_all=True))
    selection = ask(store, A, B, C)
    assert selection == Selection([], personalized=True, suppressed={"opt_out": 3})


def test_opted_out_channel_gets_nothing_while_other_channels_do(store):
    store.set_preferences("member-1", Preferences(opted_out_channels=frozenset({"app"})))
    assert ask(store, A, B, channel="app") == Selection([], True, {"opt_out": 2})
    assert served(store, A, B, channel="web") == ["offer-a", "offer-b"]


def test_opted_out_category_is_skipped(store):
    store.set_preferences("member-1", Preferences(opted_out_categories=frozenset({"food"})))
    assert ask(store, A, B, C) == Selection(["offer-b"], True, {"opt_out": 2})


def test_opted_out_partner_is_skipped(store):
    store.set_preferences("member-1", Preferences(opted_out_partners=frozenset({"partner-2"})))
    assert ask(store, A, B, C) == Selection(["offer-a", "offer-c"], True, {"opt_out": 1})


def test_personalization_off_serves_the_fallback_order(store):
    assert served(store, A, B, C, fallback=[C, A]) == ["offer-a", "offer-b", "offer-c"]
    store.set_preferences("member-1", Preferences(personalization=False))
    assert ask(store, A, B, C, fallback=[C, A]) == Selection(["offer-c", "offer-a"], False)


# ---------------------------------------------------------------- partner limit, limit, budget


def test_no_partner_gets_more_than_max_per_partner(store):
    extra = Candidate("offer-e", "partner-1", "food")
    selection = ask(store, A, D, extra, B, max_per_partner=2)
    assert selection == Selection(["offer-a", "offer-d", "offer-b"], True, {"partner_limit": 1})


def test_walk_stops_at_the_limit(store):
    assert ask(store, A, B, C, D, limit=2) == Selection(["offer-a", "offer-b"], True)


def test_offer_whose_budget_is_spent_is_skipped(store):
    budgeted = Candidate("offer-a", "partner-1", "food", budget=2)
    roomy = Candidate("offer-b", "partner-2", "travel", budget=3)
    assert served(store, budgeted, roomy) == ["offer-a", "offer-b"]
    for _ in range(2):
        for candidate in (budgeted, roomy):
            record(store, "redemption", "member-2", "app", candidate)
    assert ask(store, budgeted, roomy) == Selection(["offer-b"], True, {"budget": 1})


def test_offer_without_budget_ignores_redemptions(store):
    for _ in range(3):
        record(store, "redemption", "member-2", "app", A)
    assert served(store, A) == ["offer-a"]


# ---------------------------------------------------------------- caps and their windows


def test_member_offer_cap_holds_for_the_day_and_resets_the_next(store):
    rules = [rule("offer_per_day", "member_offer", 2, "day")]
    assert [served(store, A, rules=rules) for _ in range(3)] == [["offer-a"], ["offer-a"], []]
    assert ask(store, A, B, rules=rules) == Selection(["offer-b"], True, {"cap": 1})
    assert served(store, A, rules=rules, now=NOW + DAY) == ["offer-a"]
    assert served(store, A, rules=rules, member_id="member-2") == ["offer-a"]


def test_yesterdays_counts_do_not_count_today(store):
    rules = [rule("offer_per_day", "member_offer", 2, "day")]
    for _ in range(2):
        served(store, A, rules=rules, now=NOW - DAY)
    assert served(store, A, rules=rules, now=NOW - DAY) == []
    assert [served(store, A, rules=rules) for _ in range(2)] == [["offer-a"], ["offer-a"]]


def test_member_partner_cap_counts_offers_taken_earlier_in_the_same_response(store):
    rules = [rule("partner_per_week", "member_partner", 2, "week")]
    same_partner = [Candidate(f"offer-{n}", "partner-1", "food") for n in range(3)]
    selection = ask(store, *same_partner, B, rules=rules)
    assert selection == Selection(["offer-0", "offer-1", "offer-b"], True, {"cap": 1})
    assert served(store, *same_partner, B, rules=rules, now=NOW + 2 * DAY) == ["offer-b"]
    next_monday = datetime(2024, 5, 20, tzinfo=UTC).timestamp()
    assert served(store, *same_partner, rules=rules, now=next_monday) == ["offer-0", "offer-1"]


def test_member_channel_cap_holds_for_the_month_on_that_channel(store):
    rules = [rule("channel_per_month", "member_channel", 3, "month")]
    assert served(store, A, B, rules=rules) == ["offer-a", "offer-b"]
    assert ask(store, C, D, rules=rules, now=NOW + 10 * DAY) == Selection(
        ["offer-c"], True, {"cap": 1}
    )
    assert served(store, C, D, rules=rules, channel="web") == ["offer-c", "offer-d"]
    june = datetime(2024, 6, 1, tzinfo=UTC).timestamp()
    assert served(store, C, D, rules=rules, now=june) == ["offer-c", "offer-d"]


def test_offer_total_cap_holds_across_members_and_never_resets(store):
    rules = [rule("offer_budget", "offer_total", 2, "total")]
    assert served(store, A, rules=rules, member_id="member-1") == ["offer-a"]
    assert served(store, A, rules=rules, member_id="member-2") == ["offer-a"]
    assert served(store, A, B, rules=rules, member_id="member-3") == ["offer-b"]
    assert served(store, A, rules=rules, member_id="member-4", now=NOW + 400 * DAY) == []


def test_window_in_seconds_resets_at_the_next_bucket(store):
    rules = [rule("offer_per_hour", "member_offer", 1, HOUR)]
    assert served(store, A, rules=rules) == ["offer-a"]
    assert served(store, A, rules=rules, now=NOW + HOUR - 1) == []
    assert served(store, A, rules=rules, now=NOW + HOUR) == ["offer-a"]


def test_cap_of_zero_serves_nothing(store):
    rules = [rule("paused", "offer_total", 0, "total")]
    assert ask(store, A, B, rules=rules) == Selection([], True, {"cap": 2})


@pytest.mark.parametrize("scope", CAP_SCOPES)
def test_served_offer_counts_once_for_every_rule_it_falls_under(store, scope):
    rules = [
        rule(name, other_scope, 2 if other_scope == scope else 100, window)
        for name, other_scope, window in [
            ("per_offer", "member_offer", "day"),
            ("per_partner", "member_partner", "week"),
            ("per_channel", "member_channel", "month"),
            ("per_offer_total", "offer_total", "total"),
        ]
    ]
    assert [served(store, A, rules=rules) for _ in range(3)] == [["offer-a"], ["offer-a"], []]


def test_rules_counting_events_are_checked_but_not_counted_by_select(store):
    rules = [
        rule("clicks_per_day", "member_offer", 1, "day", counts="click"),
        rule("impressions_total", "offer_total", 2, "total", counts="impression"),
    ]
    assert [served(store, A, B, rules=rules) for _ in range(3)] == [["offer-a", "offer-b"]] * 3
    record(store, "click", "member-1", "app", A, rules)
    assert ask(store, A, B, rules=rules) == Selection(["offer-b"], True, {"cap": 1})
    for member_id in ("member-2", "member-3"):
        record(store, "impression", member_id, "web", B, rules)
    assert ask(store, A, B, rules=rules, member_id="member-4") == Selection(
        ["offer-a"], True, {"cap": 1}
    )


def test_a_decision_shown_on_two_channels_counts_once(store):
    rules = [
        rule("once_a_day", "member_offer", 1, "day"),
        rule("per_channel", "member_channel", 1, "day"),
        rule("clicks", "member_offer", 1, "day", counts="click"),
    ]
    assert served(store, A, B, rules=rules, limit=1, decision_id="d1") == ["offer-a"]
    # the same decision on push: the served caps neither block nor count it again
    assert served(store, A, B, rules=rules, limit=1, decision_id="d1", channel="push") == [
        "offer-a"
    ]
    # a new decision on app: offer-a was served once today, the app channel once
    assert served(store, A, B, rules=rules, limit=1, decision_id="d2") == []
    # ... but push still has its one, as the re-show did not count
    assert served(store, A, B, rules=rules, limit=1, decision_id="d3", channel="push") == [
        "offer-b"
    ]
    # rules counting events still hold on a re-show
    record(store, "click", "member-1", "app", A, rules)
    assert served(store, A, B, rules=rules, limit=1, decision_id="d1", channel="sms") == ["offer-b"]


def test_a_decision_of_another_member_is_new_for_this_one(store):
    rules = [rule("once_a_day", "member_offer", 1, "day")]
    assert served(store, A, rules=rules, decision_id="d1") == ["offer-a"]
    assert served(store, A, rules=rules, decision_id="d1", member_id="member-2") == ["offer-a"]
    assert served(store, A, rules=rules, decision_id="d9", member_id="member-2") == []


def test_odd_member_ids_keep_separate_counts(store):
    rules = [rule("offer_per_day", "member_offer", 1, "day")]
    assert served(store, A, rules=rules, member_id="a}:b") == ["offer-a"]
    assert served(store, A, rules=rules, member_id="a%7D:b") == ["offer-a"]
    assert served(store, A, rules=rules, member_id="a}:b") == []


# ---------------------------------------------------------------- concurrency


def select_concurrently(store: StateStore, requests: list[SelectionRequest]) -> list[Selection]:
    """Every request in flight at once (each on its own Redis connection)."""

    async def select_all() -> list[Selection]:
        return await asyncio.gather(*(store.select(request) for request in requests))

    return asyncio.run(select_all())


def request_for(member_id: str, rules: Sequence[CapRule]) -> SelectionRequest:
    return SelectionRequest(member_id, "app", NOW, 10, 10, [A], [A], rules)


def test_200_concurrent_selects_serve_an_offer_capped_at_3_exactly_3_times(store):
    rules = [rule("offer_per_day", "member_offer", 3, "day")]
    selections = select_concurrently(store, [request_for("member-1", rules)] * 200)
    assert Counter(offer for s in selections for offer in s.offer_ids) == {"offer-a": 3}


def test_offer_total_cap_holds_across_100_members_selecting_concurrently(store):
    rules = [rule("offer_budget", "offer_total", 25, "total")]
    requests = [request_for(f"m-{n}", rules) for n in range(100)]
    selections = select_concurrently(store, requests)
    assert sum(len(selection.offer_ids) for selection in selections) == 25


# ---------------------------------------------------------------- health and factory


def test_reachable_store_answers_ping(store):
    store.ping()


def test_unreachable_redis_raises_state_store_error_on_every_call():
    store = RedisStateStore("redis://127.0.0.1:1/0", "perkrank-test-unreachable", 200)
    calls = [
        store.ping,
        lambda: store.get_preferences("member-1"),
        lambda: store.set_preferences("member-1", Preferences()),
        lambda: ask(store, A, rules=[rule("offer_per_day", "member_offer", 1)]),
        lambda: record(store, "redemption", "member-1", "app", A),
    ]
    for call in calls:
        with pytest.raises(StateStoreError, match=r"127\.0\.0\.1:1"):
            call()
    asyncio.run(store.close())


def test_open_store_picks_redis_when_a_url_is_configured(redis_url, redis_key_prefix):
    assert isinstance(open_store(ServeConfig(redis_url=None)), MemoryStateStore)
    store = open_store(ServeConfig(redis_url=redis_url, key_prefix=redis_key_prefix))
    assert isinstance(store, RedisStateStore)
    store.ping()
    asyncio.run(store.close())


# ---------------------------------------------------------------- Redis only


def test_redis_counters_expire_when_their_window_ends(redis_url, redis_key_prefix):
    store = RedisStateStore(redis_url, redis_key_prefix, 2000)
    member_id = "member{1}"
    rules = [
        rule("per_day", "member_offer", 5, "day"),
        rule("per_week", "member_partner", 5, "week"),
        rule("per_month", "member_channel", 5, "month"),
        rule("per_hour", "member_offer", 5, HOUR),
        rule("forever", "member_offer", 5, "total"),
        rule("budget_day", "offer_total", 5, "day"),
        rule("budget_total", "offer_total", 5, "total"),
    ]
    assert served(store, A, rules=rules, member_id=member_id) == ["offer-a"]
    client = redis.Redis.from_url(redis_url)
    seconds_to_monday = 2 * DAY + 12 * HOUR
    seconds_to_june = 14 * DAY + 12 * HOUR
    expected_ttls = {
        member_cap_key(redis_key_prefix, member_id, "per_day", "2024-05-17"): 12 * HOUR,
        member_cap_key(redis_key_prefix, member_id, "per_week", "2024-W20"): seconds_to_monday,
        member_cap_key(redis_key_prefix, member_id, "per_month", "2024-05"): seconds_to_june,
        member_cap_key(redis_key_prefix, member_id, "per_hour", f"3600s-{int(NOW) // HOUR}"): HOUR,
        offer_cap_key(redis_key_prefix, "offer-a", "budget_day", "2024-05-17"): 12 * HOUR,
    }
    for key, ttl_seconds in expected_ttls.items():
        assert ttl_seconds - 2 <= client.ttl(key) <= ttl_seconds, key
    for key in [
        member_cap_key(redis_key_prefix, member_id, "forever", "total"),
        offer_cap_key(redis_key_prefix, "offer-a", "budget_total", "total"),
    ]:
        assert client.ttl(key) == -1, key
    client.close()
    asyncio.run(store.close())


def test_redis_remembers_a_shown_decision_for_its_ttl(redis_url, redis_key_prefix):
    store = RedisStateStore(redis_url, redis_key_prefix, 2000)
    request = SelectionRequest(
        "member{1}", "app", NOW, 1, 1, [A], [A], decision_id="d{1}%", decision_ttl_seconds=600
    )
    asyncio.run(store.select(request))
    client = redis.Redis.from_url(redis_url)
    key = shown_decision_key(redis_key_prefix, "member{1}", "d{1}%")
    assert 598 <= client.ttl(key) <= 600
    client.close()
    asyncio.run(store.close())


def test_redis_counters_live_where_the_key_layout_says(redis_url, redis_key_prefix):
    store = RedisStateStore(redis_url, redis_key_prefix, 2000)
    rules = [rule("per_partner", "member_partner", 5, "week")]
    odd_offer = Candidate("offer{%}", "partner}1", "food")
    served(store, odd_offer, D, rules=rules, member_id="m%{x}")
    key, field = cap_counter(
        redis_key_prefix,
        "member_partner",
        "per_partner",
        "2024-W20",
        member_id="m%{x}",
        channel="app",
        offer_id="offer{%}",
        partner_id="partner}1",
    )
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    assert client.hgetall(key) == {field: "1", "partner-1": "1"}
    client.close()
    asyncio.run(store.close())


def test_redis_refuses_ids_containing_its_candidate_separators(redis_url, redis_key_prefix):
    store = RedisStateStore(redis_url, redis_key_prefix, 2000)
    with pytest.raises(ValueError, match="x1e or"):
        served(store, Candidate("offer\x1fa", "partner-1", "food"))
    asyncio.run(store.close())


# ---------------------------------------------------------------- both stores agree

PARTNERS = ["partner-1", "partner-2", "partner-3"]
CATEGORIES = ["food", "travel", "fuel"]
MEMBERS = ["member-1", "member-2"]

candidate_lists = st.lists(
    st.builds(
        Candidate,
        offer_id=st.sampled_from([f"offer-{n}" for n in range(10)]),
        partner_id=st.sampled_from(PARTNERS),
        category=st.sampled_from(CATEGORIES),
        budget=st.none() | st.integers(0, 2),
    ),
    max_size=10,
    unique_by=lambda candidate: candidate.offer_id,
)
preferences = st.builds(
    Preferences,
    opt_out_all=st.sampled_from([False, False, False, True]),
    opted_out_channels=st.frozensets(st.sampled_from(CHANNELS), max_size=1),
    opted_out_categories=st.frozensets(st.sampled_from(CATEGORIES), max_size=2),
    opted_out_partners=st.frozensets(st.sampled_from(PARTNERS), max_size=2),
    personalization=st.booleans(),
)
cap_rules = st.lists(
    st.builds(
        CapRule,
        name=st.sampled_from(["rule_a", "rule_b", "rule_c"]),
        scope=st.sampled_from(CAP_SCOPES),
        limit=st.integers(0, 3),
        window=st.sampled_from(["day", "week", "total", HOUR]),
        counts=st.sampled_from(["served", "served", "click"]),
    ),
    max_size=3,
    unique_by=lambda cap_rule: cap_rule.name,
)
requests = st.lists(
    st.builds(
        SelectionRequest,
        member_id=st.sampled_from(MEMBERS),
        channel=st.sampled_from(CHANNELS),
        now=st.floats(NOW, NOW + 3 * DAY),
        limit=st.integers(0, 5),
        max_per_partner=st.integers(1, 3),
        personalized=candidate_lists,
        fallback=candidate_lists,
    ),
    min_size=1,
    max_size=5,
)
redemptions = st.lists(st.sampled_from([f"offer-{n}" for n in range(10)]), max_size=4)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    members=st.fixed_dictionaries({member_id: preferences for member_id in MEMBERS}),
    rules=cap_rules,
    requests=requests,
    redeemed_offers=redemptions,
)
def test_redis_and_memory_stores_agree_and_never_break_a_rule(
    redis_url, redis_key_prefix, members, rules, requests, redeemed_offers
):
    memory = MemoryStateStore()
    redis_store = RedisStateStore(redis_url, f"{redis_key_prefix}-{uuid.uuid4().hex[:8]}", 2000)
    served_counts: Counter[tuple[str, str, str]] = Counter()
    for state_store in (memory, redis_store):
        for member_id, member_preferences in members.items():
            state_store.set_preferences(member_id, member_preferences)
        for offer_id in redeemed_offers:
            redeemed = Candidate(offer_id, "partner-1", "food")
            record(state_store, "redemption", "member-1", "app", redeemed)
    for request in requests:
        request = dataclasses.replace(request, rules=rules)
        selection = asyncio.run(redis_store.select(request))
        assert asyncio.run(memory.select(request)) == selection

        member_preferences = members[request.member_id]
        candidates = request.personalized if selection.personalized else request.fallback
        by_offer = {candidate.offer_id: candidate for candidate in candidates}
        chosen = [by_offer[offer_id] for offer_id in selection.offer_ids]
        assert selection.personalized == member_preferences.personalization
        assert len(chosen) <= request.limit
        if chosen:
            assert not member_preferences.opt_out_all
            assert request.channel not in member_preferences.opted_out_channels
        for candidate in chosen:
            assert candidate.category not in member_preferences.opted_out_categories
            assert candidate.partner_id not in member_preferences.opted_out_partners
        partners = Counter(candidate.partner_id for candidate in chosen)
        assert all(count <= request.max_per_partner for count in partners.values())
        for cap_rule in rules:
            if cap_rule.counts != "served":
                continue
            bucket = current_bucket(cap_rule.window, request.now).label
            for candidate in chosen:
                scope_value = {
                    "member_offer": f"{request.member_id}/{candidate.offer_id}",
                    "member_partner": f"{request.member_id}/{candidate.partner_id}",
                    "member_channel": f"{request.member_id}/{request.channel}",
                    "offer_total": candidate.offer_id,
                }[cap_rule.scope]
                served_counts[(cap_rule.name, bucket, scope_value)] += 1
                assert served_counts[(cap_rule.name, bucket, scope_value)] <= cap_rule.limit
    asyncio.run(redis_store.close())
