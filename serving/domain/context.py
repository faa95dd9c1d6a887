"""The immutable serving context every request reads, and the holder live changes swap it in.

A request reads `ContextHolder.current` once and uses that one context throughout, so it sees
one consistent model, catalog and rule set however the live settings change meanwhile.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, NamedTuple

from perkrank.config import CapRule, CapsConfig
from perkrank.experiment_config import ExperimentsConfig
from perkrank.serving.domain.experiments import Assignment, Plan, plan
from perkrank.serving.domain.ranking import OfferRanker, OfferRequest

if TYPE_CHECKING:
    from perkrank.serving.state.ports import StateStore


class ServedModel(NamedTuple):
    """A loaded model version, ranking the catalog in force."""

    ranker: OfferRanker
    version: str


@dataclass(frozen=True)
class ServingContext:
    """Everything a request needs; a live change builds a new one (perkrank.serving.live)."""

    ranker: OfferRanker
    store: StateStore
    caps: CapsConfig
    model_version: str
    caps_version: int = 0
    """The stored caps version in force; 0: the initial rules, not yet read from the store."""
    catalog_version: int = 0
    """The published catalog in force; 0: the offers of the data directory."""
    experiments: ExperimentsConfig = field(default_factory=ExperimentsConfig)
    experiments_version: int = 0
    """The stored experiments version in force; 0: none stored (no experiment runs)."""
    levers_version: int = 0
    """The stored levers version in force (the levers: `ranker.levers`); 0: none stored."""
    arm_models: Mapping[str, ServedModel] = field(default_factory=dict)
    """The models the arms in force name, by alias, each loaded and smoke-checked before its
    experiments came into force (perkrank.serving.live); an alias missing here names the
    served model itself."""

    def rules(self) -> Sequence[CapRule]:
        """The frequency caps in force: the one place requests look them up."""
        return self.caps.rules

    @cached_property
    def experiment_plan(self) -> Plan | None:
        """The experiment in force, ready to assign (made once per context)."""
        return plan(self.experiments)

    def model_for(self, assignment: Assignment | None) -> tuple[OfferRanker, str]:
        """The ranker and model version answering for `assignment` (None: the served ones)."""
        if assignment is not None and assignment.model is not None:
            loaded = self.arm_models.get(assignment.model)
            if loaded is not None:
                return loaded
        return self.ranker, self.model_version

    def assignment(self, request: OfferRequest) -> Assignment | None:
        """The experiment arm answering `request`; None when no experiment runs."""
        experiment = self.experiment_plan
        if experiment is None:
            return None
        region = self.ranker.profile(request)[0] if experiment.by_region else ""
        return experiment.assign(request.member_id, region)


class ContextHolder:
    """The context in force: read `current` from any thread; `swap` replaces it atomically."""

    def __init__(self, context: ServingContext) -> None:
        self._context = context
        self._lock = threading.Lock()

    @property
    def current(self) -> ServingContext:
        """What requests use now."""
        return self._context

    def swap(self, context: ServingContext) -> ServingContext:
        """Put `context` in force; the one it replaced."""
        with self._lock:
            previous, self._context = self._context, context
        return previous
