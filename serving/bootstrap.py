"""The one composition root: settings and a data directory in, a ready serving context out.

`bootstrap` is what every serving process runs at startup (the app's lifespan, each
`perkrank serve --workers` process, `perkrank demo --no-serve`): it loads the bundle
(`ServeConfig.model_uri`: a bundle directory or an MLflow models:/ URI), the members and
offers of the data directory, the cap rules, and opens the state store. The models that
experiment arms name (`perkrank.serving.arm_models`) are loaded when the stored experiments
are first read, by the live refresher's start, before the process serves. `build_context` joins
parts that are already built, for bootstrap and for tests.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from perkrank.config import CapsConfig, ServeConfig, load_config
from perkrank.models.bundle import Bundle
from perkrank.serving.domain.catalog import Catalog
from perkrank.serving.domain.context import ServingContext
from perkrank.serving.domain.ranking import OfferRanker
from perkrank.serving.state.ports import StateStore, open_store

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("perkrank.serving")


@dataclass(frozen=True)
class Runtime:
    """What a serving process starts with: its first context and the partners table."""

    context: ServingContext
    partners: pd.DataFrame | None = None
    """What published catalogs are checked against (None: publishing is refused)."""


def bootstrap(settings: ServeConfig, data_dir: Path) -> Runtime:
    """Load model, catalog and caps and open the store (raises ConfigError,
    DataValidationError, or whatever loading the model raises)."""
    from perkrank.features.loader import load_dataset
    from perkrank.serving.domain.catalog import catalog_from_dataset

    caps = load_caps(settings)
    bundle, model_version = load_bundle(settings)
    dataset = load_dataset(data_dir)
    catalog = catalog_from_dataset(dataset, bundle, settings.mechanics.occasions)
    partners = dataset.partners
    del dataset  # purchases are not needed while serving (occasions keep their member facts)
    context = build_context(
        bundle=bundle,
        model_version=model_version,
        catalog=catalog,
        store=open_store(settings),
        caps=caps,
        settings=settings,
    )
    log.info(
        "serving model %s: %d offers, %d members, %d cap rules",
        model_version,
        len(catalog.offers),
        len(catalog.member_profiles),
        len(caps.rules),
    )
    return Runtime(context, partners)


def build_context(
    *,
    bundle: Bundle,
    model_version: str,
    catalog: Catalog,
    store: StateStore,
    caps: CapsConfig,
    settings: ServeConfig,
) -> ServingContext:
    """The first context of a process, from parts already built."""
    return ServingContext(
        ranker=OfferRanker(bundle, catalog, settings),
        store=store,
        caps=caps,
        model_version=model_version,
    )


def load_caps(settings: ServeConfig) -> CapsConfig:
    """The initial cap rules of `settings.caps_path` (raises ConfigError)."""
    return load_config(CapsConfig, settings.caps_path)


def load_bundle(settings: ServeConfig) -> tuple[Bundle, str]:
    """The bundle `settings.model_uri` names and its version."""
    directory, version = resolve_model(settings)
    return Bundle.load(directory), version


def resolve_model(settings: ServeConfig, model_uri: str | None = None) -> tuple[Path, str]:
    """The bundle directory `model_uri` (None: `settings.model_uri`) names now and its version;
    mlflow is only imported for a models:/ URI."""
    model_uri = settings.model_uri if model_uri is None else model_uri
    local = Path(model_uri)
    if (local / "bundle.json").is_file():
        return local, f"local:{local.resolve().name}"
    from perkrank.models.registry import resolve_bundle

    return resolve_bundle(
        model_uri, tracking_uri=settings.tracking_uri, cache_dir=settings.model_cache_dir
    )
