"""Keep a serving process in step with the live settings: cap rules, catalog, experiments,
levers, model.

Cap rules, published catalogs, experiments and marketer levers live in the state store,
versioned (`StateStore.put_caps`, `publish_catalog`, `put_experiments`, `put_levers`); a levers
version builds new rankers (their segments' orders hold the levers); the model lives in the registry
(`ServeConfig.model_uri`). Each process runs one `LiveRefresher` with three daemon threads:

- the settings thread reads `StateStore.live_versions()` every `REFRESH_SECONDS` (one round
  trip) and loads the caps, catalog or experiments whose version changed; a changed reload
  generation (`POST /v1/admin/reload`) wakes the model thread;
- the retention thread removes expired events, decisions and consent records at start and
  every `retention.TRIM_SECONDS` (`StateStore.trim_expired`);
- the model thread resolves `model_uri`, and the alias of each arm model in force
  (`perkrank.serving.arm_models`), every `model_poll_seconds` (or when woken). A new version
  is loaded beside the serving one, checked (its ranker must know at least
  `min_known_members` of the catalog's members) and smoke-checked with the current catalog,
  and only then swapped in; a version that fails is logged, remembered and not tried again
  until the next reload request, and the old one keeps serving.

An experiments version comes into force only with every model its arms name loaded and
checked (`put_experiments` loads them before storing it; other processes load them in the
settings thread, so a new arm model delays their caps once); if one fails there, the
experiments in force stay until the next reload request. A published catalog re-ranks every
loaded model. The model thread has its own thread so that loading a large model never delays
caps. A new model or catalog is read (memory-mapped `.npy`, checksums checked) and its ranker
builds the segments the ranker in force has cached (`OfferRanker.warm_like`) in these threads,
so the event loop finds everything built. Every change builds a new immutable
`ServingContext` and swaps it into the `ContextHolder` (one assignment); requests read it
once, so each one sees one consistent model, catalog and rule set. Nothing here knows HTTP:
the API wires a refresher to the holder its requests read.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from typing import Any

from perkrank.config import CapsConfig, ServeConfig
from perkrank.experiment_config import ExperimentsConfig
from perkrank.lever_config import Lever, LeversConfig
from perkrank.models.bundle import Bundle
from perkrank.serving.arm_models import arm_model_uris, load_arm_models, ranker_for
from perkrank.serving.bootstrap import resolve_model
from perkrank.serving.domain.catalog import Offer, with_offers
from perkrank.serving.domain.catalog_file import offer_from_record, offer_record
from perkrank.serving.domain.context import ContextHolder, ServedModel, ServingContext
from perkrank.serving.domain.offer_checks import describe
from perkrank.serving.domain.ranking import OfferRanker
from perkrank.serving.domain.retention import TRIM_SECONDS, Cutoffs
from perkrank.serving.state.live_records import (
    CATALOGS_KEPT,
    HISTORY_LENGTH,
    CapsVersion,
    CatalogVersion,
    ExperimentsVersion,
    LeversVersion,
)
from perkrank.serving.state.ports import StateStoreError

log = logging.getLogger(__name__)

REFRESH_SECONDS = 0.25
"""How often each process compares the live versions in the store with its own."""
INITIAL_ACTOR = "startup"
"""Who wrote caps version 1: the first process to start, from `ServeConfig.caps_path`."""


class LiveRefresher:
    """Follows the live settings for one process: `start` at startup, `stop` at shutdown."""

    def __init__(self, holder: ContextHolder, settings: ServeConfig) -> None:
        self.holder = holder
        """The context in force, swapped by every change this refresher applies."""
        self._settings = settings
        self._lock = threading.Lock()
        """Held while reading the store's settings and while swapping a context."""
        self._model_lock = threading.Lock()
        self._stopping = threading.Event()
        self._model_wanted = threading.Event()
        self._threads: list[threading.Thread] = []
        self._reload_generation: int | None = None
        self._rejected: set[str] = set()
        """Model versions that failed, not tried again until the next reload request."""
        self._rejected_experiments: int | None = None
        """An experiments version whose models failed, likewise."""
        self._prepared: dict[str, ServedModel] = {}
        """Arm models `put_experiments` loaded, for applying its version without loading again."""
        self._refresh_failing = False

    @property
    def context(self) -> ServingContext:
        """What requests use now."""
        return self.holder.current

    def start(self) -> None:
        """Load the stored settings once, then follow them and the registry in threads."""
        self._refresh_logging_errors()
        for name, target in (
            ("settings", self._follow_settings),
            ("model", self._follow_model),
            ("retention", self._trim_expired),
        ):
            thread = threading.Thread(target=target, name=f"perkrank-live-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop the threads (a model being loaded is finished first)."""
        self._stopping.set()
        self._model_wanted.set()
        for thread in self._threads:
            thread.join()

    def refresh_settings(self) -> None:
        """Apply the caps, catalog and experiments versions the store holds if this process
        serves others; seed the caps when the store has none (raises StateStoreError)."""
        with self._lock:
            context = self.context
            versions = context.store.live_versions()
            if versions.caps == 0 or versions.caps != context.caps_version:
                self._apply_caps(context.store.get_caps() or self.stored_caps())
            if versions.catalog != context.catalog_version:
                self._apply_catalog(context.store.get_catalog())
            if versions.experiments not in (
                context.experiments_version,
                self._rejected_experiments,
            ):
                self._apply_experiments(context.store.get_experiments())
            if versions.levers != self.context.levers_version:
                self._apply_levers(self.context.store.get_levers())
            if versions.reload != self._reload_generation:
                if self._reload_generation is not None:
                    self._rejected.clear()
                    self._rejected_experiments = None
                    self._model_wanted.set()
                self._reload_generation = versions.reload

    def stored_caps(self) -> CapsVersion:
        """The caps in the store; when it has none, the rules in force become version 1."""
        context = self.context
        return context.store.seed_caps(context.caps, INITIAL_ACTOR, time.time())

    def put_caps(self, caps: CapsConfig, actor: str) -> CapsVersion:
        """Store `caps` as the next version (by `actor`, an API key's name) and apply it here
        now; other processes follow within `REFRESH_SECONDS`."""
        self.stored_caps()  # the initial rules stay version 1 of the history
        stored = self.context.store.put_caps(caps, actor, time.time())
        self.refresh_settings()
        return stored

    def put_experiments(self, experiments: ExperimentsConfig, actor: str) -> ExperimentsVersion:
        """Load the models the arms of `experiments` name, then store it as the next version (by
        `actor`) and apply it here now; other processes follow within `REFRESH_SECONDS`. A
        model that fails raises ModelRejectedError and nothing is stored."""
        context = self.context
        self._prepared = load_arm_models(
            self._settings, experiments, context.ranker.catalog, context.arm_models
        )
        stored = context.store.put_experiments(experiments, actor, time.time())
        self.refresh_settings()
        return stored

    def put_levers(self, levers: LeversConfig, actor: str) -> LeversVersion:
        """Store `levers` as the next version (by `actor`) and apply it here now; other
        processes follow within `REFRESH_SECONDS`."""
        stored = self.context.store.put_levers(levers, actor, time.time())
        self.refresh_settings()
        return stored

    def publish_catalog(self, offers: list[Offer], sha256: str, actor: str) -> CatalogVersion:
        """Store validated `offers` (an uploaded file's, of digest `sha256`) as the next catalog
        version and serve it here now; other processes follow within `REFRESH_SECONDS`."""
        records: list[dict[str, Any]] = [offer_record(offer) for offer in offers]
        published = self.context.store.publish_catalog(records, sha256, actor, time.time())
        self.refresh_settings()
        return published

    def rollback_caps(self, version: int, actor: str) -> CapsVersion:
        """Store the rules of caps `version` (one of the last `HISTORY_LENGTH`) as the next
        version, audited like any change; LookupError when that version is not kept."""
        self.stored_caps()
        history = self.context.store.caps_history(HISTORY_LENGTH)
        kept = next((change for change in history if change.version == version), None)
        if kept is None:
            raise LookupError(f"caps version {version} is not kept (the last {HISTORY_LENGTH})")
        return self.put_caps(CapsConfig.model_validate(kept.new), actor)

    def rollback_catalog(self, version: int, actor: str) -> CatalogVersion:
        """Publish the offers of catalog `version` (one of the last `CATALOGS_KEPT`) again as
        the next version; LookupError when that version is not kept."""
        store = self.context.store
        kept = store.get_catalog_version(version)
        if kept is None:
            raise LookupError(f"catalog version {version} is not kept (the last {CATALOGS_KEPT})")
        published = store.publish_catalog(kept.offers, kept.sha256, actor, time.time())
        self.refresh_settings()
        return published

    def check_model(self) -> None:
        """Swap in the version `model_uri` names, and each version the arms' aliases name,
        where it is new and passes the checks."""
        with self._model_lock:
            self._check_version(None, self._settings.model_uri, self.context.model_version)
            uris = arm_model_uris(self._settings, self.context.experiments)
            for alias, served in self.context.arm_models.items():
                self._check_version(alias, uris[alias], served.version)

    def _check_version(self, alias: str | None, model_uri: str, current: str) -> None:
        """Swap in the version `model_uri` names for `alias` (None: the served model) unless it
        is `current`, failed before, or fails now (logged; `current` keeps serving)."""
        try:
            directory, version = resolve_model(self._settings, model_uri)
        except Exception:
            log.exception("cannot resolve %s; still serving %s", model_uri, current)
            return
        if version == current or version in self._rejected:
            return
        try:
            bundle = Bundle.load(directory)
            with self._lock:
                self.holder.swap(self._with_model(self.context, alias, bundle, version))
        except Exception:
            log.exception("model %s rejected; still serving %s", version, current)
            self._rejected.add(version)
            return
        log.info("model %s swapped in for %s", version, current)

    def _apply_caps(self, stored: CapsVersion) -> None:
        context = self.context
        if stored.version == context.caps_version:
            return
        self.holder.swap(replace(context, caps=stored.caps, caps_version=stored.version))
        log.info(
            "caps version %d in force: %d rules, by %s",
            stored.version,
            len(stored.caps.rules),
            stored.actor,
        )

    def _apply_experiments(self, stored: ExperimentsVersion | None) -> None:
        """Put `stored` in force once every model its arms name is loaded; if one fails, the
        experiments in force stay (logged) until the next reload request."""
        context = self.context
        experiments = ExperimentsConfig() if stored is None else stored.experiments
        version = 0 if stored is None else stored.version
        try:
            loaded = {**context.arm_models, **self._prepared}
            arm_models = load_arm_models(
                self._settings, experiments, context.ranker.catalog, loaded
            )
        except Exception:
            log.exception("experiments version %d not applied: a model failed", version)
            self._rejected_experiments = version
            return
        self._prepared = {}
        levers = context.ranker.levers
        arm_models = {alias: self._leveled(served, levers) for alias, served in arm_models.items()}
        self.holder.swap(
            replace(
                context,
                experiments=experiments,
                experiments_version=version,
                arm_models=arm_models,
            )
        )
        names = [experiment.name for experiment in experiments.experiments]
        log.info("experiments version %d in force: %s", version, ", ".join(names) or "none")

    def _apply_levers(self, stored: LeversVersion | None) -> None:
        """Rank with the levers of `stored` (None: none) in every ranker in force."""
        context = self.context
        levers = () if stored is None else stored.levers.levers
        served = self._leveled(ServedModel(context.ranker, context.model_version), levers)
        arm_models = {
            alias: self._leveled(arm, levers) for alias, arm in context.arm_models.items()
        }
        version = 0 if stored is None else stored.version
        self.holder.swap(
            replace(context, ranker=served.ranker, arm_models=arm_models, levers_version=version)
        )
        log.info("levers version %d in force: %d levers", version, len(levers))

    def _leveled(self, served: ServedModel, levers: tuple[Lever, ...]) -> ServedModel:
        """`served` ranking with `levers` (itself when it already does)."""
        ranker = served.ranker
        if ranker.levers == levers:
            return served
        leveled = OfferRanker(ranker.bundle, ranker.catalog, self._settings, levers)
        leveled.warm_like(ranker)
        return served._replace(ranker=leveled)

    def _apply_catalog(self, published: CatalogVersion | None) -> None:
        context = self.context
        if published is None:  # the store lost its data: keep the offers, follow what comes
            self.holder.swap(replace(context, catalog_version=0))
            return
        offers, unreadable = read_records(published.offers)

        def with_published(ranker: OfferRanker) -> OfferRanker:
            catalog = with_offers(ranker.catalog, offers, ranker.bundle, unreadable)
            published_ranker = OfferRanker(ranker.bundle, catalog, self._settings, ranker.levers)
            published_ranker.warm_like(ranker)
            return published_ranker

        arm_models = {
            alias: served._replace(ranker=with_published(served.ranker))
            for alias, served in context.arm_models.items()
        }
        ranker = with_published(context.ranker)
        catalog = ranker.catalog
        self.holder.swap(
            replace(
                context,
                ranker=ranker,
                catalog_version=published.version,
                arm_models=arm_models,
            )
        )
        log.info(
            "catalog version %d in force: %d offers (%d left out), by %s",
            published.version,
            len(catalog.offers),
            len(catalog.excluded),
            published.actor,
        )

    def _with_model(
        self, context: ServingContext, alias: str | None, bundle: Bundle, version: str
    ) -> ServingContext:
        """`context` with `bundle` (checked against its catalog) ranking for `alias`."""
        ranker = ranker_for(bundle, context.ranker.catalog, self._settings, context.ranker.levers)
        if alias is None:
            ranker.warm_like(context.ranker)
            return replace(context, ranker=ranker, model_version=version)
        served = context.arm_models.get(alias)
        ranker.warm_like(context.ranker if served is None else served.ranker)
        arm_models = {**context.arm_models, alias: ServedModel(ranker, version)}
        return replace(context, arm_models=arm_models)

    def _follow_settings(self) -> None:
        while not self._stopping.wait(REFRESH_SECONDS):
            self._refresh_logging_errors()

    def _follow_model(self) -> None:
        while True:
            self._model_wanted.wait(self._settings.model_poll_seconds)
            if self._stopping.is_set():
                return
            self._model_wanted.clear()
            self.check_model()

    def _trim_expired(self) -> None:
        """Remove expired records now and every TRIM_SECONDS (`privacy.retention`)."""
        while True:
            retention = self._settings.privacy.retention
            try:
                removed = self.context.store.trim_expired(Cutoffs.at(retention, time.time()))
                log.info("expired records removed: %s", removed)
            except Exception as error:
                log.warning("expired records not removed: %s", error)
            if self._stopping.wait(TRIM_SECONDS):
                return

    def _refresh_logging_errors(self) -> None:
        """`refresh_settings`; a failure is logged when it starts and when it ends, not on
        every try."""
        try:
            self.refresh_settings()
        except Exception as error:
            if not self._refresh_failing:
                log.warning(
                    "live settings not refreshed, serving what was loaded: %s",
                    error,
                    exc_info=not isinstance(error, StateStoreError),
                )
            self._refresh_failing = True
            return
        if self._refresh_failing:
            log.info("live settings refreshed again")
        self._refresh_failing = False


def read_records(records: list[Any]) -> tuple[list[Offer], list[str]]:
    """The offers of a stored catalog's records, and why each record that is not an offer
    was left out (logged)."""
    offers, unreadable = [], []
    for record in records:
        try:
            offers.append(offer_from_record(record))
        except (KeyError, TypeError, ValueError) as error:
            offer_id = record.get("offer_id") if isinstance(record, dict) else None
            unreadable.append(describe(offer_id, "record", f"cannot be read: {error!r}"))
    if unreadable:
        log.warning("%d stored offers cannot be read: %s", len(unreadable), unreadable[0])
    return offers, unreadable
