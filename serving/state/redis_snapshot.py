"""A read-only snapshot of one member's state in Redis: what `select_offers` would read.

Used to explain a member's offers (GET /v1/admin/members/{member_id}/explain): one pipeline of
reads, no script, nothing written.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis

from perkrank.serving.domain.rules import CapCounter, MemberState
from perkrank.serving.state.keys import (
    member_cap_key,
    offer_cap_key,
    preferences_key,
    redeemed_key,
)
from perkrank.serving.state.redis_fields import preferences_from_fields


def read_member_state(
    client: redis.Redis,
    prefix: str,
    member_id: str,
    counters: Sequence[CapCounter],
    offer_ids: Sequence[str],
) -> MemberState:
    """The member's preferences, the counts of `counters` and the redemptions of `offer_ids`
    (a missing key counts 0), read in one non-transactional pipeline."""
    pipeline = client.pipeline(transaction=False)
    pipeline.hgetall(preferences_key(prefix, member_id))
    for counter in counters:
        if counter.scope == "offer_total":
            pipeline.get(offer_cap_key(prefix, counter.value, counter.rule, counter.bucket))
        else:
            key = member_cap_key(prefix, member_id, counter.rule, counter.bucket)
            pipeline.hget(key, counter.value)
    for offer_id in offer_ids:
        pipeline.get(redeemed_key(prefix, offer_id))
    replies = pipeline.execute()
    preferences = preferences_from_fields(replies[0])
    counts = replies[1 : 1 + len(counters)]
    redeemed = replies[1 + len(counters) :]
    return MemberState(
        preferences,
        {counter: int(count) for counter, count in zip(counters, counts, strict=True) if count},
        {offer_id: int(n) for offer_id, n in zip(offer_ids, redeemed, strict=True) if n},
    )
