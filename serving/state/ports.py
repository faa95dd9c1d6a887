"""The live state of serving behind three small ports, one per job, and one combined store.

- `MemberStore`: preferences, and `select`, the one call a request makes: it reads the
  member's preferences, applies opt-outs, the per-partner limit, budgets and frequency caps to
  the ranked candidates, and counts what it returns — atomically;
- `EventLog`: the events apps report (counted against caps and budgets) and reading them back;
- `DecisionLog`: what each offers response showed, under which model, experiment and arm;
- `LiveSettings`: the cap rules, published catalog and experiments every process follows,
  their history, and the reload generation;
- `PrivacyLog`: preference changes with their consent records, forgetting a member, and the
  members training must leave out.

Three adapters implement all five as `StateStore`: `RedisStateStore` (production, shared by
every process; keys in docs/redis_keys.md), `RedisClusterStateStore` (the same on Redis
Cluster) and `MemoryStateStore` (the embedded default, one process).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from perkrank.config import CapRule, CapsConfig, ServeConfig
from perkrank.experiment_config import ExperimentsConfig
from perkrank.lever_config import LeversConfig
from perkrank.serving.domain.decisions import Decision, StoredDecision
from perkrank.serving.domain.events import EventsRecorded, OfferEvent, StoredEvent
from perkrank.serving.domain.privacy import ConsentRecord, ConsentSource, Exclusion, Forgotten
from perkrank.serving.domain.retention import Cutoffs
from perkrank.serving.domain.rules import CapCounter, MemberState
from perkrank.serving.domain.selection import Preferences, Selection, SelectionRequest
from perkrank.serving.state.live_records import (
    CapsVersion,
    CatalogVersion,
    Change,
    ExperimentsVersion,
    LeversVersion,
    LiveVersions,
)


class StateStoreError(RuntimeError):
    """The store cannot be reached or answered with an error; serving answers 503."""


class MemberStore(Protocol):
    """Port: one member's preferences and the selection (and counting) of their offers."""

    def get_preferences(self, member_id: str) -> Preferences: ...

    def set_preferences(self, member_id: str, preferences: Preferences) -> None: ...

    async def select(self, request: SelectionRequest) -> Selection:
        """The one call of a request: awaited, so a networked store never blocks the loop."""
        ...

    async def select_many(self, requests: Sequence[SelectionRequest]) -> list[Selection]:
        """`select` of each request, in order (a campaign's chunk): sent together where the
        store can pipeline them; each selection is counted atomically on its own."""
        ...

    def member_state(
        self, member_id: str, counters: Sequence[CapCounter], offer_ids: Sequence[str]
    ) -> MemberState:
        """What `select` would read for the member (preferences, the counts of `counters`,
        the redemptions of `offer_ids`), read only: nothing is counted."""
        ...


class EventLog(Protocol):
    """Port: the impressions, clicks and redemptions apps report."""

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


class DecisionLog(Protocol):
    """Port: the decisions offers responses made, kept in order (the oldest dropped beyond
    `ServeConfig.decisions_kept`) for lift analysis."""

    def record_decisions(self, decisions: Sequence[Decision]) -> None:
        """Append `decisions` to the decision stream, in order, in one round trip."""
        ...

    def read_decisions(self, after: str, count: int) -> list[StoredDecision]:
        """Up to `count` kept decisions whose stream id comes after `after` ("0-0": the first)."""
        ...


class LiveSettings(Protocol):
    """Port: versioned, audited cap rules, catalogs, experiments and levers, and the reload
    generation."""

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

    def get_catalog_version(self, version: int) -> CatalogVersion | None:
        """One of the last `CATALOGS_KEPT` published catalogs; None when not kept."""
        ...

    def catalog_history(self, limit: int) -> list[Change]:
        """The last `limit` catalog publications, newest first."""
        ...

    def put_experiments(
        self, experiments: ExperimentsConfig, actor: str, now: float
    ) -> ExperimentsVersion:
        """Store `experiments` as the next version and audit the change, atomically."""
        ...

    def get_experiments(self) -> ExperimentsVersion | None:
        """The experiments in force; None before any were stored (no experiment runs)."""
        ...

    def experiments_history(self, limit: int) -> list[Change]:
        """The last `limit` experiment changes, newest first."""
        ...

    def put_levers(self, levers: LeversConfig, actor: str, now: float) -> LeversVersion:
        """Store `levers` as the next version and audit the change, atomically."""
        ...

    def get_levers(self) -> LeversVersion | None:
        """The levers in force; None before any were stored (no lever applies)."""
        ...

    def levers_history(self, limit: int) -> list[Change]:
        """The last `limit` lever changes, newest first."""
        ...

    def live_versions(self) -> LiveVersions:
        """The caps, catalog and experiments versions and the reload generation, in one round
        trip."""
        ...

    def request_reload(self) -> int:
        """Bump the reload generation: every process re-checks the model registry."""
        ...


class PrivacyLog(Protocol):
    """Port: consent records of preference changes, forgetting members, and exclusions."""

    def change_preferences(
        self,
        member_id: str,
        change: Callable[[Preferences], Preferences],
        consent: ConsentSource,
    ) -> ConsentRecord:
        """Store `change(current preferences)` and keep the consent record of old → new (the
        newest `CONSENTS_KEPT` per member), atomically."""
        ...

    def consent_history(self, member_id: str, limit: int) -> list[ConsentRecord]:
        """The member's last `limit` consent records, newest first."""
        ...

    def read_consents(self, cursor: str, count: int) -> tuple[list[ConsentRecord], str]:
        """The consent records of about `count` members from `cursor` ("0": the start), each
        member's oldest first, and the next cursor ("0": no more)."""
        ...

    def forget_member(self, member_id: str, actor: str, now: float) -> Forgotten:
        """Remove the member's preferences, consent records, counters, events and decisions,
        add the hash of their id to the suppression list and audit it (idempotent)."""
        ...

    def forgotten_audit(self, limit: int) -> list[Forgotten]:
        """The last `limit` forget audit entries, newest first."""
        ...

    def read_exclusions(self, cursor: str, count: int) -> tuple[list[Exclusion], str]:
        """About `count` members training must leave out from `cursor` ("0": the start): the
        forgotten, then those with personalization off; and the next cursor ("0": no more)."""
        ...

    def trim_expired(self, cutoffs: Cutoffs) -> dict[str, int]:
        """Remove the events, decisions and consent records from before their cut-off
        (`retention.Cutoffs`); how many of each were removed."""
        ...


class StateStore(MemberStore, EventLog, DecisionLog, LiveSettings, PrivacyLog, Protocol):
    """All five ports in one store, with its health check and shutdown."""

    def ping(self) -> None: ...

    async def close(self) -> None: ...


def open_store(config: ServeConfig) -> StateStore:
    """The Redis store when `config.redis_url` is set (on Redis Cluster for a
    `redis+cluster://host:port[,host:port...]` URL), else the in-process one."""
    # Imported here: an adapter is loaded only when it is used.
    if config.redis_url is None:
        from perkrank.serving.state.memory import MemoryStateStore

        return MemoryStateStore(
            events_kept=config.events_kept, decisions_kept=config.decisions_kept
        )
    if config.redis_url.startswith("redis+cluster://"):
        from perkrank.serving.state.redis_cluster import RedisClusterStateStore as Adapter
    else:
        from perkrank.serving.state.redis_store import RedisStateStore as Adapter

    store = Adapter(
        config.redis_url,
        config.key_prefix,
        config.store_timeout_ms,
        events_kept=config.events_kept,
        decisions_kept=config.decisions_kept,
    )
    store.warn_without_persistence()
    return store
