"""Offer-wide state on Redis Cluster: budgets and offer_total caps, checked and reserved in
each offer's own hash slot, so the member's script never leaves the member's slot.

A request's offers are reserved before the member's script runs (one pipelined call per
offer, grouped by node), and every reservation the script did not use is released after it:

- `RESERVE_SCRIPT` (on `{o:<offer_id>}`): budget spent → 'b'; any offer_total rule at its
  limit → 'c'; else add 1 to every offer_total rule counting `served` → '.' (reserved).
  Check and add are one script: an offer_total count never passes its limit (bound 0).
- the member's select.lua gets the verdicts and treats 'b' as a spent budget, 'c' as a cap;
- `RELEASE_SCRIPT` takes back the reservations of offers it did not choose.

Budgets are read (redemptions spend them, `record_events`) at the same moment a single server
reads them, so Cluster adds no overshoot to budgets either. What a reservation costs instead:
while it is held (one member script call), other requests see the offer's count 1 higher, so
an offer within (requests in flight) of its limit may be left out as capped and served a moment
later; a process that dies between reserving and releasing leaves its reservations counted
(under-serving, never over).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from perkrank.config import CapRule
from perkrank.serving.domain.selection import Candidate
from perkrank.serving.domain.windows import current_bucket
from perkrank.serving.state.keys import offer_cap_key, redeemed_key

FREE, SPENT, CAPPED = ".", "b", "c"
"""Verdicts select.lua reads: neither limit applies (reserved if counted), budget spent,
an offer_total rule at its limit."""
RESERVE_SCRIPT = """
-- ARGV: the offer's redeemed counter, its budget ('' none), then per offer_total rule: its
-- counter, limit, counts served (1|0), ttl seconds (0 none); all keys in the offer's slot.
-- Returns 'b', 'c', or '.' after adding 1 to every served counter (created with the ttl).
local budget = tonumber(ARGV[2])
if budget and (tonumber(redis.call('GET', ARGV[1])) or 0) >= budget then
  return 'b'
end
for i = 3, #ARGV, 4 do
  if (tonumber(redis.call('GET', ARGV[i])) or 0) >= tonumber(ARGV[i + 1]) then
    return 'c'
  end
end
for i = 3, #ARGV, 4 do
  local ttl = tonumber(ARGV[i + 3])
  if ARGV[i + 2] == '1' and redis.call('INCR', ARGV[i]) == 1 and ttl > 0 then
    redis.call('EXPIRE', ARGV[i], ttl)
  end
end
return '.'
"""
RELEASE_SCRIPT = """
-- ARGV: served counters of one offer reserved but not used: 1 less on each that still exists
-- (one whose window ended meanwhile is not recreated).
for _, key in ipairs(ARGV) do
  if redis.call('EXISTS', key) == 1 then
    redis.call('DECR', key)
  end
end
return 0
"""


@dataclass(frozen=True)
class OfferCheck:
    """What one offer's slot checks for a request."""

    offer_id: str
    arguments: list[str | int]
    """RESERVE_SCRIPT's ARGV; the first is a key of the offer's slot."""
    served_keys: list[str]
    """The counters a reservation adds to (RELEASE_SCRIPT's ARGV to take it back)."""


def offer_checks(
    prefix: str,
    rules: Sequence[CapRule],
    now: float,
    candidates: Sequence[Candidate],
) -> list[OfferCheck]:
    """One check per distinct offer among `candidates` that has a budget or falls under an
    offer_total rule (none when neither applies: the request then needs no offer slot)."""
    offer_rules = [rule for rule in rules if rule.scope == "offer_total"]
    checks: dict[str, OfferCheck] = {}
    for candidate in candidates:
        offer_id = candidate.offer_id
        if offer_id in checks or (candidate.budget is None and not offer_rules):
            continue
        budget = "" if candidate.budget is None else candidate.budget
        arguments: list[str | int] = [redeemed_key(prefix, offer_id), budget]
        served_keys = []
        for rule in offer_rules:
            bucket = current_bucket(rule.window, now)
            key = offer_cap_key(prefix, offer_id, rule.name, bucket.label)
            served = rule.counts == "served"
            arguments += (key, rule.limit, 1 if served else 0, bucket.ttl_seconds or 0)
            if served:
                served_keys.append(key)
        checks[offer_id] = OfferCheck(offer_id, arguments, served_keys)
    return list(checks.values())


def verdict_text(verdicts: dict[str, str], *lists: Sequence[Candidate]) -> str:
    """select.lua's ARGV[12]: one verdict character per candidate, lists split by \\x1e."""
    return "\x1e".join(
        "".join(verdicts.get(candidate.offer_id, FREE) for candidate in candidates)
        for candidates in lists
    )
