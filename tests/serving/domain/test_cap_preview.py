"""The cap preview: warnings by tables, and the what-if replay's properties — the rules in force
reproduce a log the real service (or a simulation of its policy) wrote, and a lowered cap never
shows more offers in the headline figures; the figure that frees room can."""

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from perkrank.config import CapRule
from perkrank.serving.caps_preview import read_since
from perkrank.serving.domain.cap_preview import (
    preview,
    recorded_at,
    replay,
    replay_freeing_room,
    warnings,
)
from perkrank.serving.domain.decisions import DecidedOffer, Decision
from perkrank.serving.domain.events import OfferEvent, StoredEvent
from perkrank.serving.domain.rules import CapCounter, MemberState, scope_value, select_offers
from perkrank.serving.domain.selection import Candidate, Preferences, SelectionRequest
from perkrank.serving.domain.windows import current_bucket

APP = {"X-API-Key": "app-key-for-tests-0001"}
NOW = datetime(2024, 5, 17, 12, tzinfo=UTC).timestamp()


def rule(name, scope="member_offer", limit=2, window="day", counts="served") -> CapRule:
    return CapRule(name=name, scope=scope, limit=limit, window=window, counts=counts)


def decision(member_id: str, ts: float, *offer_ids: str, channel: str = "app") -> Decision:
    offers = tuple(DecidedOffer(o, rank, 1.0, 1.0) for rank, o in enumerate(offer_ids, 1))
    return Decision(f"d{ts}", member_id, channel, ts, "m", None, None, "personalized", True, offers)


def event(kind: str, member_id: str, offer_id: str, ts: float, partner: str = "p1") -> StoredEvent:
    stream_id = f"{int(ts * 1000)}-0"
    return StoredEvent(stream_id, OfferEvent(kind, member_id, offer_id, partner, "food", "app", ts))


CANDIDATES = {
    "a": Candidate("a", "p1", "food"),
    "b": Candidate("b", "p1", "fuel"),
    "c": Candidate("c", "p2", "travel"),
}
WEEK = rule("offer_week", limit=3, window="week")
LOG = [decision(member, NOW + i, "a", "c") for i, member in enumerate(["m1", "m2", "m1", "m1"])]

WARNING_CASES = {
    "nothing changed": ((WEEK,), (WEEK,), []),
    "a rule renamed": (
        (WEEK,),
        (rule("offer_7d", limit=3, window="week"),),
        ["rule offer_week renamed to offer_7d: its counters start again from 0"],
    ),
    "every cap removed": (
        (WEEK,),
        (),
        ["every cap is removed: members may be shown any offer any number of times"],
    ),
    "a limit lowered below this week's counts": (
        (WEEK,),
        (rule("offer_week", limit=2, window="week"),),
        [
            "rule offer_week: limit 3 → 2 is already reached by 1 members (2 counters) in the "
            "current window"
        ],
    ),
    "a limit lowered that nobody reached": (
        (WEEK,),
        (rule("offer_week", limit=4 - 1, window="week"),),
        [],
    ),
}


@pytest.mark.parametrize("case", WARNING_CASES.values(), ids=WARNING_CASES.keys())
def test_warnings(case):
    current, proposed, expected = case
    replayed = replay(current, LOG, [], CANDIDATES)
    assert warnings(current, proposed, replayed, NOW + 10) == expected


def test_the_preview_sets_both_rule_sets_side_by_side_per_offer_and_partner():
    events = [event("redemption", "m1", "a", NOW + 0.5), event("redemption", "m2", "a", NOW + 1.5)]
    lowered = (rule("offer_week", limit=1, window="week"),)

    result = preview((WEEK,), lowered, LOG, events, CANDIDATES, NOW + 10, {"a": 5.0})

    assert result.changes == ["~ offer_week: limit 3 → 1"]
    assert result.decisions == 4
    assert result.members_reached == (2, 2)
    assert result.offers_shown == (8, 4)  # m1's second and third decisions are capped
    assert result.offers_shown_freeing_room == (8, 4)
    # `a` was redeemed twice in 4 showings: rate 0.5; `c` never (no cost needed for it).
    assert result.by_offer["a"].current.shown == 4
    assert result.by_offer["a"].proposed.expected_redemptions == 1.0
    assert result.by_offer["a"].proposed.reward_cost == 5.0
    assert result.by_partner["p2"].current.expected_redemptions == 0.0
    assert result.expected_redemptions == (2.0, 1.0)
    assert result.reward_cost == (10.0, 5.0)


def test_a_cost_unknown_for_a_redeemed_offer_leaves_the_reward_cost_open():
    events = [event("redemption", "m1", "a", NOW + 0.5)]
    result = preview((WEEK,), (WEEK,), LOG, events, CANDIDATES, NOW + 10)
    assert result.reward_cost == (None, None)


def test_an_event_counts_from_when_the_store_recorded_it():
    impressions = (rule("seen_once", limit=1, counts="impression"),)
    reported_late = [event("impression", "m1", "a", NOW - 5)]
    reported_late = [StoredEvent(f"{int((NOW + 1.5) * 1000)}-0", reported_late[0].event)]
    log = [decision("m1", NOW + 1, "a"), decision("m1", NOW + 2, "a")]

    assert replay(impressions, log, reported_late, CANDIDATES).shown_by_decision == (("a",), ())


def test_replaying_the_rules_in_force_reproduces_what_the_service_showed(store, make_small_app):
    rules = (
        rule("offer_day", limit=2),
        rule("partner_ever", scope="member_partner", limit=3, window="total"),
        rule("offer_all_day", scope="offer_total", limit=9),
        rule("seen_twice", limit=2, counts="impression"),
        rule("channel_hour", scope="member_channel", limit=3, window=3600),
    )
    app = make_small_app(store, rules=rules)
    client = TestClient(app)
    members = ["alice", "m1", "m2", "m3"]
    for round_ in range(5):
        for index, member in enumerate(members):
            channel = ("app", "web")[(round_ + index) % 2]
            response = client.get(f"/v1/members/{member}/offers?channel={channel}", headers=APP)
            offers = response.json()["offers"]
            if offers and (round_ + index) % 3 == 0:
                ts = datetime.now(UTC).isoformat()
                body = {
                    "events": [
                        {
                            "type": "impression",
                            "member_id": member,
                            "channel": channel,
                            "offer_id": offers[0]["offer_id"],
                            "ts": ts,
                        }
                    ]
                }
                assert client.post("/v1/events", json=body, headers=APP).status_code == 200
    app.state.recorder.flush()
    decisions = [stored.decision for stored in read_since(store.read_decisions, 0)]
    events = read_since(store.read_events, 0)
    catalog = app.state.holder.current.ranker.catalog
    candidates = {candidate.offer_id: candidate for candidate in catalog.candidates}

    replayed = replay(rules, decisions, events, candidates)

    assert len(decisions) == 20 and events
    logged = [tuple(offer.offer_id for offer in d.offers) for d in decisions]
    assert sum(map(len, logged)) < 2 * len(decisions)  # the caps did hide offers
    assert list(replayed.shown_by_decision) == logged


OFFER_IDS = st.sampled_from(sorted(CANDIDATES))
DECISIONS = st.lists(
    st.tuples(
        st.sampled_from(["m1", "m2", "m3"]),
        st.floats(0, 3 * 86400),
        st.lists(OFFER_IDS, min_size=1, max_size=3, unique=True),
        st.sampled_from(["app", "web"]),
    ),
    max_size=30,
)
EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["impression", "click", "redemption"]),
        st.sampled_from(["m1", "m2", "m3"]),
        OFFER_IDS,
        st.floats(0, 3 * 86400),
    ),
    max_size=15,
)
SCOPES = st.sampled_from(["member_offer", "member_partner", "member_channel", "offer_total"])
WINDOWS = st.sampled_from(["day", "week", "total", 3600])


def _log(decisions, events):
    log = [decision(m, NOW + ts, *offers, channel=channel) for m, ts, offers, channel in decisions]
    kept = [event(kind, m, o, NOW + ts, CANDIDATES[o].partner_id) for kind, m, o, ts in events]
    return log, kept


RULES = st.lists(
    st.builds(
        lambda index, scope, limit, window, counts: rule(f"r{index}", scope, limit, window, counts),
        st.integers(0, 99),
        SCOPES,
        st.integers(0, 4),
        WINDOWS,
        st.sampled_from(["served", "served", "impression", "click", "redemption"]),
    ),
    min_size=1,
    max_size=4,
    unique_by=lambda r: r.name,
)


def shown_by_member(log, outcome):
    by_member = {}
    for logged, kept in zip(log, outcome.shown_by_decision, strict=True):
        by_member[logged.member_id] = by_member.get(logged.member_id, 0) + len(kept)
    return by_member


@settings(max_examples=300, deadline=None)
@given(DECISIONS, EVENTS, RULES, st.data())
def test_lowering_any_one_limit_never_shows_more_offers(decisions, events, rules, data):
    log, kept = _log(decisions, events)
    index = data.draw(st.integers(0, len(rules) - 1), label="lowered rule")
    lower_by = data.draw(st.integers(1, 5), label="lowered by")
    lowered = list(rules)
    lowered[index] = rules[index].model_copy(
        update={"limit": max(0, rules[index].limit - lower_by)}
    )

    before = replay(rules, log, kept, CANDIDATES)
    after = replay(lowered, log, kept, CANDIDATES)

    assert sum(after.shown.values()) <= sum(before.shown.values())
    assert all(after.shown[o] <= before.shown[o] for o in after.shown)
    members_before = shown_by_member(log, before)
    assert all(n <= members_before[m] for m, n in shown_by_member(log, after).items())
    assert after.members <= before.members
    for logged, was, now in zip(
        log, before.shown_by_decision, after.shown_by_decision, strict=True
    ):
        assert set(now) <= set(was) <= {offer.offer_id for offer in logged.offers}


SHORTLISTS = st.lists(
    st.tuples(
        st.sampled_from(["m1", "m2", "m3"]),
        st.floats(0, 3 * 86400),
        st.permutations(sorted(CANDIDATES)),
        st.sampled_from(["app", "web"]),
        st.integers(1, 3),
    ),
    max_size=30,
)


def serve(rules, shortlists, events):
    """A log as the service writes it under `rules`: each request walks its shortlist with
    `select_offers` (up to its limit) against counters of what was served and of the events
    recorded before it, and the decision logs what was chosen, best first."""
    counts, redeemed, log = {}, {}, []

    def add(member_id, counter):
        owner = "" if counter.scope == "offer_total" else member_id
        counts[owner, counter] = counts.get((owner, counter), 0) + 1

    class Counts:
        def __init__(self, member_id):
            self.member_id = member_id

        def get(self, counter, default):
            owner = "" if counter.scope == "offer_total" else self.member_id
            return counts.get((owner, counter), default)

    timeline = sorted(
        [(NOW + ts, 0, i) for i, (_, ts, *_) in enumerate(shortlists)]
        + [(recorded_at(stored.stream_id), 1, i) for i, stored in enumerate(events)]
    )
    for ts, kind, i in timeline:
        if kind == 1:
            happened = events[i].event
            redeemed[happened.offer_id] = redeemed.get(happened.offer_id, 0) + (
                happened.type == "redemption"
            )
            for r in rules:
                if r.counts == happened.type:
                    candidate = Candidate(happened.offer_id, happened.partner_id, "food")
                    value = scope_value(r.scope, candidate, happened.channel)
                    label = current_bucket(r.window, happened.ts).label
                    add(happened.member_id, CapCounter(r.name, r.scope, label, value))
            continue
        member_id, _, offer_ids, channel, limit = shortlists[i]
        walk = [CANDIDATES[offer_id] for offer_id in offer_ids]
        choice = select_offers(
            MemberState(Preferences(), Counts(member_id), redeemed),
            SelectionRequest(member_id, channel, ts, limit, limit, walk, walk, rules=rules),
        )
        for increment in choice.increments:
            for _ in range(increment.amount):
                add(member_id, increment.counter)
        log.append(decision(member_id, ts, *choice.offer_ids, channel=channel))
    return log


@settings(max_examples=300, deadline=None)
@given(SHORTLISTS, EVENTS, RULES)
def test_replaying_the_rules_a_log_was_served_under_reproduces_it_exactly(
    shortlists, events, rules
):
    kept = [event(kind, m, o, NOW + ts, CANDIDATES[o].partner_id) for kind, m, o, ts in events]
    log = serve(rules, shortlists, kept)

    replayed = replay(rules, log, kept, CANDIDATES)

    assert list(replayed.shown_by_decision) == [
        tuple(offer.offer_id for offer in logged.offers) for logged in log
    ]
    assert replay_freeing_room(rules, log, kept, CANDIDATES) == replayed


def test_with_two_more_rules_counting_showings_freeing_room_a_lowered_cap_can_show_more():
    """Why the headline replay counts every logged showing: when a hidden showing frees its
    room (`replay_freeing_room`), it frees a unit of each other served rule, and each unit can
    admit a different offer; the headline replay of the same log shows no more."""
    partner = rule("partner", scope="member_partner", limit=2, window="total")
    channel = rule("channel", scope="member_channel", limit=2, window="total")
    current = (rule("offer", limit=2, window="total"), partner, channel)
    lowered = (rule("offer", limit=1, window="total"), partner, channel)
    log = [
        decision("m1", NOW, "a"),  # p1, app
        decision("m1", NOW + 1, "a"),  # again: fills the p1 and app caps, unless `a` is capped
        decision("m1", NOW + 2, "c"),  # p2, app: needs the channel cap
        decision("m1", NOW + 3, "b", channel="web"),  # p1, web: needs the partner cap
    ]

    freed = {rules: replay_freeing_room(rules, log, [], CANDIDATES) for rules in (current, lowered)}
    assert freed[current].shown_by_decision == (("a",), ("a",), (), ())
    assert freed[lowered].shown_by_decision == (("a",), (), ("c",), ("b",))
    assert replay(current, log, [], CANDIDATES).shown_by_decision == (("a",), ("a",), (), ())
    assert replay(lowered, log, [], CANDIDATES).shown_by_decision == (("a",), (), (), ())
