"""The Redis state store: preferences in one hash per member, selection in one Lua script call."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from perkrank.config import CapRule
from perkrank.serving.keys import cap_counter, preferences_key, redeemed_key
from perkrank.serving.store import (
    SUPPRESSION_REASONS,
    Candidate,
    Event,
    Preferences,
    Selection,
    SelectionRequest,
    StateStoreError,
)
from perkrank.serving.windows import current_bucket

SELECT_SCRIPT = Path(__file__).with_name("select.lua").read_text(encoding="utf-8")
HEALTH_CHECK_INTERVAL_SECONDS = 30
"""A pooled connection idle for longer is PINGed (and reconnected) before it is used again."""

_OPT_OUT_KINDS = ("channel", "category", "partner")


class RedisStateStore:
    """StateStore on one Redis server (not Cluster: see perkrank.serving.keys).

    `key_prefix` starts every key (ServeConfig.key_prefix: no braces); `timeout_ms` bounds
    connecting and every reply. Every Redis error becomes StateStoreError.
    """

    def __init__(self, url: str, key_prefix: str, timeout_ms: int) -> None:
        parts = urlsplit(url)
        self._location = parts.netloc.rpartition("@")[2] or parts.path
        self._prefix = key_prefix
        # One retry, on a broken connection only: a timed-out script may have run already.
        self._client = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout_ms / 1000,
            socket_connect_timeout=timeout_ms / 1000,
            health_check_interval=HEALTH_CHECK_INTERVAL_SECONDS,
            retry=Retry(NoBackoff(), retries=1, supported_errors=(redis.ConnectionError,)),
        )
        self._select_script = self._client.register_script(SELECT_SCRIPT)

    def get_preferences(self, member_id: str) -> Preferences:
        """The member's preferences; defaults when none were set. One round trip."""
        try:
            fields = self._client.hgetall(preferences_key(self._prefix, member_id))
        except redis.RedisError as error:
            raise self._error("reading preferences", error) from error
        return _preferences_from_fields(fields)

    def set_preferences(self, member_id: str, preferences: Preferences) -> None:
        """Replace all of the member's preferences atomically (MULTI/EXEC, one round trip)."""
        key = preferences_key(self._prefix, member_id)
        pipeline = self._client.pipeline(transaction=True)
        pipeline.delete(key)
        pipeline.hset(key, mapping=_fields_from_preferences(preferences))
        try:
            pipeline.execute()
        except redis.RedisError as error:
            raise self._error("writing preferences", error) from error

    def select(self, request: SelectionRequest) -> Selection:
        """Apply opt-outs, partner limit, budgets and caps; count what is returned (one call)."""
        try:
            reply = self._select_script(args=self._select_arguments(request))
        except redis.RedisError as error:
            raise self._error("selecting offers", error) from error
        personalized = reply[0] == 1
        candidates = request.personalized if personalized else request.fallback
        counts = zip(SUPPRESSION_REASONS, reply[1:5], strict=True)
        suppressed = {reason: count for reason, count in counts if count}
        return Selection([candidates[i].offer_id for i in reply[5:]], personalized, suppressed)

    def record_event(
        self,
        event: Event,
        member_id: str,
        channel: str,
        offer: Candidate,
        now: float,
        rules: Sequence[CapRule],
    ) -> None:
        """Count `event` against every rule counting it; a redemption also spends budget."""
        pipeline = self._client.pipeline(transaction=True)
        for rule in rules:
            if rule.counts != event:
                continue
            bucket = current_bucket(rule.window, now)
            key, field = cap_counter(
                self._prefix,
                rule.scope,
                rule.name,
                bucket.label,
                member_id=member_id,
                channel=channel,
                offer_id=offer.offer_id,
                partner_id=offer.partner_id,
            )
            if field is None:
                pipeline.incr(key)
            else:
                pipeline.hincrby(key, field)
            if bucket.ttl_seconds is not None:
                pipeline.expire(key, bucket.ttl_seconds)
        if event == "redemption":
            pipeline.incr(redeemed_key(self._prefix, offer.offer_id))
        try:
            pipeline.execute()
        except redis.RedisError as error:
            raise self._error(f"recording a {event}", error) from error

    def ping(self) -> None:
        """Raise StateStoreError unless Redis answers."""
        try:
            self._client.ping()
        except redis.RedisError as error:
            raise self._error("pinging", error) from error

    def close(self) -> None:
        """Close every pooled connection."""
        self._client.close()

    def _select_arguments(self, request: SelectionRequest) -> list[Any]:
        arguments: list[Any] = [
            self._prefix,
            request.member_id,
            request.channel,
            request.limit,
            request.max_per_partner,
            len(request.rules),
        ]
        for rule in request.rules:
            bucket = current_bucket(rule.window, request.now)
            arguments += (
                rule.name,
                rule.scope,
                rule.limit,
                1 if rule.counts == "served" else 0,
                bucket.label,
                bucket.ttl_seconds or 0,
            )
        for candidates in (request.personalized, request.fallback):
            arguments += (len(candidates), _encode_candidates(candidates))
        return arguments

    def _error(self, action: str, error: redis.RedisError) -> StateStoreError:
        return StateStoreError(f"Redis at {self._location} failed while {action}: {error}")


def _encode_candidates(candidates: Sequence[Candidate]) -> str:
    """The candidates as select.lua reads them: records split by \\x1e, fields by \\x1f."""
    text = "\x1e".join(
        [
            f"{candidate.offer_id}\x1f{candidate.partner_id}\x1f{candidate.category}\x1f"
            f"{'' if candidate.budget is None else candidate.budget}"
            for candidate in candidates
        ]
    )
    if text.count("\x1f") + text.count("\x1e") != max(4 * len(candidates) - 1, 0):
        raise ValueError("an offer, partner or category id contains the character \\x1e or \\x1f")
    return text


def _fields_from_preferences(preferences: Preferences) -> dict[str, str]:
    fields = {
        "opt_out_all": "1" if preferences.opt_out_all else "0",
        "personalization": "1" if preferences.personalization else "0",
    }
    for kind, values in zip(
        _OPT_OUT_KINDS,
        (
            preferences.opted_out_channels,
            preferences.opted_out_categories,
            preferences.opted_out_partners,
        ),
        strict=True,
    ):
        fields.update((f"{kind}:{value}", "1") for value in values)
    return fields


def _preferences_from_fields(fields: dict[str, str]) -> Preferences:
    opted_out: dict[str, set[str]] = {kind: set() for kind in _OPT_OUT_KINDS}
    for field in fields:
        kind, separator, value = field.partition(":")
        if separator:
            opted_out[kind].add(value)
    return Preferences(
        opt_out_all=fields.get("opt_out_all") == "1",
        opted_out_channels=frozenset(opted_out["channel"]),
        opted_out_categories=frozenset(opted_out["category"]),
        opted_out_partners=frozenset(opted_out["partner"]),
        personalization=fields.get("personalization") != "0",
    )
