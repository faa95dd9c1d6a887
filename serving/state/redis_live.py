"""`LiveSettings` on Redis: each setting's current version as JSON, its audit list and the
versions hash, written together in one MULTI/EXEC (see docs/redis_keys.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis

from perkrank.config import CapsConfig
from perkrank.experiment_config import ExperimentsConfig
from perkrank.lever_config import LeversConfig
from perkrank.serving.state.keys import (
    live_history_key,
    live_setting_key,
    live_version_key,
    live_versions_key,
)
from perkrank.serving.state.live_records import (
    CATALOGS_KEPT,
    HISTORY_LENGTH,
    LIVE_VERSIONS,
    CapsVersion,
    CatalogVersion,
    Change,
    ExperimentsVersion,
    LeversVersion,
    LiveSetting,
    LiveVersions,
    caps_version,
    catalog_version,
    change,
    experiments_version,
    levers_version,
    live_change,
    setting_value,
)


class RedisLiveSettings:
    """The `LiveSettings` half of `RedisStateStore` (which owns the client and the breaker)."""

    _client: redis.Redis
    _prefix: str
    _call: Callable[..., Any]
    _cluster = False

    def seed_caps(self, caps: CapsConfig, actor: str, now: float) -> CapsVersion:
        """The stored caps; `caps` become version 1 when none are stored (SET NX semantics)."""
        document = self._publish("caps", setting_value(caps), actor, now, only_if_absent=True)
        return caps_version(document)

    def put_caps(self, caps: CapsConfig, actor: str, now: float) -> CapsVersion:
        """Store `caps` as the next version and audit the change, in one transaction."""
        return caps_version(self._publish("caps", setting_value(caps), actor, now))

    def get_caps(self) -> CapsVersion | None:
        """The caps in force; None before any were stored."""
        document = self._call("reading caps", self._client.get, self._live_key("caps"))
        return None if document is None else caps_version(document)

    def caps_history(self, limit: int) -> list[Change]:
        """The last `limit` cap changes, newest first."""
        return self._history("caps", limit)

    def publish_catalog(
        self, offers: list[dict[str, Any]], sha256: str, actor: str, now: float
    ) -> CatalogVersion:
        """Store validated offers as the next catalog version, audited, in one transaction."""
        value = {"offers": offers, "sha256": sha256}
        return catalog_version(self._publish("catalog", value, actor, now))

    def get_catalog(self) -> CatalogVersion | None:
        """The published catalog; None before the first publication."""
        document = self._call("reading the catalog", self._client.get, self._live_key("catalog"))
        return None if document is None else catalog_version(document)

    def get_catalog_version(self, version: int) -> CatalogVersion | None:
        """A kept published catalog; None when it was never published or is no longer kept."""
        key = self._version_key("catalog", version)
        document = self._call("reading a catalog version", self._client.get, key)
        return None if document is None else catalog_version(document)

    def catalog_history(self, limit: int) -> list[Change]:
        """The last `limit` catalog publications, newest first."""
        return self._history("catalog", limit)

    def put_experiments(
        self, experiments: ExperimentsConfig, actor: str, now: float
    ) -> ExperimentsVersion:
        """Store `experiments` as the next version and audit the change, in one transaction."""
        value = setting_value(experiments)
        return experiments_version(self._publish("experiments", value, actor, now))

    def get_experiments(self) -> ExperimentsVersion | None:
        """The experiments in force; None before any were stored."""
        key = self._live_key("experiments")
        document = self._call("reading experiments", self._client.get, key)
        return None if document is None else experiments_version(document)

    def experiments_history(self, limit: int) -> list[Change]:
        """The last `limit` experiment changes, newest first."""
        return self._history("experiments", limit)

    def put_levers(self, levers: LeversConfig, actor: str, now: float) -> LeversVersion:
        """Store `levers` as the next version and audit the change."""
        return levers_version(self._publish("levers", setting_value(levers), actor, now))

    def get_levers(self) -> LeversVersion | None:
        """The levers in force; None before any were stored."""
        key = self._live_key("levers")
        document = self._call("reading levers", self._client.get, key)
        return None if document is None else levers_version(document)

    def levers_history(self, limit: int) -> list[Change]:
        """The last `limit` lever changes, newest first."""
        return self._history("levers", limit)

    def live_versions(self) -> LiveVersions:
        """The caps, catalog and experiments versions and the reload generation (one HMGET)."""
        key = live_versions_key(self._prefix, cluster=self._cluster)
        values = self._call("reading live versions", self._client.hmget, key, LIVE_VERSIONS)
        return LiveVersions(*(int(value or 0) for value in values))

    def request_reload(self) -> int:
        """Bump the reload generation."""
        key = live_versions_key(self._prefix, cluster=self._cluster)
        return self._call("requesting a reload", self._client.hincrby, key, "reload", 1)

    def _publish(
        self,
        setting: LiveSetting,
        value: Any,
        actor: str,
        now: float,
        *,
        only_if_absent: bool = False,
    ) -> str:
        """Write `value` as the setting's next version with its audit entry in one MULTI/EXEC,
        retried when another writer changed the versions first; the current version's JSON."""
        versions_key = live_versions_key(self._prefix, cluster=self._cluster)
        history_key = live_history_key(self._prefix, setting, cluster=self._cluster)

        def publish() -> str:
            with self._client.pipeline(transaction=True) as pipeline:
                while True:
                    try:
                        pipeline.watch(versions_key)
                        old = pipeline.get(self._live_key(setting))
                        if old is not None and only_if_absent:
                            return old
                        version = int(pipeline.hget(versions_key, setting) or 0) + 1
                        document, entry = live_change(setting, version, value, actor, now, old)
                        pipeline.multi()
                        pipeline.hset(versions_key, setting, version)
                        pipeline.set(self._live_key(setting), document)
                        pipeline.lpush(history_key, entry)
                        pipeline.ltrim(history_key, 0, HISTORY_LENGTH - 1)
                        if setting == "catalog":
                            pipeline.set(self._version_key(setting, version), document)
                            pipeline.delete(self._version_key(setting, version - CATALOGS_KEPT))
                        pipeline.execute()
                        return document
                    except redis.WatchError:
                        continue

        return self._call(f"writing {setting}", publish)

    def _history(self, setting: LiveSetting, limit: int) -> list[Change]:
        key = live_history_key(self._prefix, setting, cluster=self._cluster)
        entries = self._call(f"reading {setting} history", self._client.lrange, key, 0, limit - 1)
        return [change(entry) for entry in entries]

    def _live_key(self, setting: LiveSetting) -> str:
        return live_setting_key(self._prefix, setting, cluster=self._cluster)

    def _version_key(self, setting: LiveSetting, version: int) -> str:
        return live_version_key(self._prefix, setting, version, cluster=self._cluster)
