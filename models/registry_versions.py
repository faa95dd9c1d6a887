"""The registered versions of a model as the console lists them, and a roll back of `champion`.

Read from the version tags `models.registry` writes (`metric.*`, `lineage.*`, the promotion's
decision, reason and the champion it replaced) and the registered model's aliases and
`ALIAS_CHANGES_TAG`. Imports mlflow: only `perkrank.training.registry_console` imports this,
when the console's models page calls it.
"""

from __future__ import annotations

import json

from perkrank.config import RegistryConfig
from perkrank.models.registry import (
    ALIAS_CHANGES_TAG,
    CHAMPION,
    DECISION_TAG,
    METRIC_TAG_PREFIX,
    PREVIOUS_CHAMPION_TAG,
    REASON_TAG,
    RegistryError,
    move_champion,
    registry_call,
    registry_client,
)
from perkrank.serving.model_registry import AliasChange, RegisteredVersion

LINEAGE_SHOWN = ("data_sha256", "date_range", "members", "data_dir")
"""The `lineage.*` tags a version lists (the rest is for promotion's rebuilt window)."""


def registered_versions(registry: RegistryConfig) -> list[RegisteredVersion]:
    """Every version of `registry.model_name`, newest first."""
    client = registry_client(registry.tracking_uri)
    name = registry.model_name
    aliases: dict[str, list[str]] = {}
    for alias, version in registry_call(client.get_registered_model, name).aliases.items():
        aliases.setdefault(str(version), []).append(alias)
    found = registry_call(client.search_model_versions, f"name = '{name}'")
    return sorted(
        (
            RegisteredVersion(
                version=str(version.version),
                aliases=tuple(sorted(aliases.get(str(version.version), []))),
                created=version.creation_timestamp / 1000 if version.creation_timestamp else None,
                metrics=_metrics(version.tags),
                lineage={
                    key: version.tags[f"lineage.{key}"]
                    for key in LINEAGE_SHOWN
                    if f"lineage.{key}" in version.tags
                },
                decision=version.tags.get(DECISION_TAG),
                reason=version.tags.get(REASON_TAG),
                previous_champion=version.tags.get(PREVIOUS_CHAMPION_TAG),
            )
            for version in found
        ),
        key=lambda version: -int(version.version),
    )


def alias_changes(registry: RegistryConfig) -> list[AliasChange]:
    """The last moves of `champion` (by promotions and roll backs noted here), newest first."""
    client = registry_client(registry.tracking_uri)
    tags = registry_call(client.get_registered_model, registry.model_name).tags
    return [AliasChange(**change) for change in json.loads(tags.get(ALIAS_CHANGES_TAG, "[]"))]


def roll_back(registry: RegistryConfig, actor: str) -> tuple[str, str]:
    """Move `champion` back to the version the champion replaced: (from, to) versions.

    Raises RegistryError when there is no champion or it records no version it replaced (it
    was the first, or was promoted before perkrank recorded that).
    """
    client = registry_client(registry.tracking_uri)
    name = registry.model_name
    aliases = registry_call(client.get_registered_model, name).aliases
    if CHAMPION not in aliases:
        raise RegistryError(f"{name} has no champion to roll back")
    champion = str(aliases[CHAMPION])
    replaced = registry_call(client.get_model_version, name, champion)
    previous = replaced.tags.get(PREVIOUS_CHAMPION_TAG)
    if previous is None:
        raise RegistryError(
            f"champion v{champion} records no champion it replaced (the first, or promoted "
            "before perkrank recorded it): promote a version instead"
        )
    registry_call(client.get_model_version, name, previous)  # still registered
    move_champion(client, name, previous, champion, "roll back", actor)
    return champion, previous


def _metrics(tags: dict[str, str]) -> dict[str, float]:
    """`metric.popularity.ndcg_at_10` → `popularity.ndcg@10`, as a number."""
    metrics = {}
    for key, value in tags.items():
        if key.startswith(METRIC_TAG_PREFIX):
            try:
                number = float(value)
            except ValueError:
                continue
            metrics[key.removeprefix(METRIC_TAG_PREFIX).replace("_at_", "@")] = number
    return metrics
