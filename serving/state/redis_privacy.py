"""`PrivacyLog` on Redis: consent records in a bounded list per member, forgetting by
DEL/XDEL, and the suppression hash and personalization-off set training reads (keys in
docs/redis_keys.md)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import redis

from perkrank.member_hash import member_hash
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
from perkrank.serving.domain.retention import Cutoffs, min_stream_id
from perkrank.serving.domain.selection import Preferences
from perkrank.serving.state.keys import (
    consents_key,
    decisions_key,
    event_id_key,
    events_key,
    forgotten_audit_key,
    glob_escaped,
    member_tag,
    no_personalization_key,
    preferences_key,
    suppressed_key,
)
from perkrank.serving.state.redis_fields import fields_from_preferences, preferences_from_fields

STREAM_PAGE = 1000
"""Stream entries read per XRANGE while looking for a forgotten member's entries."""
TRIM_PAGE = 1000
"""Keys per SCAN page while trimming consent lists."""
TRIM_CONSENTS = """
-- KEYS: consent lists (newest first); ARGV[1]: the cut-off (Unix seconds). Pops the records
-- from before it off each list's end; returns how many. Atomic with LPUSH of a new record.
local removed = 0
for _, key in ipairs(KEYS) do
  while true do
    local oldest = redis.call('LINDEX', key, -1)
    if not oldest or cjson.decode(oldest).at >= tonumber(ARGV[1]) then
      break
    end
    redis.call('RPOP', key)
    removed = removed + 1
  end
end
return removed
"""


class RedisPrivacyLog:
    """The `PrivacyLog` half of `RedisStateStore` (which owns the client and the breaker)."""

    _client: redis.Redis
    _prefix: str
    _call: Callable[..., Any]
    _cluster = False
    """On Redis Cluster (`RedisClusterStateStore`): shared keys in their groups' slots and no
    transaction across slots."""

    def _write_preferences(self, pipeline: Any, member_id: str, preferences: Preferences) -> None:
        """Queue the replacement of the member's preferences hash and, on one server, their
        personalization flag (on Cluster another slot: `_finish_preferences` writes it)."""
        key = preferences_key(self._prefix, member_id)
        pipeline.delete(key)
        pipeline.hset(key, mapping=fields_from_preferences(preferences))
        if not self._cluster:
            self._flag_personalization(pipeline, member_id, preferences)

    def _finish_preferences(self, member_id: str, preferences: Preferences) -> None:
        """On Cluster, after the member's transaction: the personalization-off set."""
        if self._cluster:
            self._flag_personalization(self._client, member_id, preferences)

    def _flag_personalization(self, target: Any, member_id: str, preferences: Preferences) -> None:
        off = no_personalization_key(self._prefix, cluster=self._cluster)
        if preferences.personalization:
            target.srem(off, member_id)
        else:
            target.sadd(off, member_id)

    def change_preferences(
        self,
        member_id: str,
        change: Callable[[Preferences], Preferences],
        consent: ConsentSource,
    ) -> ConsentRecord:
        """Read, change and write the preferences with their consent record in one
        MULTI/EXEC, retried when the preferences changed meanwhile (WATCH)."""
        key = preferences_key(self._prefix, member_id)
        history = consents_key(self._prefix, member_id)

        def apply() -> ConsentRecord:
            with self._client.pipeline(transaction=True) as pipeline:
                while True:
                    try:
                        pipeline.watch(key)
                        old = preferences_from_fields(pipeline.hgetall(key))
                        record = ConsentRecord(member_id, consent, old, change(old))
                        pipeline.multi()
                        self._write_preferences(pipeline, member_id, record.new)
                        pipeline.lpush(history, record.to_json())
                        pipeline.ltrim(history, 0, CONSENTS_KEPT - 1)
                        pipeline.execute()
                        self._finish_preferences(member_id, record.new)
                        return record
                    except redis.WatchError:
                        continue

        return self._call("changing preferences", apply)

    def consent_history(self, member_id: str, limit: int) -> list[ConsentRecord]:
        """The member's last `limit` consent records, newest first (one LRANGE)."""
        key = consents_key(self._prefix, member_id)
        entries = self._call("reading consents", self._client.lrange, key, 0, limit - 1)
        return [ConsentRecord.from_json(entry) for entry in entries]

    def read_consents(self, cursor: str, count: int) -> tuple[list[ConsentRecord], str]:
        """One SCAN page of members' consent lists (`count`: its hint), each read whole."""
        pattern = glob_escaped(self._prefix) + ":{m:*}:consents"

        def page() -> tuple[str, list[list[str]]]:
            position, keys = self._scan_page(cursor, pattern, count)
            pipeline = self._client.pipeline(transaction=False)
            for key in keys:
                pipeline.lrange(key, 0, -1)
            return position, pipeline.execute()

        position, lists = self._call("reading consents", page)
        records = [ConsentRecord.from_json(entry) for entries in lists for entry in entries[::-1]]
        return records, position

    def _scan_page(self, cursor: str, pattern: str, count: int) -> tuple[str, list[str]]:
        """One SCAN page from `cursor`: the next cursor ("0": no more) and the keys found."""
        position, keys = self._client.scan(int(cursor), match=pattern, count=count)
        return str(position), keys

    def forget_member(self, member_id: str, actor: str, now: float) -> Forgotten:
        """DEL every key of the member's hash tag, XDEL their events and decisions (and DEL the
        id keys of those events), drop them from the personalization-off set, add the hash of
        their id to the suppression hash (HSETNX) and audit it. Idempotent; not one transaction
        (streams are searched page by page), so a repeat finishes what a failed call began."""
        hashed = member_hash(member_id)

        def forget() -> Forgotten:
            consents = self._client.llen(consents_key(self._prefix, member_id))
            keys = list(self._member_keys(member_id))
            events, event_ids = self._matching_entries(
                events_key(self._prefix, cluster=self._cluster),
                lambda fields: fields.get("member_id") == member_id,
            )
            decisions, _ = self._matching_entries(
                decisions_key(self._prefix, cluster=self._cluster),
                lambda fields: json.loads(fields["decision"])["member_id"] == member_id,
            )
            id_keys = [event_id_key(self._prefix, event_id) for event_id in event_ids if event_id]
            # On Cluster these keys lie in many slots: no transaction, one DEL per key.
            pipeline = self._client.pipeline(transaction=not self._cluster)
            for key in keys + id_keys:
                pipeline.delete(key)
            if events:
                pipeline.xdel(events_key(self._prefix, cluster=self._cluster), *events)
            if decisions:
                pipeline.xdel(decisions_key(self._prefix, cluster=self._cluster), *decisions)
            pipeline.srem(no_personalization_key(self._prefix, cluster=self._cluster), member_id)
            pipeline.hsetnx(suppressed_key(self._prefix, cluster=self._cluster), hashed, repr(now))
            first = pipeline.execute()[-1]
            removed = {
                "keys": len(keys),
                "events": len(events),
                "decisions": len(decisions),
                "consents": consents,
            }
            forgotten = Forgotten(hashed, actor, now, not first, removed)
            audit = forgotten_audit_key(self._prefix, cluster=self._cluster)
            pipeline = self._client.pipeline(transaction=True)
            pipeline.lpush(audit, forgotten.to_json())
            pipeline.ltrim(audit, 0, FORGOTTEN_AUDIT_KEPT - 1)
            pipeline.execute()
            return forgotten

        return self._call("forgetting a member", forget)

    def forgotten_audit(self, limit: int) -> list[Forgotten]:
        """The last `limit` forget audit entries, newest first (one LRANGE)."""
        key = forgotten_audit_key(self._prefix, cluster=self._cluster)
        entries = self._call("reading the forget audit", self._client.lrange, key, 0, limit - 1)
        return [Forgotten.from_json(entry) for entry in entries]

    def trim_expired(self, cutoffs: Cutoffs) -> dict[str, int]:
        """XTRIM MINID the event and decision streams at their cut-offs; pop the consent
        records from before theirs off the end (the oldest) of every member's list, one SCAN
        page and one script call at a time."""
        streams = (
            events_key(self._prefix, cluster=self._cluster),
            decisions_key(self._prefix, cluster=self._cluster),
        )
        cutoff_ids = (min_stream_id(cutoffs.events), min_stream_id(cutoffs.decisions))

        trim_consents = self._client.register_script(TRIM_CONSENTS)

        def trim() -> dict[str, int]:
            pipeline = self._client.pipeline(transaction=False)
            for key, cutoff_id in zip(streams, cutoff_ids, strict=True):
                pipeline.xtrim(key, minid=cutoff_id, approximate=False)
            events, decisions = pipeline.execute()
            consents, cursor = 0, "0"
            pattern = glob_escaped(self._prefix) + ":{m:*}:consents"
            while True:
                cursor, keys = self._scan_page(cursor, pattern, TRIM_PAGE)
                for group in self._slot_groups(keys):
                    consents += trim_consents(keys=group, args=[cutoffs.consents])
                if cursor == "0":
                    break
            return {"events": events, "decisions": decisions, "consents": consents}

        return self._call("removing expired records", trim)

    def read_exclusions(self, cursor: str, count: int) -> tuple[list[Exclusion], str]:
        """One HSCAN page of the suppression hash, then SSCAN pages of the
        personalization-off set (ids hashed on the way out)."""
        phase, position = phase_cursor(cursor)
        if phase == "forgotten":
            key = suppressed_key(self._prefix, cluster=self._cluster)
            after, found = self._call(
                "reading exclusions", self._client.hscan, key, int(position), None, count
            )
            rows = [Exclusion(h, phase, float(at)) for h, at in found.items()]
        else:
            key = no_personalization_key(self._prefix, cluster=self._cluster)
            after, members = self._call(
                "reading exclusions", self._client.sscan, key, int(position), None, count
            )
            rows = [Exclusion(member_hash(member), phase) for member in members]
        return rows, next_phase_cursor(phase, str(after))

    def _slot_groups(self, keys: list[str]) -> list[list[str]]:
        """`keys` in groups one script may touch: all of them on one server, one group per
        hash slot on Cluster."""
        if not self._cluster:
            return [keys] if keys else []
        groups: dict[int, list[str]] = {}
        for key in keys:
            groups.setdefault(self._client.keyslot(key), []).append(key)
        return list(groups.values())

    def _member_keys(self, member_id: str) -> Iterator[str]:
        """Every key in the member's hash tag (SCAN MATCH)."""
        pattern = glob_escaped(member_tag(self._prefix, member_id)) + ":*"
        yield from self._client.scan_iter(match=pattern, count=STREAM_PAGE)

    def _matching_entries(
        self, key: str, matches: Callable[[dict[str, str]], bool]
    ) -> tuple[list[str], list[str]]:
        """The ids of the stream's entries `matches` accepts, and their `event_id` fields."""
        ids: list[str] = []
        event_ids: list[str] = []
        start = "-"
        while True:
            entries = self._client.xrange(key, start, "+", STREAM_PAGE)
            for stream_id, fields in entries:
                if matches(fields):
                    ids.append(stream_id)
                    event_ids.append(fields.get("event_id", ""))
            if len(entries) < STREAM_PAGE:
                return ids, event_ids
            start = f"({entries[-1][0]}"
