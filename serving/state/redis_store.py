"""The Redis state store: preferences in one hash per member, selection in one Lua script call."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from perkrank.config import CapRule
from perkrank.serving.domain.decisions import Decision, StoredDecision
from perkrank.serving.domain.events import (
    EVENT_ID_TTL_SECONDS,
    EventsRecorded,
    OfferEvent,
    StoredEvent,
)
from perkrank.serving.domain.row_selection import RowBatch, SelectReply
from perkrank.serving.domain.rules import CapCounter, MemberState
from perkrank.serving.domain.selection import (
    SUPPRESSION_REASONS,
    Preferences,
    Selection,
    SelectionRequest,
)
from perkrank.serving.domain.windows import current_bucket
from perkrank.serving.state.breaker import Breaker
from perkrank.serving.state.event_counters import DECISIONS_KEPT, EVENTS_KEPT, event_counters
from perkrank.serving.state.keys import (
    decisions_key,
    event_id_key,
    events_key,
    preferences_key,
    redeemed_key,
)
from perkrank.serving.state.ports import StateStoreError
from perkrank.serving.state.redis_fields import (
    event_of_entry,
    preferences_from_fields,
    stream_entry,
)
from perkrank.serving.state.redis_live import RedisLiveSettings
from perkrank.serving.state.redis_persistence import warn_without_persistence
from perkrank.serving.state.redis_privacy import RedisPrivacyLog
from perkrank.serving.state.redis_snapshot import read_member_state
from perkrank.serving.state.script_pipe import Packed, ScriptPipe
from perkrank.serving.state.select_arguments import NumberedLists, SelectCall, row_calls

SELECT_SCRIPT = Path(__file__).with_name("select.lua").read_text(encoding="utf-8")
EVENTS_SCRIPT = Path(__file__).with_name("events.lua").read_text(encoding="utf-8")
DECISIONS_SCRIPT = """
for i = 2, #ARGV do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'decision', ARGV[i])
end
"""
"""KEYS: the decision stream; ARGV: entries kept, then each decision's JSON."""
LAST_STREAM_ID = f"{2**64 - 1}-{2**64 - 1}"
"""The largest stream id: nothing comes after it (and XRANGE refuses to start after it)."""
SELECT_BATCH = 250
"""Members per select.lua call in `select_many`: Redis runs a call (~20 ms for 250 members)
without serving other clients in between."""
HEALTH_CHECK_INTERVAL_SECONDS = 30
"""A pooled connection idle for longer is PINGed (and reconnected) before it is used again."""
RETRY_ON = (redis.ConnectionError,)
"""Errors worth one retry: a broken connection. A timed-out script may have run already."""


class RedisStateStore(RedisLiveSettings, RedisPrivacyLog):
    """StateStore on one Redis server (not Cluster: see docs/redis_keys.md).

    `key_prefix` starts every key (ServeConfig.key_prefix: no braces); `timeout_ms` bounds
    connecting and every reply. Every Redis error becomes StateStoreError. After Redis failed
    to answer, one blocking call at a time tries it again and the others fail at once
    (`Breaker`); the offers script's pipe shares one connection attempt among its calls.
    """

    def __init__(
        self,
        url: str,
        key_prefix: str,
        timeout_ms: int,
        *,
        events_kept: int = EVENTS_KEPT,
        decisions_kept: int = DECISIONS_KEPT,
    ) -> None:
        parts = urlsplit(url)
        self._location = parts.netloc.rpartition("@")[2] or parts.path
        self._prefix = key_prefix
        self._url = url
        self._options: dict[str, Any] = {
            "decode_responses": True,
            "socket_timeout": timeout_ms / 1000,
            "socket_connect_timeout": timeout_ms / 1000,
            "health_check_interval": HEALTH_CHECK_INTERVAL_SECONDS,
        }
        self._client = self._open_client(url)
        self._events_script = self._client.register_script(EVENTS_SCRIPT)
        self._decisions_script = self._client.register_script(DECISIONS_SCRIPT)
        self.breaker = Breaker()
        self._events_kept = events_kept
        self._decisions_kept = decisions_kept
        # `select` is awaited: while Redis works, the event loop serves other requests. A
        # connection belongs to one event loop, so each loop that selects gets its own pipe.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._select_pipe: ScriptPipe | None = None
        self._cached_rules: Sequence[CapRule] | None = None
        self._cached_second = 0
        self._cached_rules_text = ""
        self._numbered_lists = NumberedLists()

    def get_preferences(self, member_id: str) -> Preferences:
        """The member's preferences; defaults when none were set. One round trip."""
        key = preferences_key(self._prefix, member_id)
        fields = self._call("reading preferences", self._client.hgetall, key)
        return preferences_from_fields(fields)

    def set_preferences(self, member_id: str, preferences: Preferences) -> None:
        """Replace all of the member's preferences atomically (MULTI/EXEC, one round trip)."""

        def write() -> None:
            pipeline = self._client.pipeline(transaction=True)
            self._write_preferences(pipeline, member_id, preferences)
            pipeline.execute()
            self._finish_preferences(member_id, preferences)

        self._call("writing preferences", write)

    async def select(self, request: SelectionRequest) -> Selection:
        """Apply opt-outs, consents, partner limit, budgets and caps; count what is returned
        (one call)."""
        try:
            replies = await self._pipe_of_this_loop().call(self._select_arguments(request))
        except redis.RedisError as error:
            raise self._error("selecting offers", error) from error
        return self._selection(request, replies[0])

    async def select_many(self, requests: Sequence[SelectionRequest]) -> list[Selection]:
        """`select` of each request, in order: `SELECT_BATCH` members per script call, the
        calls pipelined in one write. Each member is counted atomically on its own, as if they
        asked one by one; offer-wide counters are read and written once per call."""
        if not requests:
            return []
        calls = []
        for start in range(0, len(requests), SELECT_BATCH):
            call = SelectCall(self._prefix)
            for request in requests[start : start + SELECT_BATCH]:
                call.add(request, self._rules_text(request.rules, request.now))
            calls.append(call.arguments())
        members = await self._select_calls(calls)
        return [self._selection(r, reply) for r, reply in zip(requests, members, strict=True)]

    async def select_rows(self, batch: RowBatch) -> list[SelectReply]:
        """select.lua's reply for each member of `batch`, in order: `SELECT_BATCH` members
        per call (`row_calls`), pipelined in one write, each counted as `select_many` would."""
        if not batch.members:
            return []
        rules_text = self._rules_text(batch.rules, batch.now)
        return await self._select_calls(row_calls(self._prefix, batch, rules_text, SELECT_BATCH))

    async def _select_calls(self, calls: Sequence[Packed]) -> list[Any]:
        """The members' replies of select.lua `calls`, pipelined in one write, in order."""
        try:
            replies = await self._pipe_of_this_loop().call_many(calls)
        except redis.RedisError as error:
            raise self._error("selecting offers", error) from error
        members: list[Any] = []
        for reply in replies:
            if isinstance(reply, redis.RedisError):
                raise self._error("selecting offers", reply)
            members += reply
        return members

    def _selection(self, request: SelectionRequest, reply: Any) -> Selection:
        """The Selection select.lua's `reply` describes."""
        personalized = reply[0] == 1
        candidates = request.personalized if personalized else request.fallback
        chosen = 2 + len(SUPPRESSION_REASONS)
        counts = zip(SUPPRESSION_REASONS, reply[2:chosen], strict=True)
        suppressed = {reason: count for reason, count in counts if count}
        offer_ids = [candidates[i].offer_id for i in reply[chosen:]]
        return Selection(offer_ids, personalized, suppressed, purchase_reasons=reply[1] == 1)

    def record_events(
        self, events: Sequence[OfferEvent], rules: Sequence[CapRule], now: float
    ) -> EventsRecorded:
        """Skip duplicates, count, spend budget and append to the stream: one script call."""
        arguments: list[Any] = [
            events_key(self._prefix, cluster=self._cluster),
            self._events_kept,
            EVENT_ID_TTL_SECONDS,
            len(events),
        ]
        for event in events:
            counters = event_counters(self._prefix, event, rules, now)
            entry = stream_entry(event)
            arguments += (
                "" if event.event_id is None else event_id_key(self._prefix, event.event_id),
                redeemed_key(self._prefix, event.offer_id) if event.type == "redemption" else "",
                len(counters),
            )
            for counter in counters:
                arguments += (counter.key, counter.field or "", counter.ttl_seconds or 0)
            arguments += (len(entry), *entry)
        accepted, duplicates = self._call(
            "recording events", lambda: self._events_script(args=arguments)
        )
        return EventsRecorded(accepted, duplicates)

    def read_events(self, after: str, count: int) -> list[StoredEvent]:
        """Up to `count` kept events after stream id `after` (one XRANGE)."""
        if after == LAST_STREAM_ID:
            return []
        key = events_key(self._prefix, cluster=self._cluster)
        entries = self._call("reading events", self._client.xrange, key, f"({after}", "+", count)
        return [StoredEvent(stream_id, event_of_entry(fields)) for stream_id, fields in entries]

    def record_decisions(self, decisions: Sequence[Decision]) -> None:
        """Append each decision's JSON to the decision stream (XADD MAXLEN ~), one script
        call for the batch (a campaign's chunk is one command, not one per decision)."""
        if not decisions:
            return
        key = decisions_key(self._prefix, cluster=self._cluster)
        entries = [decision.record_json() for decision in decisions]
        arguments = [self._decisions_kept, *entries]
        self._call(
            "recording decisions",
            lambda: self._decisions_script(keys=[key], args=arguments),
        )

    def read_decisions(self, after: str, count: int) -> list[StoredDecision]:
        """Up to `count` kept decisions after stream id `after` (one XRANGE)."""
        if after == LAST_STREAM_ID:
            return []
        key = decisions_key(self._prefix, cluster=self._cluster)
        entries = self._call("reading decisions", self._client.xrange, key, f"({after}", "+", count)
        return [
            StoredDecision(stream_id, Decision.from_record(json.loads(fields["decision"])))
            for stream_id, fields in entries
        ]

    def member_state(
        self, member_id: str, counters: Sequence[CapCounter], offer_ids: Sequence[str]
    ) -> MemberState:
        """The member's state as `select` would read it, without counting (one pipeline)."""
        reads = (self._client, self._prefix, member_id, counters, offer_ids)
        return self._call("reading member state", read_member_state, *reads)

    @property
    def select_connection_attempts(self) -> int:
        """Connections the offers script's pipe of the latest event loop tried so far."""
        return 0 if self._select_pipe is None else self._select_pipe.connection_attempts

    def warn_without_persistence(self) -> None:
        """Log one warning when this Redis forgets opt-outs on restart (startup check)."""
        warn_without_persistence(self._client)

    def ping(self) -> None:
        """Raise StateStoreError unless Redis answers."""
        self._call("pinging", self._client.ping)

    async def close(self) -> None:
        """Close every pooled connection (those of other event loops are left to them)."""
        self._client.close()
        if self._select_pipe is not None and self._loop is asyncio.get_running_loop():
            self._select_pipe.close()
        self._loop = self._select_pipe = None

    def _open_client(self, url: str) -> Any:
        """The blocking client every call but `select` uses."""
        retry = Retry(NoBackoff(), retries=1, supported_errors=RETRY_ON)
        return redis.Redis.from_url(url, retry=retry, **self._options)

    def _pipe_of_this_loop(self) -> ScriptPipe:
        loop = asyncio.get_running_loop()
        if loop is not self._loop or self._select_pipe is None:
            timeout = self._options["socket_timeout"]
            self._loop, self._select_pipe = loop, ScriptPipe(self._url, SELECT_SCRIPT, timeout)
        return self._select_pipe

    def _call(self, action: str, command: Any, *arguments: Any) -> Any:
        """`command(*arguments)` through the breaker, its Redis errors raised as
        StateStoreError."""
        try:
            return self.breaker.call(command, *arguments)
        except redis.RedisError as error:
            raise self._error(action, error) from error

    def _select_arguments(self, request: SelectionRequest, cluster_state: str = "") -> Packed:
        """select.lua's ARGV for `request` alone (on Cluster with its offers' state); its lists'
        numbering kept by the lists (`NumberedLists`)."""
        rules_text = self._rules_text(request.rules, request.now)
        return self._numbered_lists.arguments(self._prefix, request, rules_text, cluster_state)

    def _rules_text(self, rules: Sequence[CapRule], now: float) -> str:
        """The rules as select.lua reads them (rules split by \\x1e, fields by \\x1f), cached
        for one rule set and whole second (every window boundary is a whole second, so
        buckets and their ttl cannot change within it). Names, scopes and bucket labels hold
        neither separator."""
        second = math.floor(now)
        if rules is self._cached_rules and second == self._cached_second:
            return self._cached_rules_text
        records = []
        for rule in rules:
            bucket = current_bucket(rule.window, now)
            served = 1 if rule.counts == "served" else 0
            ttl = bucket.ttl_seconds or 0
            fields = (rule.name, rule.scope, rule.limit, served, bucket.label, ttl)
            records.append("\x1f".join(map(str, fields)))
        self._cached_rules, self._cached_second = rules, second
        self._cached_rules_text = "\x1e".join(records)
        return self._cached_rules_text

    def _error(self, action: str, error: redis.RedisError) -> StateStoreError:
        return StateStoreError(f"Redis at {self._location} failed while {action}: {error}")
