"""The console's `ModelRegistry` over MLflow: versions, champion moves, promotion's gates.

`perkrank serve` wires one in when its model URI names a registered model
(`registry_for_serving`). MLflow, the registry code and the promotion code (which rebuilds the
candidate's test window and re-scores both versions) are imported by the first call, never at
import: serving starts without them and its offers path never sees them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import FastAPI

from perkrank.config import RegistryConfig, ServeConfig, TrainConfig
from perkrank.serving.api.app import create_app
from perkrank.serving.model_registry import (
    AliasChange,
    ChampionChange,
    ModelRegistryError,
    RegisteredVersion,
)

MODELS_PREFIX = "models:/"
WORKER_FACTORY = f"{__name__}:worker_app"
"""How `perkrank serve --workers N` builds each worker's app (`serving.server.run`)."""
REGISTRY_VARIABLE = "PERKRANK_SERVE_REGISTRY"
"""How `registry_for_serving` hands the registry settings to worker processes."""
Answer = TypeVar("Answer")


def registry_for_serving(settings: ServeConfig, train: TrainConfig) -> ConsoleRegistry | None:
    """The registry of the model `settings.model_uri` follows (`models:/<name>@<alias>` or
    `models:/<name>/<version>`) in serving's store, with `train`'s promotion metric and margin;
    None for a bundle directory. Worker processes find it in the environment."""
    if not settings.model_uri.startswith(MODELS_PREFIX):
        os.environ.pop(REGISTRY_VARIABLE, None)
        return None
    path = settings.model_uri.removeprefix(MODELS_PREFIX)
    name = path.split("@", 1)[0].split("/", 1)[0]
    registry = train.registry.model_copy(
        update={"tracking_uri": settings.tracking_uri, "model_name": name}
    )
    os.environ[REGISTRY_VARIABLE] = registry.model_dump_json()
    return ConsoleRegistry(registry)


def worker_app() -> FastAPI:
    """One worker's app, with the registry `registry_for_serving` put in the environment."""
    from perkrank.serving.server import worker_setup

    settings, data_dir = worker_setup()
    setup = os.environ.get(REGISTRY_VARIABLE)
    registry = ConsoleRegistry(RegistryConfig.model_validate_json(setup)) if setup else None
    return create_app(settings, data_dir=data_dir, model_registry=registry)


@dataclass(frozen=True)
class ConsoleRegistry:
    """`perkrank.serving.model_registry.ModelRegistry` over the MLflow registry."""

    registry: RegistryConfig

    @property
    def name(self) -> str:
        return self.registry.model_name

    def versions(self) -> list[RegisteredVersion]:
        from perkrank.models.registry_versions import registered_versions

        return _answered(registered_versions, self.registry)

    def alias_changes(self) -> list[AliasChange]:
        from perkrank.models.registry_versions import alias_changes

        return _answered(alias_changes, self.registry)

    def promote(self, version: str, force: bool, actor: str) -> ChampionChange:
        from perkrank.training.promotion import promote

        decision = _answered(promote, self.registry, version=version, force=force, actor=actor)
        champion = decision.candidate_version if decision.promoted else None
        return ChampionChange(
            decision.promoted, decision.reason, champion or decision.champion_version_before
        )

    def roll_back(self, actor: str) -> ChampionChange:
        from perkrank.models.registry_versions import roll_back

        before, after = _answered(roll_back, self.registry, actor)
        return ChampionChange(True, f"champion v{before} rolled back to v{after}", after)


def _answered(function: Callable[..., Answer], *arguments: Any, **keywords: Any) -> Answer:
    """`function(...)`, with the registry's refusals raised as ModelRegistryError."""
    from perkrank.models.registry import RegistryError

    try:
        return function(*arguments, **keywords)
    except RegistryError as error:
        raise ModelRegistryError(str(error)) from error
