"""The live settings as stores keep them: versions, audit entries, and their JSON.

Both adapters write a setting's current version and its audit entry with `live_change` and read
them back with `caps_version`, `catalog_version`, `experiments_version`, `levers_version` and
`change`, so they store the same JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from perkrank.config import CapsConfig
from perkrank.experiment_config import ExperimentsConfig
from perkrank.lever_config import LeversConfig

LiveSetting = Literal["caps", "catalog", "experiments", "levers"]
"""Settings every process follows through the store (see docs/redis_keys.md)."""
LIVE_VERSIONS = ("caps", "catalog", "reload", "experiments", "levers")
"""The fields of `LiveVersions`, as the store keeps them."""
HISTORY_LENGTH = 100
"""Audit entries kept per live setting; older ones are dropped."""
CATALOGS_KEPT = 10
"""Published catalogs kept whole (the current one and the ones before it), for rollback."""


@dataclass(frozen=True)
class LiveVersions:
    """What each process compares with what it serves; 0: nothing stored yet."""

    caps: int
    catalog: int
    reload: int
    """Bumped by `POST /v1/admin/reload`."""
    experiments: int = 0
    levers: int = 0


@dataclass(frozen=True)
class Change:
    """One audit entry: the version made, by whom (an API key's name), when, old → new."""

    version: int
    actor: str
    at: float
    """Unix seconds."""
    old: Any
    """JSON as the audit keeps it (caps: `{rules}`; catalog: `{offers, sha256}`; experiments:
    `{experiments}`; levers: `{levers}`); None at 1."""
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


@dataclass(frozen=True)
class ExperimentsVersion:
    """The experiments in force and which version they are."""

    version: int
    experiments: ExperimentsConfig
    actor: str
    at: float


@dataclass(frozen=True)
class LeversVersion:
    """The marketer levers in force and which version they are."""

    version: int
    levers: LeversConfig
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


def setting_value(config: CapsConfig | ExperimentsConfig | LeversConfig) -> dict[str, Any]:
    """Cap rules, experiments or levers as stored: `{rules: [...]}` (like configs/caps.yaml),
    `{experiments: [...]}` or `{levers: [...]}`. The caps' optional list rules are left out
    while unset, so a rule set without them is stored (and audited) as before they existed."""
    return config.model_dump(mode="json", exclude_none=isinstance(config, CapsConfig))


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


def experiments_version(document: str) -> ExperimentsVersion:
    """Stored experiments, from the JSON `live_change` wrote."""
    fields = json.loads(document)
    experiments = ExperimentsConfig.model_validate(fields["value"])
    return ExperimentsVersion(fields["version"], experiments, fields["actor"], fields["at"])


def levers_version(document: str) -> LeversVersion:
    """Stored levers, from the JSON `live_change` wrote."""
    fields = json.loads(document)
    levers = LeversConfig.model_validate(fields["value"])
    return LeversVersion(fields["version"], levers, fields["actor"], fields["at"])


def change(entry: str) -> Change:
    """An audit entry from its JSON."""
    return Change(**json.loads(entry))


def _audited(setting: LiveSetting, value: dict[str, Any]) -> dict[str, Any]:
    """What the audit keeps of a value: cap rules whole, a catalog as its size and digest."""
    if setting == "catalog":
        return {"offers": len(value["offers"]), "sha256": value["sha256"]}
    return value
