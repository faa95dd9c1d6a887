"""The live state of serving behind one small interface: preferences, cap counters, budgets.

Two adapters implement `StateStore`: `RedisStateStore` (production, shared by every process)
and `MemoryStateStore` (the embedded default, one process). `select` is the one call a
request makes: it reads the member's preferences, applies opt-outs, the per-partner limit,
budgets and frequency caps to the ranked candidates, and counts what it returns — atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from perkrank.config import CapRule, ServeConfig

Event = Literal["impression", "click", "redemption"]
"""What a member did with an offer after it was served; rules with `counts` equal to it count it."""


class StateStoreError(RuntimeError):
    """The store cannot be reached or answered with an error; serving answers 503."""


@dataclass(frozen=True)
class Preferences:
    """What a member opted out of. The default opts out of nothing."""

    opt_out_all: bool = False
    opted_out_channels: frozenset[str] = frozenset()
    opted_out_categories: frozenset[str] = frozenset()
    opted_out_partners: frozenset[str] = frozenset()
    personalization: bool = True


@dataclass(frozen=True)
class Candidate:
    """An eligible offer, as the store needs to know it to apply rules."""

    offer_id: str
    partner_id: str
    category: str
    budget: int | None = None


@dataclass(frozen=True)
class SelectionRequest:
    """One request's candidates, best first, in two orders: personalized and fallback."""

    member_id: str
    channel: str
    now: float
    """Unix seconds; picks the cap windows."""
    limit: int
    max_per_partner: int
    personalized: Sequence[Candidate]
    fallback: Sequence[Candidate]
    """Used instead of `personalized` when the member turned personalization off."""
    rules: Sequence[CapRule] = ()


SUPPRESSION_REASONS = ("opt_out", "partner_limit", "budget", "cap")
"""Why a candidate was left out, in the order the rules are checked."""


@dataclass(frozen=True)
class Selection:
    """What `select` returned and why the rest was left out."""

    offer_ids: list[str]
    personalized: bool
    suppressed: dict[str, int] = field(default_factory=dict)
    """Candidates left out, by reason: opt_out, partner_limit, budget, cap."""


class StateStore(Protocol):
    """Port for serving state; adapters: MemoryStateStore, RedisStateStore."""

    def get_preferences(self, member_id: str) -> Preferences: ...

    def set_preferences(self, member_id: str, preferences: Preferences) -> None: ...

    def select(self, request: SelectionRequest) -> Selection: ...

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
        ...

    def ping(self) -> None: ...

    def close(self) -> None: ...


def open_store(config: ServeConfig) -> StateStore:
    """The Redis store when `config.redis_url` is set, else the in-process one."""
    # Imported here because both adapters import this module.
    if config.redis_url is None:
        from perkrank.serving.memory_store import MemoryStateStore

        return MemoryStateStore()
    from perkrank.serving.redis_store import RedisStateStore

    return RedisStateStore(config.redis_url, config.key_prefix, config.store_timeout_ms)
