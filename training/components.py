"""The component models of one cutoff: which fitters exist, fitting them (side by side on a
shared pool, `training.fitting`) on the purchases before the cutoff, and the blend of them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import date, datetime

from perkrank.config import TrainConfig
from perkrank.features.bought_items import BoughtItems
from perkrank.features.dataset import Dataset
from perkrank.features.interactions import CutoffFeatures, cutoff_features
from perkrank.features.offer_features import item_feature_table
from perkrank.features.training_data import TrainingData
from perkrank.models.als import fit_als, on_gpu
from perkrank.models.blend import blend
from perkrank.models.bpr import fit_bpr
from perkrank.models.factors import Factors, only_members
from perkrank.models.hybrid import fit_lightfm
from perkrank.models.own_pop import NAME as OWN_POP
from perkrank.models.own_pop import fit_own_pop
from perkrank.models.popularity import fit_global_popularity, fit_popularity
from perkrank.models.repeat import fit_repeat
from perkrank.progress import report, step
from perkrank.training.fitting import FitPool, fitting_pool, submit_fits

AGGREGATES = ("popularity", "regional_popularity")
"""Components that are anonymous aggregates: members who turned personalization off count in
them under `privacy.opted_out: aggregate_only` (their member rows are then dropped)."""


@dataclass
class FittedComponents:
    """Every component model fitted on data before one cutoff, with the features it saw and
    the items each member had bought (what an evaluation window starting there needs)."""

    cutoff: date
    models: dict[str, Factors]
    member_features: dict[str, list[str]]
    item_features: dict[str, list[str]]
    items_bought_before: BoughtItems


def fit_components(
    dataset: Dataset,
    cutoff: date,
    config: TrainConfig,
    *,
    names: Iterable[str] | None = None,
    aggregates: Dataset | None = None,
) -> FittedComponents:
    """Fit every component (or just `names`) on purchases strictly before `cutoff`, side by
    side (`training.fitting`); the cutoff's history and features are built once."""
    with fitting_pool(config.threads) as pool:
        return start_components(dataset, {cutoff: names}, config, pool, aggregates)[cutoff]()


def start_components(
    dataset: Dataset,
    plan: Mapping[date, Iterable[str] | None],
    config: TrainConfig,
    pool: FitPool,
    aggregates: Dataset | None = None,
    *,
    first: int = 0,
) -> dict[date, Callable[[], FittedComponents]]:
    """Build each cutoff's features and submit the fits of its components (`plan`: the names,
    None = all) to `pool`; each returned function waits for one cutoff's fits. The first
    `first` cutoffs of `plan` (those the caller waits on first) are built and submitted before
    the others are built, so their fits start first and run while the rest are prepared.
    `aggregates` (None: `dataset`) is what the AGGREGATES components count: a superset of
    `dataset` whose extra members get no row."""
    item_features = item_feature_table(dataset)
    cutoffs = list(plan.items())
    waiters: dict[date, Callable[[], FittedComponents]] = {}
    for batch in (cutoffs[:first], cutoffs[first:]):
        prepared = [_prepare(dataset, cutoff, names, config, aggregates) for cutoff, names in batch]
        submitted = submit_fits(
            pool, [(cutoff, fitters, f.data) for cutoff, fitters, f in prepared]
        )
        for (cutoff, _, features), futures in zip(prepared, submitted, strict=True):
            waiters[cutoff] = _waiter(cutoff, features, item_features, futures)
    return waiters


def _prepare(
    dataset: Dataset,
    cutoff: date,
    names: Iterable[str] | None,
    config: TrainConfig,
    aggregates: Dataset | None,
) -> tuple[date, dict[str, Callable[[TrainingData], Factors]], CutoffFeatures]:
    """One cutoff's features and the fitters of its components."""
    moment = datetime.combine(cutoff, datetime.min.time())
    with step(f"features before {cutoff}"):
        features = cutoff_features(dataset, moment, config.interactions)
        data = features.data
        report(
            f"{len(data.member_ids)} members × {len(data.item_ids)} items, "
            f"{data.user_items.nnz} non-zeros"
        )
    fitters = component_fitters(config)
    if names is not None:
        fitters = {name: fitters[name] for name in dict.fromkeys(names)}
    if aggregates is not None:
        counted = cutoff_features(aggregates, moment, config.interactions).data
        for name in AGGREGATES:
            if name in fitters:
                fitters[name] = _aggregate_fitter(fitters[name], counted)
    return cutoff, fitters, features


def _waiter(
    cutoff: date,
    features: CutoffFeatures,
    item_features: dict[str, list[str]],
    futures: dict[str, Future[Factors]],
) -> Callable[[], FittedComponents]:
    """Waits for the fits; holds what `FittedComponents` reads of `features`, not the training
    matrices (freed once the fits that read them are done)."""
    member_features, bought = features.member_features, features.items_bought_before
    return lambda: FittedComponents(
        cutoff=cutoff,
        models={name: future.result() for name, future in futures.items()},
        member_features=member_features,
        item_features=item_features,
        items_bought_before=bought,
    )


def _aggregate_fitter(
    fit: Callable[[TrainingData], Factors], counted: TrainingData
) -> Callable[[TrainingData], Factors]:
    """`fit` over `counted` (everyone the aggregate may count), keeping only `data`'s members."""
    return lambda data: only_members(fit(counted), data.member_ids)


def component_fitters(config: TrainConfig) -> dict[str, Callable[[TrainingData], Factors]]:
    seed, threads = config.seed, config.threads
    sgd_threads = 1 if config.deterministic else threads
    gpu = on_gpu(config.als)  # decided (and an impossible `true` refused) before any fit
    return {
        "popularity": fit_global_popularity,
        "regional_popularity": fit_popularity,
        "repeat": fit_repeat,
        OWN_POP: fit_own_pop,
        "als": lambda data: fit_als(data, config.als, seed=seed, threads=threads, gpu=gpu),
        "bpr": lambda data: fit_bpr(data, config.bpr, seed=seed, threads=sgd_threads),
        "lightfm": lambda data: fit_lightfm(data, config.lightfm, seed=seed, threads=sgd_threads),
    }


def blend_components(fitted: FittedComponents, weights: Mapping[str, float], seed: int) -> Factors:
    """The ranker: the weighted blend of the fitted components."""
    return blend(
        {name: fitted.models[name] for name in weights},
        weights,
        member_features=fitted.member_features,
        item_features=fitted.item_features,
        seed=seed,
    )
