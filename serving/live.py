"""Keep a serving process in step with the live settings: cap rules, catalog, experiments,
model.

Cap rules, published catalogs and experiments live in the state store, versioned
(`StateStore.put_caps`, `publish_catalog`, `put_experiments`); the model lives in the registry
(`ServeConfig.model_uri`). Each process runs one `LiveRefresher` with two daemon threads:

- the settings thread reads `StateStore.live_versions()` every `REFRESH_SECONDS` (one round
  trip) and loads the caps, catalog or experiments whose version changed; a changed reload
  generation (`POST /v1/admin/reload`) wakes the model thread;
- the model thread resolves `model_uri` every `model_poll_seconds` (or when woken). A new
  version is loaded beside the serving one, checked (its ranker must know at least
  `min_known_members` of the catalog's members) and smoke-checked with the current catalog,
  and only then swapped in; a version that fails is logged, remembered and not tried again until the
  next reload request, and the old model keeps serving.

The model thread has its own thread so that loading a large model never delays caps. Every
change builds a new immutable `ServingContext` and swaps it into the `ContextHolder`; requests
read it once, so each one sees one consistent model, catalog and rule set. Nothing here knows
HTTP: the API wires a refresher to the holder its requests read.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import numpy as np

from perkrank.config import CapsConfig, ExperimentsConfig, ServeConfig
from perkrank.models.bundle import Bundle
from perkrank.serving.bootstrap import resolve_model
from perkrank.serving.domain.catalog import Offer, with_offers
from perkrank.serving.domain.catalog_file import offer_from_record, offer_record
from perkrank.serving.domain.context import ContextHolder, ServingContext
from perkrank.serving.domain.offer_checks import describe
from perkrank.serving.domain.ranking import OfferRanker, OfferRequest
from perkrank.serving.state.live_records import CapsVersion, CatalogVersion, ExperimentsVersion
from perkrank.serving.state.ports import StateStoreError

log = logging.getLogger(__name__)

REFRESH_SECONDS = 0.25
"""How often each process compares the live versions in the store with its own."""
INITIAL_ACTOR = "startup"
"""Who wrote caps version 1: the first process to start, from `ServeConfig.caps_path`."""
COLD_MEMBER_ID = "perkrank-smoke-check-cold-member"
"""A member id no model knows, for the smoke check of the cold-start path."""


class ModelRejectedError(ValueError):
    """A model version failed the smoke check."""


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
        self._rejected_model: str | None = None
        self._refresh_failing = False

    @property
    def context(self) -> ServingContext:
        """What requests use now."""
        return self.holder.current

    def start(self) -> None:
        """Load the stored settings once, then follow them and the registry in threads."""
        self._refresh_logging_errors()
        for name, target in (("settings", self._follow_settings), ("model", self._follow_model)):
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
            if versions.experiments != context.experiments_version:
                self._apply_experiments(context.store.get_experiments())
            if versions.reload != self._reload_generation:
                if self._reload_generation is not None:
                    self._rejected_model = None
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
        """Store `experiments` as the next version (by `actor`) and apply it here now; other
        processes follow within `REFRESH_SECONDS`."""
        stored = self.context.store.put_experiments(experiments, actor, time.time())
        self.refresh_settings()
        return stored

    def publish_catalog(self, offers: list[Offer], sha256: str, actor: str) -> CatalogVersion:
        """Store validated `offers` (an uploaded file's, of digest `sha256`) as the next catalog
        version and serve it here now; other processes follow within `REFRESH_SECONDS`."""
        records: list[dict[str, Any]] = [offer_record(offer) for offer in offers]
        published = self.context.store.publish_catalog(records, sha256, actor, time.time())
        self.refresh_settings()
        return published

    def check_model(self) -> None:
        """Swap in the model `model_uri` names if it is new and passes the smoke check."""
        with self._model_lock:
            current = self.context.model_version
            try:
                directory, version = resolve_model(self._settings)
            except Exception:
                log.exception(
                    "cannot resolve %s; still serving %s", self._settings.model_uri, current
                )
                return
            if version in (current, self._rejected_model):
                return
            try:
                bundle = Bundle.load(directory)
                with self._lock:
                    self.holder.swap(self._with_model(self.context, bundle, version))
            except Exception:
                log.exception("model %s rejected; still serving %s", version, current)
                self._rejected_model = version
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
        context = self.context
        experiments = ExperimentsConfig() if stored is None else stored.experiments
        version = 0 if stored is None else stored.version
        self.holder.swap(replace(context, experiments=experiments, experiments_version=version))
        names = [experiment.name for experiment in experiments.experiments]
        log.info("experiments version %d in force: %s", version, ", ".join(names) or "none")

    def _apply_catalog(self, published: CatalogVersion | None) -> None:
        context = self.context
        if published is None:  # the store lost its data: keep the offers, follow what comes
            self.holder.swap(replace(context, catalog_version=0))
            return
        offers, unreadable = read_records(published.offers)
        bundle = context.ranker.bundle
        catalog = with_offers(context.ranker.catalog, offers, bundle, unreadable)
        self.holder.swap(
            replace(
                context,
                ranker=OfferRanker(bundle, catalog, self._settings),
                catalog_version=published.version,
            )
        )
        log.info(
            "catalog version %d in force: %d offers (%d left out), by %s",
            published.version,
            len(catalog.offers),
            len(catalog.excluded),
            published.actor,
        )

    def _with_model(self, context: ServingContext, bundle: Bundle, version: str) -> ServingContext:
        current = context.ranker.catalog
        check_known_members(bundle, current.member_profiles, self._settings.min_known_members)
        catalog = with_offers(current, current.offers, bundle, current.excluded)
        ranker = OfferRanker(bundle, catalog, self._settings)
        smoke_check(ranker, time.time())
        return replace(context, ranker=ranker, model_version=version)

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


def check_known_members(bundle: Bundle, members: Iterable[str], min_share: float) -> None:
    """Raise ModelRejectedError when the bundle's ranker has learned vectors for fewer than
    `min_share` of `members` (no members: nothing to check)."""
    member_ids = list(members)
    if not member_ids:
        return
    known = int((bundle.ranker.member_rows(member_ids) >= 0).sum())
    share = known / len(member_ids)
    if share < min_share:
        raise ModelRejectedError(
            f"its ranker knows {known:,} of the catalog's {len(member_ids):,} members "
            f"({share:.1%}), fewer than min_known_members {min_share:.0%}"
        )


def smoke_check(ranker: OfferRanker, now: float) -> None:
    """Raise ModelRejectedError unless `ranker` gives a member its model knows and a cold
    member finite scores for every offer, in both orders, and orders their eligible offers."""
    known = ranker.bundle.ranker.member_ids[:1].tolist()
    for member_id in [*known, COLD_MEMBER_ID]:
        region, tier = ranker.profile(OfferRequest(member_id, "app", 1))
        segment = ranker.segment(region, tier, ranker.day(now))
        shortlist = ranker.shortlist(member_id, segment, ranker.pool_size(1))
        for order in (shortlist.personalized, shortlist.fallback):
            if not np.isfinite(order.scores).all():
                raise ModelRejectedError(f"non-finite scores for member {member_id!r}")
            if len(segment.rows) and not order.rows:
                raise ModelRejectedError(f"no offers ordered for member {member_id!r}")
