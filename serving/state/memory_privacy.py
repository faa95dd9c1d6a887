"""`PrivacyLog` for the in-process store: consent records, forgetting and exclusions in
dictionaries behind the store's lock."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from perkrank.member_hash import member_hash
from perkrank.serving.domain.decisions import StoredDecision
from perkrank.serving.domain.events import StoredEvent
from perkrank.serving.domain.privacy import (
    CONSENTS_KEPT,
    FORGOTTEN_AUDIT_KEPT,
    ConsentRecord,
    ConsentSource,
    Exclusion,
    Forgotten,
    next_phase_cursor,
    phase_cursor,
)
from perkrank.serving.domain.retention import Cutoffs, stream_seconds
from perkrank.serving.domain.selection import Preferences
from perkrank.serving.state.keys import event_id_key, member_tag

KEY_PREFIX = "memory"


class MemoryPrivacyLog:
    """The `PrivacyLog` half of `MemoryStateStore` (which owns the state it reads)."""

    _lock: threading.Lock
    _preferences: dict[str, Preferences]
    _counters: dict[tuple[str, str | None], tuple[int, float]]
    _events: deque[StoredEvent]
    _decisions: deque[StoredDecision]

    def _init_privacy(self) -> None:
        self._consents: dict[str, list[ConsentRecord]] = {}
        """Member id → consent records, newest first."""
        self._suppressed: dict[str, float] = {}
        """Hash of a forgotten member's id → when they were first forgotten."""
        self._forgotten: list[Forgotten] = []
        """Forget audit entries, newest first."""

    def change_preferences(
        self,
        member_id: str,
        change: Callable[[Preferences], Preferences],
        consent: ConsentSource,
    ) -> ConsentRecord:
        """Store the changed preferences and their consent record, under the lock."""
        with self._lock:
            old = self._preferences.get(member_id, Preferences())
            record = ConsentRecord(member_id, consent, old, change(old))
            self._preferences[member_id] = record.new
            history = self._consents.setdefault(member_id, [])
            history.insert(0, record)
            del history[CONSENTS_KEPT:]
        return record

    def consent_history(self, member_id: str, limit: int) -> list[ConsentRecord]:
        """The member's last `limit` consent records, newest first."""
        with self._lock:
            return self._consents.get(member_id, [])[:limit]

    def read_consents(self, cursor: str, count: int) -> tuple[list[ConsentRecord], str]:
        """The records of `count` members in id order from position `cursor`."""
        start = int(cursor)
        with self._lock:
            members = sorted(self._consents)[start : start + count]
            records = [record for m in members for record in reversed(self._consents[m])]
            more = start + count < len(self._consents)
        return records, str(start + count) if more else "0"

    def forget_member(self, member_id: str, actor: str, now: float) -> Forgotten:
        """Drop everything naming the member, suppress the hash of their id, audit it."""
        hashed = member_hash(member_id)
        tag = member_tag(KEY_PREFIX, member_id) + ":"
        with self._lock:
            removed_preferences = self._preferences.pop(member_id, None) is not None
            consents = len(self._consents.pop(member_id, []))
            keys = {key for key, _ in self._counters if key.startswith(tag)}
            events = [kept for kept in self._events if kept.event.member_id == member_id]
            event_ids = {
                event_id_key(KEY_PREFIX, kept.event.event_id)
                for kept in events
                if kept.event.event_id is not None
            }
            keys |= event_ids & {key for key, _ in self._counters}
            self._counters = {k: v for k, v in self._counters.items() if k[0] not in keys}
            _keep(self._events, lambda kept: kept.event.member_id != member_id)
            decisions = len(self._decisions)
            _keep(self._decisions, lambda kept: kept.decision.member_id != member_id)
            already = hashed in self._suppressed
            self._suppressed.setdefault(hashed, now)
            removed = {
                "keys": len(keys) + removed_preferences + (consents > 0),
                "events": len(events),
                "decisions": decisions - len(self._decisions),
                "consents": consents,
            }
            forgotten = Forgotten(hashed, actor, now, already, removed)
            self._forgotten.insert(0, forgotten)
            del self._forgotten[FORGOTTEN_AUDIT_KEPT:]
        return forgotten

    def forgotten_audit(self, limit: int) -> list[Forgotten]:
        """The last `limit` forget audit entries, newest first."""
        with self._lock:
            return self._forgotten[:limit]

    def trim_expired(self, cutoffs: Cutoffs) -> dict[str, int]:
        """Drop the events, decisions and consent records from before their cut-off."""
        with self._lock:
            consents = 0
            for member_id, history in list(self._consents.items()):
                kept = [record for record in history if record.consent.at >= cutoffs.consents]
                consents += len(history) - len(kept)
                if kept:
                    self._consents[member_id] = kept
                else:
                    del self._consents[member_id]
            return {
                "events": _drop_before(self._events, cutoffs.events),
                "decisions": _drop_before(self._decisions, cutoffs.decisions),
                "consents": consents,
            }

    def read_exclusions(self, cursor: str, count: int) -> tuple[list[Exclusion], str]:
        """`count` forgotten members, then `count` with personalization off, per page."""
        phase, position = phase_cursor(cursor)
        start = int(position)
        with self._lock:
            if phase == "forgotten":
                rows = [Exclusion(h, phase, at) for h, at in sorted(self._suppressed.items())]
            else:
                off = [m for m, p in self._preferences.items() if not p.personalization]
                rows = [Exclusion(member_hash(m), phase) for m in sorted(off)]
        end = start + count
        return rows[start:end], next_phase_cursor(phase, str(end) if end < len(rows) else "0")


def _drop_before(kept: deque, cutoff: float) -> int:
    """Drop the stream entries of `kept` (oldest first) added before `cutoff`; how many."""
    removed = 0
    while kept and stream_seconds(kept[0].stream_id) < cutoff:
        kept.popleft()
        removed += 1
    return removed


def _keep(kept: deque, keep: Callable[[object], bool]) -> None:
    """Leave in `kept` only the entries `keep` accepts, in order (its maxlen stays)."""
    remaining = [entry for entry in kept if keep(entry)]
    kept.clear()
    kept.extend(remaining)
