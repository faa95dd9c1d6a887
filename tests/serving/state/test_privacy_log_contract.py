"""The privacy log port in both state stores: consent records of each change, forgetting a
member (everything naming them gone, the hash of their id suppressed, audited, idempotent),
and the exclusions training reads.

Each test runs against MemoryStateStore and RedisStateStore (the `store` fixture).
"""

import asyncio
import time

from perkrank.config import CapRule
from perkrank.member_hash import member_hash
from perkrank.privacy_config import DAY_SECONDS, Retention
from perkrank.serving.domain.decisions import Decision
from perkrank.serving.domain.events import OfferEvent
from perkrank.serving.domain.privacy import CONSENTS_KEPT, ConsentSource
from perkrank.serving.domain.retention import Cutoffs
from perkrank.serving.domain.selection import Candidate, Preferences, SelectionRequest

NOW = 1_780_000_000.0
SERVED = (CapRule(name="week", scope="member_offer", limit=9, window="week", counts="served"),)


def consent(at: float, source: str = "app") -> ConsentSource:
    return ConsentSource(actor="tests", source=source, at=at)


def opt_out(category: str):
    return lambda old: Preferences(
        opted_out_categories=old.opted_out_categories | {category},
        personalization=old.personalization,
    )


def test_each_change_is_a_consent_record_old_to_new(store):
    first = store.change_preferences("alice", opt_out("Beauty"), consent(NOW))
    second = store.change_preferences("alice", opt_out("Dining"), consent(NOW + 1, "web"))

    assert first.old == Preferences()
    assert first.changed() == ["opted_out_categories"]
    assert second.old.opted_out_categories == {"Beauty"}
    assert store.get_preferences("alice").opted_out_categories == {"Beauty", "Dining"}
    history = store.consent_history("alice", 10)
    assert history == [second, first]
    assert [record.consent for record in history] == [consent(NOW + 1, "web"), consent(NOW)]
    assert store.consent_history("alice", 1) == [second]
    assert store.consent_history("bob", 10) == []


def test_consents_are_bounded_per_member(store):
    for n in range(CONSENTS_KEPT + 5):
        store.change_preferences("alice", opt_out(f"c{n}"), consent(NOW + n))
    history = store.consent_history("alice", CONSENTS_KEPT + 10)
    assert len(history) == CONSENTS_KEPT
    assert history[0].consent.at == NOW + CONSENTS_KEPT + 4


def test_every_members_consents_read_page_by_page(store):
    members = [f"m-{n:02}" for n in range(25)]
    for n, member in enumerate(members):
        store.change_preferences(member, opt_out("Beauty"), consent(NOW + n))
        store.change_preferences(member, opt_out("Dining"), consent(NOW + n + 0.5))
    records, cursor = [], "0"
    while True:
        page, cursor = store.read_consents(cursor, 10)
        records += page
        if cursor == "0":
            break
    assert sorted({record.member_id for record in records}) == members
    assert len(records) == 50
    for member in members:  # each member's oldest first
        ats = [record.consent.at for record in records if record.member_id == member]
        assert ats == sorted(ats)


def test_forgetting_removes_everything_naming_the_member_and_suppresses_them(store):
    store.change_preferences("alice", opt_out("Beauty"), consent(NOW))
    store.change_preferences("bob", opt_out("Beauty"), consent(NOW))
    candidates = [Candidate("o1", "P1", "Grocery")]
    for member in ("alice", "bob"):
        request = SelectionRequest(member, "app", NOW, 5, 5, candidates, candidates, SERVED)
        asyncio.run(store.select(request))
    events = [
        OfferEvent("click", member, "o1", "P1", "Grocery", "app", NOW, f"e-{member}", None)
        for member in ("alice", "bob")
    ]
    store.record_events(events, SERVED, NOW)
    store.record_decisions([decision("d-a", "alice"), decision("d-b", "bob")])

    forgotten = store.forget_member("alice", "ops", NOW + 5)

    assert forgotten.member_hash == member_hash("alice")
    assert (forgotten.actor, forgotten.at, forgotten.already_suppressed) == ("ops", NOW + 5, False)
    assert forgotten.removed["events"] == 1
    assert forgotten.removed["decisions"] == 1
    assert forgotten.removed["consents"] == 1
    assert store.get_preferences("alice") == Preferences()
    assert store.consent_history("alice", 10) == []
    assert [kept.event.member_id for kept in store.read_events("0-0", 10)] == ["bob"]
    assert [kept.decision.member_id for kept in store.read_decisions("0-0", 10)] == ["bob"]
    assert store.consent_history("bob", 10) != []
    assert "alice" not in repr(store.forgotten_audit(10))
    # a forgotten member's counters are gone: they start again from nothing
    request = SelectionRequest("alice", "app", NOW, 5, 5, candidates, candidates, SERVED)
    assert asyncio.run(store.select(request)).offer_ids == ["o1"]

    again = store.forget_member("alice", "ops", NOW + 9)
    assert again.already_suppressed is True
    assert again.removed["events"] == again.removed["decisions"] == 0
    assert [entry.at for entry in store.forgotten_audit(10)] == [NOW + 9, NOW + 5]
    exclusions = read_all_exclusions(store)
    assert [(e.member_hash, e.reason, e.at) for e in exclusions] == [
        (member_hash("alice"), "forgotten", NOW + 5)
    ]


def test_members_with_personalization_off_are_excluded_by_hash(store):
    store.set_preferences("carol", Preferences(personalization=False))
    store.change_preferences("dave", lambda _: Preferences(personalization=False), consent(NOW))
    store.change_preferences("erin", lambda _: Preferences(personalization=False), consent(NOW))
    store.change_preferences("erin", lambda _: Preferences(), consent(NOW + 1))
    store.forget_member("dave", "ops", NOW)

    exclusions = {(e.member_hash, e.reason) for e in read_all_exclusions(store, count=1)}
    assert exclusions == {
        (member_hash("carol"), "no_personalization"),
        (member_hash("dave"), "forgotten"),
    }


def read_all_exclusions(store, count=100):
    rows, cursor = [], "0"
    while True:
        page, cursor = store.read_exclusions(cursor, count)
        rows += page
        if cursor == "0":
            return rows


def decision(decision_id: str, member_id: str) -> Decision:
    return Decision(decision_id, member_id, "app", NOW, "v1", None, None, "personalized", True, ())


def test_records_expire_after_their_retention_period(store):
    """The clock is injected (the cut-offs); stream entries carry the time they were added."""
    retention = Retention(events_days=400, decisions_days=600, consents_days=1827)
    added = time.time()
    store.change_preferences("alice", opt_out("Dining"), consent(added - 1828 * DAY_SECONDS))
    store.change_preferences("alice", opt_out("Beauty"), consent(added - 1826 * DAY_SECONDS))
    store.change_preferences("bob", opt_out("Beauty"), consent(added - 1900 * DAY_SECONDS))
    event = OfferEvent("click", "alice", "o1", "P1", "Grocery", "app", NOW, "e-1", None)
    store.record_events([event], SERVED, NOW)
    store.record_decisions([decision("d-a", "alice")])

    nothing = store.trim_expired(Cutoffs.at(retention, added - 1))
    day_399 = store.trim_expired(Cutoffs.at(retention, added + 399 * DAY_SECONDS))
    kept_events = store.read_events("0-0", 10)
    day_401 = store.trim_expired(Cutoffs.at(retention, added + 401 * DAY_SECONDS))

    assert nothing == {"events": 0, "decisions": 0, "consents": 2}
    assert day_399 == {"events": 0, "decisions": 0, "consents": 1}
    assert len(kept_events) == 1
    assert day_401 == {"events": 1, "decisions": 0, "consents": 0}
    assert store.read_events("0-0", 10) == []
    assert [kept.decision.decision_id for kept in store.read_decisions("0-0", 10)] == ["d-a"]
    assert store.trim_expired(Cutoffs.at(retention, added + 601 * DAY_SECONDS))["decisions"] == 1
    assert store.read_decisions("0-0", 10) == []
    assert store.consent_history("bob", 10) == []
    assert store.consent_history("alice", 10) == []
    records, _ = store.read_consents("0", 100)
    assert records == []
