"""The learned coupon rankers, one per offer group (`models.coupon_stage.GROUPS`): training rows
of earlier campaigns from `models.coupon_features`' features (the arrays serving reads, as of each
campaign's start), every modelling choice made by rolling-origin cross-validation inside the
training period, and the served stage.

Folds (`rolling_folds`): every training campaign with at least `MIN_EARLIER` campaigns starting
before it is validated once (the latest `MAX_FOLDS` of each group): fitted on the campaigns
starting before it (labels: redemptions dated before its start), scored on its household ×
campaign pairs with a redemption (labels dated before the cutoff). A group's validation score
is the mean NDCG@10 of its pairs pooled over the folds of its campaigns.

Choices (`choose`, per group): for each penalty of `L2_GRID` and each `FIT_ON` (fit on every
campaign's rows, or on the group's only), greedy forward selection adds the feature of
`FEATURES` that most raises the group's validation score of the logistic ranker (`fit`) and
stops when none raises it or at `MAX_FEATURES`; the best (features, penalty, rows) wins and is
refitted on every campaign before the cutoff (`fit_group`; `fit_rankers` does both). Training
rows keep only household × campaign pairs with a redemption (only those can teach a ranking);
the test campaigns take no part. `perkrank train --coupons` and the Complete Journey benchmark
both call `fit_rankers`, so they make the same choices for the same cutoff.

Speed: each campaign's features are computed once, as of its start (`campaign_blocks`); each
fold's rows are transformed and standardised once per `FIT_ON` (`FoldDesign`), so a candidate
feature set is a column selection; a selection step fits all its candidates together
(`coupon_fit.fit_many`, which also fits the served ranker), each started from the previous
step's fit (the same optimum, fewer Newton steps). Progress: a line per setting.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from perkrank.features.complete_journey import CouponTables
from perkrank.features.ids import IdMap
from perkrank.models.coupon_stage import (
    FEATURES,
    GROUP_OF_TYPE,
    GROUPS,
    CouponStage,
    feature_arrays,
)
from perkrank.models.linear_ranker import LinearRanker, transform
from perkrank.models.ranker import standardised
from perkrank.progress import Counter
from perkrank.training import coupon_evaluation as ce
from perkrank.training.coupon_fit import Counts, collapse, fit_many
from perkrank.training.coupon_stats import coupon_stats

L2_GRID = (0.1, 1.0, 10.0, 100.0, 1000.0)
FIT_ON = ("all", "own")
MAX_FEATURES = 8
"""Forward selection stops at this many features (bounds the search)."""
MIN_EARLIER = 2
"""Campaigns that must start before a campaign for it to be a validation fold."""
MAX_FOLDS = 8
"""Validation folds per group: the latest (bounds the search as campaigns accumulate; the
benchmark's cutoff has 8 Type B/C folds and 1 Type A, so it is not affected)."""
UNCHOSEN = (ce.BASELINES, max(L2_GRID), "all")
"""(features, penalty, rows) of a group without a validation fold (nothing to choose on)."""


@dataclass(frozen=True)
class TrainingRows:
    """Stacked feature rows of campaigns: one query per household × campaign."""

    features: np.ndarray
    """Columns: `FEATURES`."""
    labels: np.ndarray
    query_ids: np.ndarray
    """One id per row ("<campaign>/<member>"); rows of a query are contiguous."""
    types: np.ndarray
    """The campaign type of each row."""

    def where(self, keep: np.ndarray) -> TrainingRows:
        """The rows where `keep`."""
        return TrainingRows(
            self.features[keep], self.labels[keep], self.query_ids[keep], self.types[keep]
        )

    def group(self, group: str) -> np.ndarray:
        """bool per row: the row's campaign type is in `group` (of `GROUPS`)."""
        position = GROUPS.index(group)
        return np.array([GROUP_OF_TYPE[kind] == position for kind in self.types], dtype=bool)


@dataclass(frozen=True)
class CampaignBlock:
    """One campaign's features as of its start and when each coupon was first redeemed."""

    task: ce.Campaign
    features: np.ndarray
    """float64 (members × coupons × `FEATURES`)."""
    redeemed_on: np.ndarray
    """datetime64 (members × coupons): the first redemption (NaT: none)."""

    def labels(self, before: pd.Timestamp) -> np.ndarray:
        """bool (members × coupons): redeemed before `before`."""
        return self.redeemed_on < np.datetime64(before)


@dataclass(frozen=True)
class Fold:
    """One validation campaign and the rows fitted to score it."""

    campaign_id: str
    group: str
    fit_campaigns: tuple[str, ...]
    fit: TrainingRows
    validation: TrainingRows


@dataclass(frozen=True)
class Choice:
    """One group's chosen features, penalty and rows, with their validation scores."""

    group: str
    features: tuple[str, ...]
    l2: float
    fit_on: str
    score: float = float("nan")
    per_setting: Mapping[tuple[str, float], tuple[tuple[str, ...], float]] | None = None
    """Each (`FIT_ON`, penalty)'s forward-selected features and validation score."""


@dataclass(frozen=True)
class StageFit:
    """The coupon rankers fitted on every campaign starting before a cutoff, and how they were
    chosen."""

    blocks: Mapping[str, CampaignBlock]
    folds: list[Fold]
    choices: Mapping[str, Choice]
    rankers: Mapping[str, LinearRanker]


def fit_rankers(tables: CouponTables, index: ce.CouponIndex, cutoff: pd.Timestamp) -> StageFit:
    """Choose each group's ranker by rolling-origin cross-validation over the campaigns
    starting before `cutoff` (labels dated before it) and refit it on all of them; a group
    without a fold gets `UNCHOSEN` (the baselines' features, the strongest penalty, every
    campaign's rows). ValueError when no household redeemed before `cutoff`."""
    starts = tables.campaigns.set_index("campaign_id").start_date
    blocks = campaign_blocks(tables, index, starts[starts < cutoff].index.tolist())
    folds = rolling_folds(blocks, cutoff)
    choices = {
        group: choose(folds, group)
        if any(fold.group == group for fold in folds)
        else Choice(group, *UNCHOSEN)
        for group in GROUPS
    }
    redeeming = training_rows(blocks, list(blocks), cutoff)
    rankers = {group: fit_group(redeeming, choices[group]) for group in GROUPS}
    return StageFit(blocks, folds, choices, rankers)


def campaign_features(tables: CouponTables, index: ce.CouponIndex, task: ce.Campaign) -> np.ndarray:
    """float64 (members × coupons × `FEATURES`) of a campaign, as of its start."""
    stats = coupon_stats(tables, index, task.start)
    return feature_arrays(stats, IdMap(stats.member_ids).rows(task.members), task.coupon_rows)


def campaign_stage(
    tables: CouponTables,
    index: ce.CouponIndex,
    start: pd.Timestamp,
    rankers: Mapping[str, LinearRanker],
) -> CouponStage:
    """The stage serving would hold with a bundle cut at `start`."""
    return CouponStage(rankers, coupon_stats(tables, index, start))


def campaign_blocks(
    tables: CouponTables, index: ce.CouponIndex, campaign_ids: Iterable[str]
) -> dict[str, CampaignBlock]:
    """The block of each campaign (features computed once, labels cut later)."""
    blocks = {}
    campaign_ids = list(campaign_ids)
    progress = Counter("features of each campaign as of its start", len(campaign_ids), every=5)
    for campaign_id in campaign_ids:
        task = ce.campaign_task(tables, index, campaign_id, labels_before=None)
        redeemed = tables.redemptions[tables.redemptions["campaign_id"] == campaign_id]
        first = redeemed.groupby(["member_id", "coupon_upc"])["redemption_date"].min()
        dates = np.full(task.labels.shape, np.datetime64("NaT"), dtype="datetime64[ns]")
        members, upcs = IdMap(task.members), IdMap(task.coupon_upcs)
        rows = members.rows(first.index.get_level_values(0))
        columns = upcs.rows(first.index.get_level_values(1))
        known = (rows >= 0) & (columns >= 0)
        dates[rows[known], columns[known]] = first.to_numpy("datetime64[ns]")[known]
        blocks[campaign_id] = CampaignBlock(task, campaign_features(tables, index, task), dates)
        progress.advance()
    return blocks


def training_rows(
    blocks: Mapping[str, CampaignBlock],
    campaign_ids: Iterable[str],
    labels_before: pd.Timestamp,
    *,
    redeeming_only: bool = True,
) -> TrainingRows:
    """Rows of the household × campaign pairs of `campaign_ids` (with `redeeming_only`, those
    with a redemption dated before `labels_before`)."""
    features, labels, queries, types = [], [], [], []
    for campaign_id in sorted(campaign_ids):
        block = blocks[campaign_id]
        task, cut = block.task, block.labels(labels_before)
        keep = cut.any(axis=1) if redeeming_only else np.ones(len(task.members), bool)
        if not keep.any():
            continue
        features.append(block.features[keep].reshape(-1, len(FEATURES)))
        labels.append(cut[keep].ravel())
        coupons = cut.shape[1]
        queries.append(np.repeat([f"{campaign_id}/{m}" for m in task.members[keep]], coupons))
        types.append(np.full(len(queries[-1]), task.campaign_type))
    if not features:
        raise ValueError(f"no household redeemed in campaigns {sorted(campaign_ids)}")
    return TrainingRows(
        np.vstack(features),
        np.concatenate(labels).astype(np.float64),
        np.concatenate(queries),
        np.concatenate(types),
    )


def rolling_folds(blocks: Mapping[str, CampaignBlock], cutoff: pd.Timestamp) -> list[Fold]:
    """A fold per campaign of `blocks` with `MIN_EARLIER` campaigns starting before it, a
    redemption dated before `cutoff`, and, in the earlier campaigns of its group, one dated
    before its own start (so every `FIT_ON` can fit it); the latest `MAX_FOLDS` of each group,
    in order of start."""
    order = sorted(blocks, key=lambda campaign_id: blocks[campaign_id].task.start)
    folds: list[Fold] = []
    for position in reversed(range(len(order))):
        campaign_id, task = order[position], blocks[order[position]].task
        group = GROUPS[GROUP_OF_TYPE[task.campaign_type]]
        earlier = [c for c in order[:position] if blocks[c].task.start < task.start]
        if (
            len(earlier) < MIN_EARLIER
            or not blocks[campaign_id].labels(cutoff).any()
            or sum(fold.group == group for fold in folds) == MAX_FOLDS
        ):
            continue
        try:
            fit = training_rows(blocks, earlier, task.start)
        except ValueError:
            continue
        if not fit.labels[fit.group(group)].any():
            continue
        validation = training_rows(blocks, [campaign_id], cutoff)
        folds.append(Fold(campaign_id, group, tuple(earlier), fit, validation))
    return folds[::-1]


def fit(rows: TrainingRows, names: Sequence[str], l2: float) -> LinearRanker:
    """The logistic ranker on the `names` columns of `rows`, transformed and standardised as
    `models.ranker.fit_linear` does (coupon features have no NaN, so no missing flags) and
    fitted by `coupon_fit.fit_many` (the forward selection's fit)."""
    raw = _transformed(rows.features[:, [FEATURES.index(name) for name in names]])
    design, means, scales = standardised(raw)
    design, counts = collapse(design, rows.labels)
    theta = fit_many(design[:, :-1], design[:, -1:], counts, l2)[0]
    return LinearRanker(tuple(names), (), means, scales, theta[:-1], float(theta[-1]))


def _transformed(features: np.ndarray) -> np.ndarray:
    """`transform` without missing flags (ValueError on NaN)."""
    if np.isnan(features).any():
        raise ValueError("coupon features are never NaN (no missing flags)")
    return transform(features, ())


def fit_group(rows: TrainingRows, choice: Choice) -> LinearRanker:
    """The group's ranker with the chosen features and penalty, fitted on `rows` (only the
    group's with `fit_on` "own")."""
    if choice.fit_on == "own":
        rows = rows.where(rows.group(choice.group))
    return fit(rows, choice.features, choice.l2)


def predict(ranker: LinearRanker, rows: TrainingRows) -> np.ndarray:
    """The ranker's logit of each row."""
    return ranker.predict(rows.features[:, [FEATURES.index(n) for n in ranker.feature_names]])


def fold_ndcg(folds: Sequence[Fold], choice: Choice) -> np.ndarray:
    """NDCG@10 of each validation pair of the group's folds, pooled, under `choice` (fitted
    through `fit_group`, as the served ranker is; `FoldDesign.ndcg` gives the same values)."""
    values = []
    for fold in folds:
        if fold.group != choice.group:
            continue
        ranker = fit_group(fold.fit, choice)
        values.append(query_ndcg(predict(ranker, fold.validation), fold.validation))
    return np.concatenate(values) if values else np.zeros(0)


def query_ndcg(scores: np.ndarray, rows: TrainingRows) -> np.ndarray:
    """NDCG@10 of each query of `rows`."""
    return ce.ndcg(*query_matrices(scores, rows.labels > 0, rows.query_ids))


@dataclass(frozen=True)
class FoldDesign:
    """One fold's rows for one `FIT_ON`, transformed and standardised once over every column of
    `FEATURES` exactly as `fit_linear` does (statistics of the fit rows; the transform is per
    column), so a candidate feature set is a column selection: forward selection refits
    without recomputing or re-standardising anything."""

    fit: np.ndarray
    """The distinct standardised fit rows (`coupon_fit.collapse`)."""
    counts: Counts
    validation: np.ndarray
    """The validation rows standardised by the fit rows' statistics."""
    slots: tuple[np.ndarray, np.ndarray]
    """(query, position) of each validation row in the padded query matrix."""
    relevant: np.ndarray
    """bool (queries × longest query): the padded validation labels."""
    fitted: dict[tuple[tuple[int, ...], float], np.ndarray] = field(default_factory=dict)
    """[weights, bias] of each (columns, penalty) fitted so far: where the next forward
    selection step's models start (`fit_many`'s `start`)."""

    def ndcg(self, chosen: Sequence[int], candidates: Sequence[int], l2: float) -> np.ndarray:
        """NDCG@10 (candidates × validation queries) of the rankers on `FEATURES` columns
        `chosen` plus one of `candidates` each (`coupon_fit.fit_many`, as `fit` fits; started
        from the fit on `chosen` when there was one)."""
        chosen = list(chosen)
        start = self.fitted.get((tuple(chosen), l2))
        theta = fit_many(self.fit[:, chosen], self.fit[:, list(candidates)], self.counts, l2, start)
        for candidate, row in zip(candidates, theta, strict=True):
            self.fitted[(*chosen, candidate), l2] = row
        logits = (self.validation[:, chosen] @ theta[:, :-2].T + theta[:, -1]
                  + self.validation[:, list(candidates)] * theta[:, -2])  # fmt: skip
        scores = np.full((len(candidates), *self.relevant.shape), -np.inf)
        scores[:, *self.slots] = logits.T
        return np.stack([ce.ndcg(model, self.relevant) for model in scores])


def fold_design(fold: Fold, fit_on: str) -> FoldDesign:
    """The `FoldDesign` of a fold (`fit_on` "own": its group's fit rows only)."""
    rows = fold.fit.where(fold.fit.group(fold.group)) if fit_on == "own" else fold.fit
    design, means, scales = standardised(_transformed(rows.features))
    validation = (_transformed(fold.validation.features) - means) / scales
    _, first, inverse = np.unique(fold.validation.query_ids, return_index=True, return_inverse=True)
    position = np.arange(len(inverse)) - first[inverse]
    relevant = np.zeros((len(first), int(position.max()) + 1), dtype=bool)
    relevant[inverse, position] = fold.validation.labels > 0
    return FoldDesign(*collapse(design, rows.labels), validation, (inverse, position), relevant)


def choose(folds: Sequence[Fold], group: str) -> Choice:
    """Features, penalty and rows by forward selection (module docstring), over each fold's
    `FoldDesign` (built once per `FIT_ON`)."""
    mine = [fold for fold in folds if fold.group == group]
    per_setting = {}
    progress = Counter(f"{group}: forward selection", len(FIT_ON) * len(L2_GRID))
    with threadpool_limits(1, "blas"):  # many small fits: BLAS threads only contend
        for fit_on in FIT_ON:
            designs = [fold_design(fold, fit_on) for fold in mine]
            for l2 in L2_GRID:
                per_setting[fit_on, l2] = forward_selection(partial(pooled_ndcg, designs, l2=l2))
                chosen, best = per_setting[fit_on, l2]
                progress.advance(f"rows {fit_on}, l2 {l2:g}: {len(chosen)} features, {best:.4f}")
    fit_on, l2 = max(per_setting, key=lambda setting: per_setting[setting][1])
    features, score = per_setting[fit_on, l2]
    return Choice(group, features, l2, fit_on, score, per_setting)


def pooled_ndcg(
    designs: Sequence[FoldDesign], chosen: tuple[str, ...], candidates: Sequence[str], l2: float
) -> np.ndarray:
    """Per candidate: the mean NDCG@10 over every design's validation queries of the ranker on
    `chosen` plus the candidate, fitted with `l2`."""
    columns = [FEATURES.index(name) for name in chosen]
    extra = [FEATURES.index(name) for name in candidates]
    return np.hstack([design.ndcg(columns, extra, l2) for design in designs]).mean(axis=1)


def forward_selection(
    score: Callable[[tuple[str, ...], list[str]], np.ndarray],
    candidates: Sequence[str] = FEATURES,
    most: int = MAX_FEATURES,
) -> tuple[tuple[str, ...], float]:
    """Greedy forward selection: `score(chosen, rest)` scores each of the rest added to the
    chosen; add the best (ties to the earlier candidate) while that raises the score, `most`
    at most; the chosen names and their score."""
    chosen: tuple[str, ...] = ()
    best = -np.inf
    while len(chosen) < min(most, len(candidates)):
        rest = [name for name in candidates if name not in chosen]
        scores = score(chosen, rest)
        top = int(np.argmax(scores))
        if scores[top] <= best:
            break
        chosen, best = (*chosen, rest[top]), float(scores[top])
    return chosen, float(best)


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else -np.inf


def query_matrices(
    scores: np.ndarray, labels: np.ndarray, query_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Queries × their longest length: scores padded with −inf, labels with False."""
    _, first, inverse = np.unique(query_ids, return_index=True, return_inverse=True)
    position = np.arange(len(query_ids)) - first[inverse]
    shape = (len(first), int(position.max()) + 1)
    padded_scores, padded_labels = np.full(shape, -np.inf), np.zeros(shape, dtype=bool)
    padded_scores[inverse, position] = scores
    padded_labels[inverse, position] = labels
    return padded_scores, padded_labels
