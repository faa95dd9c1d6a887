"""The live state of serving behind one small interface: preferences, cap counters, budgets,
the events apps report, and the live settings (cap rules, published catalog) every process
follows.

Two adapters implement `StateStore`: `RedisStateStore` (production, shared by every process)
and `MemoryStateStore` (the embedded default, one process). `select` is the one call a
request makes: it reads the member's preferences, applies opt-outs, the per-partner limit,
budgets and frequency caps to the ranked candidates, and counts what it returns — atomically.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal, Protocol

from perkrank.config import CapRule, CapsConfig, ServeConfig
from perkrank.serving.keys import cap_counter
from perkrank.serving.windows import current_bucket

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

    @cached_property
    def record(self) -> str:
        """Its fields joined by \\x1f (budget empty when None), as RedisStateStore ships it;
        computed once per Candidate, and catalogs keep theirs. Raises ValueError when an id
        holds \\x1e or \\x1f, which would split it."""
        fields = (self.offer_id, self.partner_id, self.category)
        if any("\x1e" in field or "\x1f" in field for field in fields):
            raise ValueError(f"offer {self.offer_id!r}: an id holds the character \\x1e or \\x1f")
        budget = "" if self.budget is None else self.budget
        return f"{self.offer_id}\x1f{self.partner_id}\x1f{self.category}\x1f{budget}"


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

    async def select(self, request: SelectionRequest) -> Selection:
        """The one call of a request: awaited, so a networked store never blocks the loop."""
        ...

    def record_events(
        self, events: Sequence[OfferEvent], rules: Sequence[CapRule], now: float
    ) -> EventsRecorded:
        """Keep each event whose `event_id` was not seen within `EVENT_ID_TTL_SECONDS`, count it
        against every rule counting its type (see `event_counters`), let a redemption spend
        budget, and append it to the event stream: in one round trip, atomically."""
        ...

    def read_events(self, after: str, count: int) -> list[StoredEvent]:
        """Up to `count` kept events whose stream id comes after `after` ("0-0": the first)."""
        ...

    def ping(self) -> None: ...

    async def close(self) -> None: ...

    def seed_caps(self, caps: CapsConfig, actor: str, now: float) -> CapsVersion:
        """The stored caps; when none are stored yet, `caps` become version 1 (atomically:
        of several processes starting at once, one writes)."""
        ...

    def put_caps(self, caps: CapsConfig, actor: str, now: float) -> CapsVersion:
        """Store `caps` as the next version and audit the change (old → new), atomically."""
        ...

    def get_caps(self) -> CapsVersion | None: ...

    def caps_history(self, limit: int) -> list[Change]:
        """The last `limit` cap changes, newest first."""
        ...

    def publish_catalog(
        self, offers: list[dict[str, Any]], sha256: str, actor: str, now: float
    ) -> CatalogVersion:
        """Store validated offers (JSON records) as the next catalog version, audited."""
        ...

    def get_catalog(self) -> CatalogVersion | None: ...

    def catalog_history(self, limit: int) -> list[Change]:
        """The last `limit` catalog publications, newest first."""
        ...

    def live_versions(self) -> LiveVersions:
        """The caps and catalog versions and the reload generation, in one round trip."""
        ...

    def request_reload(self) -> int:
        """Bump the reload generation: every process re-checks the model registry."""
        ...


def open_store(config: ServeConfig) -> StateStore:
    """The Redis store when `config.redis_url` is set, else the in-process one."""
    # Imported here because both adapters import this module.
    if config.redis_url is None:
        from perkrank.serving.memory_store import MemoryStateStore

        return MemoryStateStore(events_kept=config.events_kept)
    from perkrank.serving.redis_store import RedisStateStore

    return RedisStateStore(
        config.redis_url, config.key_prefix, config.store_timeout_ms, events_kept=config.events_kept
    )


# ---------------------------------------------------------------- live settings

LiveSetting = Literal["caps", "catalog"]
"""Settings every process follows through the store (see perkrank.serving.keys)."""
LIVE_VERSIONS = ("caps", "catalog", "reload")
"""The fields of `LiveVersions`, as the store keeps them."""
HISTORY_LENGTH = 100
"""Audit entries kept per live setting; older ones are dropped."""


@dataclass(frozen=True)
class LiveVersions:
    """What each process compares with what it serves; 0: nothing stored yet."""

    caps: int
    catalog: int
    reload: int
    """Bumped by `POST /v1/admin/reload`."""


@dataclass(frozen=True)
class Change:
    """One audit entry: the version made, by whom (an API key's name), when, old → new."""

    version: int
    actor: str
    at: float
    """Unix seconds."""
    old: Any
    """JSON as the audit keeps it (caps: `{rules}`; catalog: `{offers, sha256}`); None at 1."""
    new: Any


@dataclass(frozen=True)
class CapsVersion:
    """The cap rules in force and which version they are."""

    version: int
    caps: CapsConfig
    actor: str
    at: float


@dataclass(frozen=True)
class CatalogVersion:
    """A published catalog: validated offers as JSON records, and the file's SHA-256."""

    version: int
    offers: list[dict[str, Any]]
    sha256: str
    actor: str
    at: float


def live_change(
    setting: LiveSetting, version: int, value: Any, actor: str, now: float, old: str | None
) -> tuple[str, str]:
    """JSON of a setting's new current version and of its audit entry (`old`: the JSON of the
    version it replaces)."""
    document = {"version": version, "actor": actor, "at": now, "value": value}
    old_value = None if old is None else _audited(setting, json.loads(old)["value"])
    new_value = _audited(setting, value)
    entry = {"version": version, "actor": actor, "at": now, "old": old_value, "new": new_value}
    return json.dumps(document), json.dumps(entry)


def caps_value(caps: CapsConfig) -> dict[str, Any]:
    """Cap rules as stored: `{rules: [...]}`, like configs/caps.yaml."""
    return caps.model_dump(mode="json")


def caps_version(document: str) -> CapsVersion:
    """Stored caps, from the JSON `live_change` wrote."""
    fields = json.loads(document)
    caps = CapsConfig.model_validate(fields["value"])
    return CapsVersion(fields["version"], caps, fields["actor"], fields["at"])


def catalog_version(document: str) -> CatalogVersion:
    """A published catalog, from the JSON `live_change` wrote."""
    fields = json.loads(document)
    value = fields["value"]
    return CatalogVersion(
        fields["version"], value["offers"], value["sha256"], fields["actor"], fields["at"]
    )


def change(entry: str) -> Change:
    """An audit entry from its JSON."""
    return Change(**json.loads(entry))


def _audited(setting: LiveSetting, value: dict[str, Any]) -> dict[str, Any]:
    """What the audit keeps of a value: cap rules whole, a catalog as its size and digest."""
    if setting == "catalog":
        return {"offers": len(value["offers"]), "sha256": value["sha256"]}
    return value


# ---------------------------------------------------------------- events

EVENT_ID_TTL_SECONDS = 7 * 86_400
"""How long an `event_id` is remembered: a repeat within it is a duplicate. Older events are
refused by `POST /v1/events`, so a retried batch can never count twice."""
EVENTS_KEPT = 1_000_000
"""Events the store keeps by default (`ServeConfig.events_kept`); the oldest are dropped."""


@dataclass(frozen=True)
class OfferEvent:
    """What a member did with a served offer (offer fields from the catalog in force)."""

    type: Event
    member_id: str
    offer_id: str
    partner_id: str
    category: str
    channel: str
    ts: float
    """When it happened, Unix seconds; picks the cap buckets it counts in."""
    event_id: str | None = None
    """The sender's id: an event sent twice with one id counts once."""


@dataclass(frozen=True)
class StoredEvent:
    """A kept event and its position in the event stream (a Redis stream id, `<ms>-<seq>`)."""

    stream_id: str
    event: OfferEvent


@dataclass(frozen=True)
class EventsRecorded:
    """What `record_events` did with a batch."""

    accepted: int
    duplicates: int


@dataclass(frozen=True)
class EventCounter:
    """One counter an event adds 1 to: a key (and hash field) of perkrank.serving.keys."""

    key: str
    field: str | None
    ttl_seconds: int | None
    """Seconds from now until its bucket ends; None: never."""


def event_counters(
    prefix: str, event: OfferEvent, rules: Sequence[CapRule], now: float
) -> list[EventCounter]:
    """The counters of the rules counting `event.type`, in the buckets `event.ts` falls in;
    a bucket that ended before `now` is left out (nothing reads it again)."""
    counters = []
    for rule in rules:
        if rule.counts != event.type:
            continue
        bucket = current_bucket(rule.window, event.ts)
        ttl_seconds = None
        if bucket.ttl_seconds is not None:
            left = event.ts + bucket.ttl_seconds - now
            if left <= 0:
                continue
            ttl_seconds = math.ceil(left)
        key, field = cap_counter(
            prefix,
            rule.scope,
            rule.name,
            bucket.label,
            member_id=event.member_id,
            channel=event.channel,
            offer_id=event.offer_id,
            partner_id=event.partner_id,
        )
        counters.append(EventCounter(key, field, ttl_seconds))
    return counters
