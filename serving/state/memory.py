"""The in-process state store: counters in dictionaries behind one lock; `select` decides by
perkrank.serving.domain.rules.select_offers (state/select.lua is its translation for Redis)."""

from __future__ import annotations

import bisect
import itertools
import math
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any, TypeVar

from perkrank.config import CapRule, CapsConfig
from perkrank.experiment_config import ExperimentsConfig
from perkrank.lever_config import LeversConfig
from perkrank.serving.domain.decisions import Decision, StoredDecision
from perkrank.serving.domain.events import (
    EVENT_ID_TTL_SECONDS,
    EventsRecorded,
    OfferEvent,
    StoredEvent,
)
from perkrank.serving.domain.rules import CapCounter, MemberState, select_offers
from perkrank.serving.domain.selection import (
    Preferences,
    Selection,
    SelectionRequest,
)
from perkrank.serving.state.event_counters import DECISIONS_KEPT, EVENTS_KEPT, event_counters
from perkrank.serving.state.keys import (
    event_id_key,
    member_cap_key,
    offer_cap_key,
    redeemed_key,
    shown_decision_key,
)
from perkrank.serving.state.live_records import (
    CATALOGS_KEPT,
    HISTORY_LENGTH,
    LIVE_VERSIONS,
    CapsVersion,
    CatalogVersion,
    Change,
    ExperimentsVersion,
    LeversVersion,
    LiveSetting,
    LiveVersions,
    caps_version,
    catalog_version,
    change,
    experiments_version,
    levers_version,
    live_change,
    setting_value,
)
from perkrank.serving.state.memory_privacy import KEY_PREFIX, MemoryPrivacyLog

CounterKey = tuple[str, str | None]
"""Where a count lives, named as in Redis: (key, hash field or None)."""
SWEEP_INTERVAL_SECONDS = 60.0
"""How often expired counters that nobody reads again are dropped."""


class MemoryStateStore(MemoryPrivacyLog):
    """StateStore in this process's memory: one process only, state is lost on exit."""

    def __init__(
        self, *, events_kept: int = EVENTS_KEPT, decisions_kept: int = DECISIONS_KEPT
    ) -> None:
        self._lock = threading.Lock()
        self._events: deque[StoredEvent] = deque(maxlen=events_kept)
        """The kept events, oldest first; the oldest are dropped beyond `events_kept`."""
        self._decisions: deque[StoredDecision] = deque(maxlen=decisions_kept)
        """The kept decisions, oldest first; the oldest are dropped beyond `decisions_kept`."""
        self._last_stream_id = (0, 0)
        self._preferences: dict[str, Preferences] = {}
        self._counters: dict[CounterKey, tuple[int, float]] = {}
        """(Redis key, hash field) → (count, expiry on the monotonic clock; inf: never)."""
        self._next_sweep = time.monotonic() + SWEEP_INTERVAL_SECONDS
        self._live_lock = threading.Lock()
        self._versions: dict[str, int] = {}
        self._live: dict[str, str] = {}
        """Live setting → JSON of its current version (as Redis holds it)."""
        self._changes: dict[str, list[str]] = {}
        """Live setting → JSON audit entries, newest first."""
        self._catalogs: dict[int, str] = {}
        """The last `CATALOGS_KEPT` published catalogs by version, as JSON."""
        self._init_privacy()

    def get_preferences(self, member_id: str) -> Preferences:
        """The member's preferences; defaults when none were set."""
        with self._lock:
            return self._preferences.get(member_id, Preferences())

    def set_preferences(self, member_id: str, preferences: Preferences) -> None:
        """Replace the member's preferences."""
        with self._lock:
            self._preferences[member_id] = preferences

    async def select(self, request: SelectionRequest) -> Selection:
        """Decide by `select_offers` on the state under the lock, then count what it chose."""
        with self._lock:
            clock = time.monotonic()
            if clock >= self._next_sweep:
                self._drop_expired(clock)
            preferences = self._preferences.get(request.member_id, Preferences())
            cap_counts = _CapCounts(self, request.member_id, clock)
            shown = (shown_decision_key(KEY_PREFIX, request.member_id, request.decision_id), None)
            reshown = bool(request.decision_id) and self._count(shown, clock) > 0
            state = MemberState(preferences, cap_counts, _Redeemed(self, clock), reshown)
            choice = select_offers(state, request)
            for increment in choice.increments:
                counter = cap_counts.key(increment.counter)
                self._increment(counter, increment.ttl_seconds, clock, increment.amount)
            if choice.remember_decision:
                self._increment(shown, request.decision_ttl_seconds, clock)
        return choice.selection()

    async def select_many(self, requests: Sequence[SelectionRequest]) -> list[Selection]:
        """`select` of each request in turn."""
        return [await self.select(request) for request in requests]

    def member_state(
        self, member_id: str, counters: Sequence[CapCounter], offer_ids: Sequence[str]
    ) -> MemberState:
        """The member's state as `select` would read it, without counting."""
        with self._lock:
            clock = time.monotonic()
            preferences = self._preferences.get(member_id, Preferences())
            cap_counts, redeemed = _CapCounts(self, member_id, clock), _Redeemed(self, clock)
            counts = {counter: cap_counts.get(counter, 0) for counter in counters}
            spent = {offer_id: redeemed.get(offer_id, 0) for offer_id in offer_ids}
        return MemberState(preferences, counts, spent)

    def record_events(
        self, events: Sequence[OfferEvent], rules: Sequence[CapRule], now: float
    ) -> EventsRecorded:
        """Skip duplicates, count, spend budget and keep the events, under the lock."""
        counted = [(event, event_counters(KEY_PREFIX, event, rules, now)) for event in events]
        duplicates = 0
        with self._lock:
            clock = time.monotonic()
            for event, counters in counted:
                if event.event_id is not None:
                    seen = (event_id_key(KEY_PREFIX, event.event_id), None)
                    if self._count(seen, clock):
                        duplicates += 1
                        continue
                    self._increment(seen, EVENT_ID_TTL_SECONDS, clock)
                for counter in counters:
                    self._increment((counter.key, counter.field), counter.ttl_seconds, clock)
                if event.type == "redemption":
                    self._increment((redeemed_key(KEY_PREFIX, event.offer_id), None), None, clock)
                self._events.append(StoredEvent(self._next_stream_id(), event))
        return EventsRecorded(len(events) - duplicates, duplicates)

    def read_events(self, after: str, count: int) -> list[StoredEvent]:
        """Up to `count` kept events after stream id `after`."""
        with self._lock:
            return _read_after(self._events, after, count)

    def record_decisions(self, decisions: Sequence[Decision]) -> None:
        """Keep `decisions`, in order, under the lock."""
        with self._lock:
            for decision in decisions:
                self._decisions.append(StoredDecision(self._next_stream_id(), decision))

    def read_decisions(self, after: str, count: int) -> list[StoredDecision]:
        """Up to `count` kept decisions after stream id `after`."""
        with self._lock:
            return _read_after(self._decisions, after, count)

    def ping(self) -> None:
        """Always reachable."""

    async def close(self) -> None:
        """Nothing to release."""

    def seed_caps(self, caps: CapsConfig, actor: str, now: float) -> CapsVersion:
        """The stored caps; `caps` become version 1 when none are stored."""
        document = self._publish("caps", setting_value(caps), actor, now, only_if_absent=True)
        return caps_version(document)

    def put_caps(self, caps: CapsConfig, actor: str, now: float) -> CapsVersion:
        """Store `caps` as the next version and audit the change."""
        return caps_version(self._publish("caps", setting_value(caps), actor, now))

    def get_caps(self) -> CapsVersion | None:
        """The caps in force; None before any were stored."""
        with self._live_lock:
            document = self._live.get("caps")
        return None if document is None else caps_version(document)

    def caps_history(self, limit: int) -> list[Change]:
        """The last `limit` cap changes, newest first."""
        return self._history("caps", limit)

    def publish_catalog(
        self, offers: list[dict[str, Any]], sha256: str, actor: str, now: float
    ) -> CatalogVersion:
        """Store validated offers as the next catalog version, audited."""
        value = {"offers": offers, "sha256": sha256}
        return catalog_version(self._publish("catalog", value, actor, now))

    def get_catalog(self) -> CatalogVersion | None:
        """The published catalog; None before the first publication."""
        with self._live_lock:
            document = self._live.get("catalog")
        return None if document is None else catalog_version(document)

    def get_catalog_version(self, version: int) -> CatalogVersion | None:
        """A kept published catalog; None when it was never published or is no longer kept."""
        with self._live_lock:
            document = self._catalogs.get(version)
        return None if document is None else catalog_version(document)

    def catalog_history(self, limit: int) -> list[Change]:
        """The last `limit` catalog publications, newest first."""
        return self._history("catalog", limit)

    def put_experiments(
        self, experiments: ExperimentsConfig, actor: str, now: float
    ) -> ExperimentsVersion:
        """Store `experiments` as the next version and audit the change."""
        value = setting_value(experiments)
        return experiments_version(self._publish("experiments", value, actor, now))

    def get_experiments(self) -> ExperimentsVersion | None:
        """The experiments in force; None before any were stored."""
        with self._live_lock:
            document = self._live.get("experiments")
        return None if document is None else experiments_version(document)

    def experiments_history(self, limit: int) -> list[Change]:
        """The last `limit` experiment changes, newest first."""
        return self._history("experiments", limit)

    def put_levers(self, levers: LeversConfig, actor: str, now: float) -> LeversVersion:
        """Store `levers` as the next version and audit the change."""
        return levers_version(self._publish("levers", setting_value(levers), actor, now))

    def get_levers(self) -> LeversVersion | None:
        """The levers in force; None before any were stored."""
        with self._live_lock:
            document = self._live.get("levers")
        return None if document is None else levers_version(document)

    def levers_history(self, limit: int) -> list[Change]:
        """The last `limit` lever changes, newest first."""
        return self._history("levers", limit)

    def live_versions(self) -> LiveVersions:
        """The caps, catalog and experiments versions and the reload generation."""
        with self._live_lock:
            return LiveVersions(**{name: self._versions.get(name, 0) for name in LIVE_VERSIONS})

    def request_reload(self) -> int:
        """Bump the reload generation."""
        with self._live_lock:
            self._versions["reload"] = self._versions.get("reload", 0) + 1
            return self._versions["reload"]

    def _publish(
        self,
        setting: LiveSetting,
        value: Any,
        actor: str,
        now: float,
        *,
        only_if_absent: bool = False,
    ) -> str:
        """JSON of the setting's current version after writing `value` as the next one."""
        with self._live_lock:
            old = self._live.get(setting)
            if old is not None and only_if_absent:
                return old
            version = self._versions.get(setting, 0) + 1
            document, entry = live_change(setting, version, value, actor, now, old)
            self._versions[setting] = version
            self._live[setting] = document
            if setting == "catalog":
                self._catalogs[version] = document
                self._catalogs.pop(version - CATALOGS_KEPT, None)
            history = self._changes.setdefault(setting, [])
            history.insert(0, entry)
            del history[HISTORY_LENGTH:]
            return document

    def _history(self, setting: LiveSetting, limit: int) -> list[Change]:
        with self._live_lock:
            return [change(entry) for entry in self._changes.get(setting, [])[:limit]]

    def _count(self, counter: CounterKey, clock: float) -> int:
        count, expires_at = self._counters.get(counter, (0, math.inf))
        if expires_at <= clock:
            del self._counters[counter]
            return 0
        return count

    def _increment(
        self, counter: CounterKey, ttl_seconds: int | None, clock: float, amount: int = 1
    ) -> None:
        count = self._count(counter, clock)
        if count == 0:
            expires_at = math.inf if ttl_seconds is None else clock + ttl_seconds
        else:
            expires_at = self._counters[counter][1]
        self._counters[counter] = (count + amount, expires_at)

    def _next_stream_id(self) -> str:
        """A stream id after every earlier one, `<ms>-<seq>` as Redis makes them."""
        last_milliseconds, last_sequence = self._last_stream_id
        milliseconds = max(int(time.time() * 1000), last_milliseconds)
        sequence = last_sequence + 1 if milliseconds == last_milliseconds else 0
        self._last_stream_id = (milliseconds, sequence)
        return f"{milliseconds}-{sequence}"

    def _drop_expired(self, clock: float) -> None:
        self._counters = {key: value for key, value in self._counters.items() if value[1] > clock}
        self._next_sweep = clock + SWEEP_INTERVAL_SECONDS


class _CapCounts:
    """The member's cap counters as `select_offers` reads them, looked up as the walk goes."""

    def __init__(self, store: MemoryStateStore, member_id: str, clock: float) -> None:
        self._store, self._member_id, self._clock = store, member_id, clock
        self._hashes: dict[tuple[str, str], str] = {}
        """(rule, bucket) → the key of the member's hash of that rule and bucket."""

    def get(self, counter: CapCounter, default: int, /) -> int:
        return self._store._count(self.key(counter), self._clock) or default

    def key(self, counter: CapCounter) -> CounterKey:
        """Where the counter lives: the key and hash field it has in Redis."""
        if counter.scope == "offer_total":
            return offer_cap_key(KEY_PREFIX, counter.value, counter.rule, counter.bucket), None
        hash_key = self._hashes.get((counter.rule, counter.bucket))
        if hash_key is None:
            hash_key = member_cap_key(KEY_PREFIX, self._member_id, counter.rule, counter.bucket)
            self._hashes[counter.rule, counter.bucket] = hash_key
        return hash_key, counter.value


class _Redeemed:
    """Redemptions by offer id as `select_offers` reads them, looked up as the walk goes."""

    def __init__(self, store: MemoryStateStore, clock: float) -> None:
        self._store, self._clock = store, clock

    def get(self, offer_id: str, default: int, /) -> int:
        key = (redeemed_key(KEY_PREFIX, offer_id), None)
        return self._store._count(key, self._clock) or default


Kept = TypeVar("Kept", StoredEvent, StoredDecision)


def _read_after(kept: deque[Kept], after: str, count: int) -> list[Kept]:
    """Up to `count` entries of `kept` (oldest first) whose stream id comes after `after`."""
    position = _stream_position(after)
    start = bisect.bisect_right(kept, position, key=lambda entry: _stream_position(entry.stream_id))
    return list(itertools.islice(kept, start, start + count))


def _stream_position(stream_id: str) -> tuple[int, int]:
    """A stream id `<ms>-<seq>` as numbers that sort like the ids."""
    milliseconds, _, sequence = stream_id.partition("-")
    return int(milliseconds), int(sequence or 0)
