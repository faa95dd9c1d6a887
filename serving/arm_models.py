"""Model versions beside the served one: the registry aliases experiment arms name, and the
checks every version passes before it ranks.

An arm's `model` is an alias of the served model's registered name: with `model_uri`
`models:/perkrank-offers@champion`, `challenger` means `models:/perkrank-offers@challenger`;
with a bundle directory (tests, demos), the directory of that name beside it
(`models/champion` → `models/challenger`). An alias that resolves to `model_uri` itself is the
served model. Every version is loaded beside the catalog in force, must know
`min_known_members` of its members, and is smoke-checked before it ranks (`ranker_for`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from perkrank.config import ServeConfig
from perkrank.experiment_config import ExperimentsConfig
from perkrank.lever_config import Lever
from perkrank.models.bundle import Bundle
from perkrank.serving.bootstrap import resolve_model
from perkrank.serving.domain.catalog import Catalog, with_offers
from perkrank.serving.domain.context import ServedModel
from perkrank.serving.domain.ranking import OfferRanker, OfferRequest

COLD_MEMBER_ID = "perkrank-smoke-check-cold-member"
"""A member id no model knows, for the smoke check of the cold-start path."""
MODELS_SCHEME = "models:/"


class ModelRejectedError(ValueError):
    """A model version failed to load or a check."""


def alias_uri(model_uri: str, alias: str) -> str:
    """The URI of `alias` of the model `model_uri` names (see the module's rule)."""
    if model_uri.startswith(MODELS_SCHEME):
        name = model_uri.removeprefix(MODELS_SCHEME).split("@", 1)[0].split("/", 1)[0]
        return f"{MODELS_SCHEME}{name}@{alias}"
    return str(Path(model_uri).parent / alias)


def arm_model_uris(settings: ServeConfig, experiments: ExperimentsConfig) -> dict[str, str]:
    """The URI of each alias the arms of `experiments` name, but those of the served model."""
    uris = {}
    for experiment in experiments.experiments:
        for arm in experiment.arms:
            if arm.model is not None:
                uri = alias_uri(settings.model_uri, arm.model)
                if uri != settings.model_uri:
                    uris[arm.model] = uri
    return uris


def load_arm_models(
    settings: ServeConfig,
    experiments: ExperimentsConfig,
    catalog: Catalog,
    loaded: Mapping[str, ServedModel],
) -> dict[str, ServedModel]:
    """The models the arms of `experiments` name, by alias: those in `loaded` as they are,
    the others loaded and checked with `catalog`'s offers (raises ModelRejectedError)."""
    models = {}
    for alias, uri in arm_model_uris(settings, experiments).items():
        models[alias] = loaded.get(alias) or load_model(settings, uri, catalog)
    return models


def load_model(settings: ServeConfig, model_uri: str, catalog: Catalog) -> ServedModel:
    """The version `model_uri` names now, ranking `catalog`'s offers once checked (raises
    ModelRejectedError naming the URI)."""
    try:
        directory, version = resolve_model(settings, model_uri)
        ranker = ranker_for(Bundle.load(directory), catalog, settings)
    except Exception as error:
        raise ModelRejectedError(f"model {model_uri}: {error}") from error
    return ServedModel(ranker, version)


def ranker_for(
    bundle: Bundle, catalog: Catalog, settings: ServeConfig, levers: Sequence[Lever] = ()
) -> OfferRanker:
    """A ranker of `bundle` over `catalog`'s members and offers (with `levers`), once it knows
    enough of the members and passes the smoke check (raises ModelRejectedError)."""
    check_known_members(bundle, catalog.member_profiles, settings.min_known_members)
    ranker = OfferRanker(
        bundle, with_offers(catalog, catalog.offers, bundle, catalog.excluded), settings, levers
    )
    smoke_check(ranker, time.time())
    return ranker


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
