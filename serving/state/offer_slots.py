"""Offer-wide state on Redis Cluster: budgets and offer_total caps, read and reserved in
each offer's own hash slot, so the member's script never leaves the member's slot.

A request's offers are reserved before the member's script runs (one pipelined call per
offer, grouped by primary), and every reservation the script did not use is released after:

- `RESERVE_SCRIPT` (on `{o:<offer_id>}`): reads the offer's redemptions and works out its
  room, how often the walk may still choose it: the least `limit − count` of the offer_total
  rules counting `served`, 0 when a rule counting events is at its limit, at most the times
  the offer appears in a candidate list. It adds the room to every served counter (check and
  add in one script): an offer_total count never passes its limit (bound 0).
- select.lua gets `offer_id, redeemed, room` per offer and chooses an offer at most `room`
  times (and compares `redeemed` with each candidate's budget, as on one server);
- `RELEASE_SCRIPT` takes back the room it did not use.

Budgets are read at the same point of the request as one server reads them, so Cluster adds
nothing to how far they can be passed. What a reservation costs instead: while it is held (one
member script call), other requests see the offer's counts higher, so an offer within
(requests in flight) of its limit may be left out as capped and served a moment later; a
process that dies between reserving and releasing leaves its reservations counted
(under-serving, never over).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from perkrank.config import CapRule
from perkrank.serving.domain.selection import Candidate
from perkrank.serving.domain.windows import current_bucket
from perkrank.serving.state.keys import offer_cap_key, redeemed_key

RESERVE_SCRIPT = """
-- ARGV: the offer's redeemed counter, the most it may be chosen, then per offer_total rule:
-- its counter, limit, counts served (1|0), ttl seconds (0 none); keys in the offer's slot.
-- Returns {redeemed, room} after adding room to every served counter (created with the ttl).
local room = tonumber(ARGV[2])
for i = 3, #ARGV, 4 do
  local count, rule_limit = tonumber(redis.call('GET', ARGV[i])) or 0, tonumber(ARGV[i + 1])
  if ARGV[i + 2] == '1' then
    room = math.min(room, rule_limit - count)
  elseif count >= rule_limit then
    room = 0
  end
end
room = math.max(room, 0)
for i = 3, #ARGV, 4 do
  local ttl = tonumber(ARGV[i + 3])
  if room > 0 and ARGV[i + 2] == '1' and redis.call('INCRBY', ARGV[i], room) == room
      and ttl > 0 then
    redis.call('EXPIRE', ARGV[i], ttl)
  end
end
return { tonumber(redis.call('GET', ARGV[1])) or 0, room }
"""
RELEASE_SCRIPT = """
-- ARGV: how much to take back, then served counters of one offer: that much less on each
-- that still exists (one whose window ended meanwhile is not recreated).
for i = 2, #ARGV do
  if redis.call('EXISTS', ARGV[i]) == 1 then
    redis.call('DECRBY', ARGV[i], ARGV[1])
  end
end
return 0
"""


@dataclass(frozen=True)
class OfferCheck:
    """What one offer's slot reads and reserves for a request."""

    offer_id: str
    arguments: list[str | int]
    """RESERVE_SCRIPT's ARGV; the first is a key of the offer's slot."""
    served_keys: list[str]
    """The counters a reservation adds to (and a release takes back from)."""


def offer_checks(
    prefix: str,
    rules: Sequence[CapRule],
    now: float,
    lists: Sequence[Sequence[Candidate]],
) -> list[OfferCheck]:
    """One check per distinct offer of the candidate `lists` that has a budget or falls under
    an offer_total rule (none when neither applies: the request then needs no offer slot)."""
    offer_rules = [rule for rule in rules if rule.scope == "offer_total"]
    budgeted = {c.offer_id for candidates in lists for c in candidates if c.budget is not None}
    appearances: dict[str, int] = {}
    for candidates in lists:
        for offer_id, times in Counter(c.offer_id for c in candidates).items():
            if offer_rules or offer_id in budgeted:
                appearances[offer_id] = max(appearances.get(offer_id, 0), times)
    buckets = [(rule, current_bucket(rule.window, now)) for rule in offer_rules]
    checks = []
    for offer_id, times in appearances.items():
        arguments: list[str | int] = [redeemed_key(prefix, offer_id), times]
        served_keys = []
        for rule, bucket in buckets:
            key = offer_cap_key(prefix, offer_id, rule.name, bucket.label)
            served = rule.counts == "served"
            arguments += (key, rule.limit, 1 if served else 0, bucket.ttl_seconds or 0)
            if served:
                served_keys.append(key)
        checks.append(OfferCheck(offer_id, arguments, served_keys))
    return checks


def offer_state_text(states: dict[str, tuple[int, int]]) -> str:
    """select.lua's offer-state argument of a member: `offer_id \x1f redeemed \x1f room` per
    offer, split by \x1e."""
    return "\x1e".join(f"{offer}\x1f{spent}\x1f{room}" for offer, (spent, room) in states.items())
