"""The model registry as the console's models page sees it: a port, and what it answers.

Serving reads its model through `ServeConfig.model_uri` alone (`perkrank.serving.live`); the
models page also lists the registered versions and moves the `champion` alias, through a
`ModelRegistry` that the composition root (`perkrank serve`) wires in. Its adapter
(`perkrank.training.registry_console`) imports MLflow and the promotion code only when the page
calls it, in a worker thread: nothing of it is on the offers path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class ModelRegistryError(RuntimeError):
    """The registry cannot answer or refuses the change (unknown version, no earlier champion,
    unreachable store): the message says which."""


@dataclass(frozen=True)
class RegisteredVersion:
    """One registered model version, its aliases, evaluation and data lineage."""

    version: str
    aliases: tuple[str, ...]
    created: float | None
    """Unix seconds."""
    metrics: dict[str, float] = field(default_factory=dict)
    """Its run's evaluation (`ndcg@10`, baselines as `popularity.ndcg@10`, ...)."""
    lineage: dict[str, str] = field(default_factory=dict)
    """What data it was trained on: input SHA-256, date range, members, data directory."""
    decision: str | None = None
    """The last promotion attempt: "promoted" or "refused"; None: never tried."""
    reason: str | None = None
    previous_champion: str | None = None
    """The champion it replaced when promoted (where a roll back returns to)."""


@dataclass(frozen=True)
class AliasChange:
    """One move of the `champion` alias: when, by whom, from and to which version."""

    at: float
    actor: str
    action: str
    """"promote" or "roll back"."""
    before: str | None
    after: str


@dataclass(frozen=True)
class ChampionChange:
    """What a promotion or roll back did: whether the champion moved, and why."""

    moved: bool
    reason: str
    champion: str | None
    """The champion version afterwards."""


class ModelRegistry(Protocol):
    """The registered model serving follows. Every method may block (call it in a thread)
    and raises ModelRegistryError when the registry cannot answer."""

    name: str
    """The registered model's name."""

    def versions(self) -> list[RegisteredVersion]:
        """Every version, newest first."""
        ...

    def alias_changes(self) -> list[AliasChange]:
        """The last moves of the `champion` alias, newest first."""
        ...

    def promote(self, version: str, force: bool, actor: str) -> ChampionChange:
        """Move `champion` to `version` only if it beats the champion on the same window (the
        gates of `perkrank promote`); `force` skips them. The decision is recorded either way."""
        ...

    def roll_back(self, actor: str) -> ChampionChange:
        """Move `champion` back to the version it replaced."""
        ...
