"""The learned second stage in `perkrank train`: fit it, evaluate it, build the served one.

Everything runs through `models.second_stage`, the code serving runs: per window member whose
purchases the statistics know and whom the blend knows, the candidates among the offers of
their group, their feature rows and the ranker's order; every other member gets the
fallback's order (regional popularity).

Fit (`fit_ranker`): feature rows from `PurchaseStats` before a window's start and the blend
fitted before it, labels = the window's relevant offers (a window inside the training period,
so the test window is never seen). With `earlier` snapshots (`RankerConfig.snapshots`: the
same window length, starting `snapshot_step_days` earlier each, their own statistics and
blend), their rows are stacked under the window's. The L2 penalty is chosen on a seeded
`HOLDOUT_SHARE` of the members (held out of every snapshot; NDCG@10 of their candidates'
order in the latest window), then the ranker is refitted on all rows. With
`RankerConfig.tree_weight` > 0 a LightGBM lambdarank (`models.ranker.LAMBDARANK_PARAMS`,
`tree_rounds` rounds, one query per member and snapshot) joins it: its score, scaled to the
linear logit's standard deviation on the training rows and times the weight, is added to the
logit (`StageModels`; served as `models.tree_ranker` node arrays, without LightGBM).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from datetime import date, datetime, timedelta
from typing import NamedTuple

import numpy as np
from threadpoolctl import threadpool_limits

from perkrank.config import RankerConfig
from perkrank.features.columns import Columns
from perkrank.features.dataset import Dataset
from perkrank.features.ids import IdMap
from perkrank.features.member_features import history_at
from perkrank.features.ranker_features import PurchaseStats, purchase_stats
from perkrank.models.bundle import Bundle
from perkrank.models.factors import Factors
from perkrank.models.linear_ranker import LinearRanker
from perkrank.models.ranker import fit_lambdarank, fit_linear
from perkrank.models.second_stage import (
    SERVED_FEATURES,
    CandidateSizes,
    SecondStage,
    blend_ranks,
    candidate_features,
    candidate_flags,
    segment_flags,
)
from perkrank.models.tree_ranker import TreeRanker, from_lightgbm_dump
from perkrank.progress import report, step
from perkrank.training.candidates import model_scores
from perkrank.training.evaluation import (
    EvaluationReport,
    ModelReport,
    evaluate_model,
    evaluate_scores,
)
from perkrank.training.metrics import ndcg_at_k
from perkrank.training.stage_scores import stage_score_batch
from perkrank.training.window import EvaluationWindow

RANKER = "ranker"
"""The second stage's name in evaluation reports."""
BLEND = "blend"
"""The blend's name in evaluation reports (`training.pipeline.BLEND`)."""
L2_GRID = (0.1, 1.0, 10.0, 100.0)
HOLDOUT_SHARE = 0.2
HOLDOUT_K = 10
FRAME_BLOCK = 2048
"""Members whose candidates `frame` builds at once (bounds members × offers arrays)."""


class StageData(NamedTuple):
    """Purchase statistics before a cutoff and the region name of each of their codes."""

    stats: PurchaseStats
    region_ids: np.ndarray


class MemberInputs(NamedTuple):
    """What `models.second_stage` needs for one window member ranked by the second stage."""

    member: int
    """Window member row."""
    offers: np.ndarray
    """Window offer rows of the member's group (ascending)."""
    stats_row: int
    item_rows: np.ndarray
    flags: np.ndarray
    blend_scores: np.ndarray


class GroupInputs(NamedTuple):
    """`MemberInputs` of the ranked members of one window group."""

    members: np.ndarray
    offers: np.ndarray
    stats_rows: np.ndarray
    item_rows: np.ndarray
    flags: np.ndarray
    blend_scores: np.ndarray
    """(members × offers)."""


class Snapshot(NamedTuple):
    """One label window the ranker is fitted on, with the blend and statistics before it."""

    window: EvaluationWindow
    blend: Factors
    data: StageData


class StageModels(NamedTuple):
    """The fitted second stage: the linear ranker and, optionally, the scaled trees."""

    linear: LinearRanker
    trees: TreeRanker | None = None


def snapshot_cutoffs(validation_start: date, config: RankerConfig) -> list[date]:
    """Starts of the earlier snapshots (`RankerConfig.snapshots`), latest first."""
    step_days = timedelta(days=config.snapshot_step_days)
    return [validation_start - step_days * index for index in range(1, config.snapshots)]


def stage_data(dataset: Dataset, cutoff: date) -> StageData:
    """Statistics of every purchase before `cutoff` (members who signed up before it)."""
    history = history_at(dataset, datetime.combine(cutoff, datetime.min.time()), amounts=False)
    regions = history.members[Columns.region].drop_duplicates().to_numpy(dtype=str)
    return StageData(purchase_stats(history), regions)  # codes: order of first appearance


def served_stage(
    dataset: Dataset, cutoff: date, ranker: LinearRanker, trees: TreeRanker | None = None
) -> SecondStage:
    """The second stage a bundle trained until `cutoff` serves."""
    stats, regions = stage_data(dataset, cutoff)
    return SecondStage(ranker, stats, regions, trees=trees)


def ranked_groups(
    window: EvaluationWindow, blend: Factors, data: StageData, sizes: CandidateSizes
) -> Iterator[GroupInputs]:
    """Per window group, its members the second stage ranks (see the module docstring)."""
    scores = model_scores(window, blend)
    members, items = IdMap(data.stats.member_ids), IdMap(data.stats.item_ids)
    regions = IdMap(data.region_ids)
    for group in window.groups:
        offers = group.offer_rows
        item_rows = items.rows(window.offer_items[offers])
        flags = segment_flags(data.stats, sizes, item_rows, regions.get(group.region, -1))
        member_ids = window.member_ids[group.member_rows]
        rows = members.rows(member_ids)
        warm = rows >= 0
        warm[warm] = data.stats.member_purchases[rows[warm]] > 0
        ranked = warm & (blend.member_rows(member_ids) >= 0)
        member_rows = group.member_rows[ranked]
        yield GroupInputs(
            member_rows, offers, rows[ranked], item_rows, flags, scores[np.ix_(member_rows, offers)]
        )


def ranked_members(
    window: EvaluationWindow, blend: Factors, data: StageData, sizes: CandidateSizes
) -> Iterator[MemberInputs]:
    """`ranked_groups` member by member."""
    for group in ranked_groups(window, blend, data, sizes):
        for index, member in enumerate(group.members.tolist()):
            yield MemberInputs(
                member,
                group.offers,
                int(group.stats_rows[index]),
                group.item_rows,
                group.flags,
                group.blend_scores[index],
            )


def evaluate_ranker(
    window: EvaluationWindow,
    blend: Factors,
    fallback: Factors,
    stage: SecondStage,
    k_values: Sequence[int],
    name: str = RANKER,
) -> ModelReport:
    """The second stage's metrics on `window` (scored block by block: `training.stage_scores`)."""
    scores = stage_score_batch(window, blend, fallback, stage)
    return evaluate_scores(window, scores, k_values, name)


def fit_on_window(
    dataset: Dataset,
    window: EvaluationWindow,
    blend: Factors,
    *,
    seed: int,
    config: RankerConfig | None = None,
    earlier: Sequence[tuple[EvaluationWindow, Factors]] = (),
) -> StageModels | None:
    """`fit_ranker` with statistics before each window's start (the pipeline's step);
    `earlier`: the earlier snapshots' windows and blends."""
    with step(f"fit the second-stage ranker on [{window.start}, {window.end})"):
        snapshots = [
            Snapshot(earlier_window, earlier_blend, stage_data(dataset, earlier_window.start))
            for earlier_window, earlier_blend in earlier
        ]
        models = fit_ranker(
            window,
            blend,
            stage_data(dataset, window.start),
            seed=seed,
            config=config,
            earlier=snapshots,
        )
        report(
            "no ranker: the window has no positive or no negative candidate"
            if models is None
            else f"linear ranker{'' if models.trees is None else ' and trees'} fitted on "
            f"{1 + len(snapshots)} snapshot(s)"
        )
    return models


def add_evaluation(
    evaluation: EvaluationReport,
    dataset: Dataset,
    window: EvaluationWindow,
    blend: Factors,
    fallback: Factors,
    ranker: StageModels | None,
    k_values: Sequence[int],
) -> SecondStage | None:
    """Add the second stage (statistics before `window.start`) to `evaluation` as `RANKER`,
    and return it (None without a ranker: the blend is served)."""
    if ranker is None:
        return None
    stage = served_stage(dataset, window.start, *ranker)
    evaluation.models[RANKER] = evaluate_ranker(window, blend, fallback, stage, k_values)
    return stage


def evaluate_bundle(
    window: EvaluationWindow, bundle: Bundle, k_values: Sequence[int], name: str
) -> ModelReport:
    """The metrics of the order `bundle` serves on `window`: its second stage (the fallback
    for members it does not rank), else its blend."""
    if bundle.second_stage is None:
        return evaluate_model(window, bundle.ranker, k_values, name)
    stage = bundle.second_stage
    return evaluate_ranker(window, bundle.ranker, bundle.fallback, stage, k_values, name)


def fit_ranker(
    window: EvaluationWindow,
    blend: Factors,
    data: StageData,
    *,
    seed: int,
    config: RankerConfig | None = None,
    earlier: Sequence[Snapshot] = (),
) -> StageModels | None:
    """The second stage fitted on `window`'s candidates and those of the `earlier` snapshots
    (None: no positive or no negative)."""
    config = config or RankerConfig()
    snapshots = [Snapshot(window, blend, data), *earlier]
    parts = [frame(s.window, s.blend, s.data, CandidateSizes()) for s in snapshots]
    features = np.vstack([part[0] for part in parts])
    labels = np.concatenate([part[1] for part in parts])
    if len(labels) == 0 or labels.min() == labels.max():
        return None
    ids = [s.window.member_ids[part[2]] for s, part in zip(snapshots, parts, strict=True)]
    latest = np.repeat([True, False], [len(parts[0][1]), len(labels) - len(parts[0][1])])
    members = parts[0][2]
    relevant_counts = np.asarray(window.relevant.sum(axis=1)).ravel()
    unique = np.unique(ids[0])
    rng = np.random.default_rng(seed)
    held_ids = rng.choice(unique, max(1, int(len(unique) * HOLDOUT_SHARE)), replace=False)
    held = np.isin(np.concatenate(ids), held_ids)
    scored = held[latest]
    best_l2, best_value = L2_GRID[0], -np.inf
    with threadpool_limits(1, "blas"):  # small products: more threads only contend
        if labels[~held].min() < labels[~held].max():
            for l2 in L2_GRID:
                ranker = fit_linear(features[~held], labels[~held], SERVED_FEATURES, l2=l2)
                value = holdout_ndcg(
                    ranker.predict(parts[0][0][scored]),
                    parts[0][1][scored],
                    members[scored],
                    relevant_counts,
                )
                if value > best_value:
                    best_l2, best_value = l2, value
        linear = fit_linear(features, labels, SERVED_FEATURES, l2=best_l2)
    if config.tree_weight == 0:
        return StageModels(linear)
    queries = np.concatenate(
        [
            part[2] + index * len(s.window.member_ids)
            for index, (s, part) in enumerate(zip(snapshots, parts, strict=True))
        ]
    )
    return StageModels(linear, fit_trees(features, labels, queries, linear, config, seed))


def fit_trees(
    features: np.ndarray,
    labels: np.ndarray,
    queries: np.ndarray,
    linear: LinearRanker,
    config: RankerConfig,
    seed: int,
) -> TreeRanker:
    """The lambdarank trees (one query per `queries` id), scaled for the ensemble (see the
    module docstring)."""
    order = np.argsort(queries, kind="stable")
    _, sizes = np.unique(queries[order], return_counts=True)
    booster = fit_lambdarank(
        features[order],
        labels[order],
        sizes,
        SERVED_FEATURES,
        rounds=config.tree_rounds,
        seed=seed,
    )
    trees = from_lightgbm_dump(booster.dump_model(), SERVED_FEATURES)
    spread = float(np.std(booster.predict(features, raw_score=True)))  # = trees.predict
    scale = config.tree_weight * float(np.std(linear.predict(features))) / spread if spread else 0.0
    return dataclasses.replace(trees, value=trees.value * scale)


def frame(
    window: EvaluationWindow, blend: Factors, data: StageData, sizes: CandidateSizes
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Feature rows, labels (1.0: relevant) and window member rows of every candidate: for
    each member as `member_candidates` gives them, blocks of `FRAME_BLOCK` members at once."""
    features, labels, members = [], [], []
    relevant = window.relevant.tocsr()
    for group in ranked_groups(window, blend, data, sizes):
        for start in range(0, len(group.members), FRAME_BLOCK):
            block = slice(start, start + FRAME_BLOCK)
            scores = group.blend_scores[block]
            ranks = blend_ranks(scores)
            flags = candidate_flags(
                data.stats,
                sizes,
                group.stats_rows[block],
                group.item_rows,
                group.flags,
                scores,
                ranks,
            )
            rows, columns = np.nonzero(flags)
            features.append(
                candidate_features(
                    data.stats,
                    group.stats_rows[block][rows],
                    group.item_rows[columns],
                    scores[rows, columns],
                    ranks[rows, columns],
                    flags[rows, columns],
                )
            )
            member_rows = group.members[block]
            hits = relevant[member_rows][:, group.offers].toarray()
            labels.append((hits[rows, columns] != 0).astype(float))
            members.append(member_rows[rows])
    if not features:
        return np.zeros((0, len(SERVED_FEATURES))), np.zeros(0), np.zeros(0, dtype=np.int64)
    return np.vstack(features), np.concatenate(labels), np.concatenate(members)


def holdout_ndcg(
    scores: np.ndarray, labels: np.ndarray, members: np.ndarray, relevant_counts: np.ndarray
) -> float:
    """Mean NDCG@`HOLDOUT_K` of each member's candidates ordered by `scores`."""
    order = np.lexsort((-scores, members))
    members, labels = members[order], labels[order].astype(bool)
    starts = np.flatnonzero(np.r_[True, members[1:] != members[:-1]])
    hits = np.zeros((len(starts), HOLDOUT_K), dtype=bool)
    for index, (start, end) in enumerate(zip(starts, np.r_[starts[1:], len(members)], strict=True)):
        top = labels[start : min(end, start + HOLDOUT_K)]
        hits[index, : len(top)] = top
    return float(ndcg_at_k(hits, relevant_counts[members[starts]], HOLDOUT_K).mean())
