"""The in-process state store: the rules of serving/select.lua, in dictionaries behind one lock."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence

from perkrank.config import CapRule
from perkrank.serving.keys import cap_counter, redeemed_key
from perkrank.serving.store import (
    SUPPRESSION_REASONS,
    Candidate,
    Event,
    Preferences,
    Selection,
    SelectionRequest,
)
from perkrank.serving.windows import Bucket, current_bucket

KEY_PREFIX = "memory"
CounterKey = tuple[str, str | None]
"""Where a count lives, named as in Redis: (key, hash field or None)."""
SWEEP_INTERVAL_SECONDS = 60.0
"""How often expired counters that nobody reads again are dropped."""


class MemoryStateStore:
    """StateStore in this process's memory: one process only, state is lost on exit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._preferences: dict[str, Preferences] = {}
        self._counters: dict[CounterKey, tuple[int, float]] = {}
        """(Redis key, hash field) → (count, expiry on the monotonic clock; inf: never)."""
        self._next_sweep = time.monotonic() + SWEEP_INTERVAL_SECONDS

    def get_preferences(self, member_id: str) -> Preferences:
        """The member's preferences; defaults when none were set."""
        with self._lock:
            return self._preferences.get(member_id, Preferences())

    def set_preferences(self, member_id: str, preferences: Preferences) -> None:
        """Replace the member's preferences."""
        with self._lock:
            self._preferences[member_id] = preferences

    def select(self, request: SelectionRequest) -> Selection:
        """Apply opt-outs, partner limit, budgets and caps; count what is returned."""
        buckets = [current_bucket(rule.window, request.now) for rule in request.rules]
        with self._lock:
            clock = time.monotonic()
            if clock >= self._next_sweep:
                self._drop_expired(clock)
            return self._select(request, buckets, clock)

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
        counted = [rule for rule in rules if rule.counts == event]
        buckets = [current_bucket(rule.window, now) for rule in counted]
        with self._lock:
            clock = time.monotonic()
            for rule, bucket in zip(counted, buckets, strict=True):
                counter = _cap_counter(rule, bucket, member_id, channel, offer)
                self._increment(counter, bucket.ttl_seconds, clock)
            if event == "redemption":
                self._increment((redeemed_key(KEY_PREFIX, offer.offer_id), None), None, clock)

    def ping(self) -> None:
        """Always reachable."""

    def close(self) -> None:
        """Nothing to release."""

    def _select(self, request: SelectionRequest, buckets: list[Bucket], clock: float) -> Selection:
        preferences = self._preferences.get(request.member_id, Preferences())
        personalized = preferences.personalization
        candidates = request.personalized if personalized else request.fallback
        if preferences.opt_out_all or request.channel in preferences.opted_out_channels:
            return Selection([], personalized, _nonzero({"opt_out": len(candidates)}))
        suppressed = dict.fromkeys(SUPPRESSION_REASONS, 0)
        offer_ids: list[str] = []
        taken_by_partner: dict[str, int] = {}
        for candidate in candidates:
            if len(offer_ids) >= request.limit:
                break
            counters = [
                _cap_counter(rule, bucket, request.member_id, request.channel, candidate)
                for rule, bucket in zip(request.rules, buckets, strict=True)
            ]
            taken = taken_by_partner.get(candidate.partner_id, 0)
            reason = self._reason_left_out(request, preferences, candidate, taken, counters, clock)
            if reason is not None:
                suppressed[reason] += 1
                continue
            offer_ids.append(candidate.offer_id)
            taken_by_partner[candidate.partner_id] = taken + 1
            for rule, bucket, counter in zip(request.rules, buckets, counters, strict=True):
                if rule.counts == "served":
                    self._increment(counter, bucket.ttl_seconds, clock)
        return Selection(offer_ids, personalized, _nonzero(suppressed))

    def _reason_left_out(
        self,
        request: SelectionRequest,
        preferences: Preferences,
        candidate: Candidate,
        taken_from_partner: int,
        cap_counters: list[CounterKey],
        clock: float,
    ) -> str | None:
        if (
            candidate.category in preferences.opted_out_categories
            or candidate.partner_id in preferences.opted_out_partners
        ):
            return "opt_out"
        if taken_from_partner >= request.max_per_partner:
            return "partner_limit"
        redeemed = self._count((redeemed_key(KEY_PREFIX, candidate.offer_id), None), clock)
        if candidate.budget is not None and redeemed >= candidate.budget:
            return "budget"
        for rule, counter in zip(request.rules, cap_counters, strict=True):
            if self._count(counter, clock) >= rule.limit:
                return "cap"
        return None

    def _count(self, counter: CounterKey, clock: float) -> int:
        count, expires_at = self._counters.get(counter, (0, math.inf))
        if expires_at <= clock:
            del self._counters[counter]
            return 0
        return count

    def _increment(self, counter: CounterKey, ttl_seconds: int | None, clock: float) -> None:
        count = self._count(counter, clock)
        if count == 0:
            expires_at = math.inf if ttl_seconds is None else clock + ttl_seconds
        else:
            expires_at = self._counters[counter][1]
        self._counters[counter] = (count + 1, expires_at)

    def _drop_expired(self, clock: float) -> None:
        self._counters = {key: value for key, value in self._counters.items() if value[1] > clock}
        self._next_sweep = clock + SWEEP_INTERVAL_SECONDS


def _cap_counter(
    rule: CapRule, bucket: Bucket, member_id: str, channel: str, offer: Candidate
) -> CounterKey:
    return cap_counter(
        KEY_PREFIX,
        rule.scope,
        rule.name,
        bucket.label,
        member_id=member_id,
        channel=channel,
        offer_id=offer.offer_id,
        partner_id=offer.partner_id,
    )


def _nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {reason: count for reason, count in counts.items() if count}
