"""Offline evaluation of offer rankings on an `EvaluationWindow` (see `training.window`).

Score:
    the model's `Factors` score by `models.scoring`, the code serving runs: member vector (learned
    row, else the sum of its feature vectors) · offer's item vector + item bias (unseen items
    from their features) + `repeat_weight · log1p(repeat)`, made the ranking key by
    `models.value.final_scores` (calibration and value terms; none by default). Candidates are
    ranked by it, ties by offer_id (`scoring.top_k`); the first k form the top-k.
Metrics (`training.metrics`) at each k are averaged over the members of each slice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp

from perkrank.models import scoring, value
from perkrank.models.factors import Factors
from perkrank.training.metrics import (
    average_precision_at_k,
    catalog_coverage,
    hit_rate_at_k,
    local_share_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
)
from perkrank.training.window import RESTRICTIONS, EvaluationWindow, Slice

BATCH_MEMBERS = 4096
"""Members scored and ranked at once: every members × offers array (scores, relevance, the
second stage's scores) is one block's, never the window's; a model's member vectors too."""


@dataclass(frozen=True)
class Ranking:
    """Every member's top offers within one restriction."""

    offer_rows: np.ndarray
    """int (members × top_k): window offer rows, best first; -1 where fewer candidates."""
    hits: np.ndarray
    """bool (members × top_k): the offer at that position is relevant."""
    relevant_counts: np.ndarray
    """int (members,): relevant offers within the restriction."""


ScoreBatch = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""Scores (len(member rows) × len(offer rows)) of window members over window offers."""


def rank_window(
    window: EvaluationWindow,
    factors: Factors,
    top_k: int,
    calibration: value.Calibration = value.IDENTITY,
    adjustments: np.ndarray | None = None,
    restrictions: Sequence[str] = RESTRICTIONS,
) -> dict[str, Ranking]:
    """Every member's top-k offers under each restriction (see RESTRICTIONS), ranked by
    `value.final_scores` (`adjustments`: each window offer's value term, as serving adds it;
    None with `IDENTITY`: by the model's score alone)."""
    scorer = window_scorer(window, factors)

    def score_batch(rows: np.ndarray, offers: np.ndarray) -> np.ndarray:
        return value.final_scores(
            scorer.scores(rows, offers),
            calibration,
            None if adjustments is None else adjustments[offers],
        )

    return rank_scores(window, score_batch, top_k, restrictions)


def rank_scores(
    window: EvaluationWindow,
    score_batch: ScoreBatch,
    top_k: int,
    restrictions: Sequence[str] = RESTRICTIONS,
) -> dict[str, Ranking]:
    """`rank_window` for any scores: `score_batch(member rows, offer rows)`, higher first; only
    the given `restrictions` are ranked. Called with one group's offers and at most
    `BATCH_MEMBERS` of its members at a time; what is kept per member is its top-k."""
    n_members = len(window.member_ids)
    rankings = {
        restriction: Ranking(
            offer_rows=np.full((n_members, top_k), -1, dtype=np.int32),
            hits=np.zeros((n_members, top_k), dtype=bool),
            relevant_counts=np.zeros(n_members, dtype=np.int64),
        )
        for restriction in restrictions
    }
    for group in window.groups:
        offers = group.offer_rows
        new_columns = np.flatnonzero(window.offer_is_new[offers])
        for batch in range(0, len(group.member_rows), BATCH_MEMBERS):
            rows = group.member_rows[batch : batch + BATCH_MEMBERS]
            scores = score_batch(rows, offers)
            relevant = window.relevant[rows][:, offers].toarray()
            if "all" in rankings:
                _fill(rankings["all"], rows, offers, scores, relevant, None)
            if "repeat_items" in rankings or "new_items" in rankings:
                bought = window.bought_before[rows][:, offers].toarray()
                for restriction, allowed in (("repeat_items", bought), ("new_items", ~bought)):
                    if restriction in rankings:
                        _fill(rankings[restriction], rows, offers, scores, relevant, allowed)
            if "new_offers" in rankings:
                _fill(
                    rankings["new_offers"],
                    rows,
                    offers[new_columns],
                    scores[:, new_columns],
                    relevant[:, new_columns],
                    None,
                )
    return rankings


def recommend(window: EvaluationWindow, factors: Factors, k: int) -> dict[str, list[str]]:
    """Each evaluated member's top-k candidate offer ids under `factors`."""
    offer_rows = rank_window(window, factors, k)["all"].offer_rows
    return {
        member: [str(window.offer_ids[row]) for row in rows if row >= 0]
        for member, rows in zip(window.member_ids, offer_rows, strict=True)
    }


def model_inputs(
    window: EvaluationWindow, factors: Factors
) -> tuple[np.ndarray, scoring.ItemInputs, sp.csr_matrix | None]:
    """Member vectors, the offers' vectors and biases, and the repeat term (members × offers)."""
    scorer = window_scorer(window, factors)
    every_member = np.arange(len(window.member_ids))
    return scorer.member_vectors(every_member), scorer.offers, scorer.repeat


class WindowScorer(NamedTuple):
    """`models.scoring` of one model over any block of window members and offers."""

    factors: Factors
    window: EvaluationWindow
    offers: scoring.ItemInputs
    """Every window offer's vector, bias and row."""
    repeat: sp.csr_matrix | None
    """The repeat term (members × offers), None without one."""

    def member_vectors(self, rows: np.ndarray) -> np.ndarray:
        """`scoring.member_vectors` of window member `rows`."""
        window = self.window
        features = [window.member_features[row] for row in rows.tolist()]
        return scoring.member_vectors(self.factors, window.member_ids[rows].tolist(), features)

    def scores(self, rows: np.ndarray, offers: np.ndarray) -> np.ndarray:
        """`scoring.batch_scores` (len(rows) × len(offers)) of member rows over offer rows."""
        return scoring.batch_scores(
            self.member_vectors(rows),
            self.offers.vectors[offers],
            self.offers.biases[offers],
            None if self.repeat is None else self.repeat[rows][:, offers].toarray(),
        )


def window_scorer(window: EvaluationWindow, factors: Factors) -> WindowScorer:
    """The offers' inputs and the repeat term of `factors` on `window`; member vectors are
    built block by block (`WindowScorer.member_vectors`)."""
    offers = scoring.item_inputs(factors, window.offer_items, window.offer_item_features)
    repeat = None
    if scoring.has_repeat(factors):
        member_rows = factors.member_rows(window.member_ids)
        repeat = scoring.repeat_matrix(factors, member_rows, offers.rows)
    return WindowScorer(factors, window, offers, repeat)


def _fill(
    ranking: Ranking,
    rows: np.ndarray,
    offers: np.ndarray,
    scores: np.ndarray,
    relevant: np.ndarray,
    allowed: np.ndarray | None,
) -> None:
    """Rank one batch of members over `offers` (only `allowed` ones) into `ranking`."""
    if len(offers) == 0:
        return
    if allowed is not None:
        scores = np.where(allowed, scores, -np.inf)
        relevant = relevant & allowed
    top = scoring.top_k(scores, ranking.offer_rows.shape[1])
    shown = (
        np.take_along_axis(allowed, top, axis=1)
        if allowed is not None
        else np.ones(top.shape, dtype=bool)
    )
    width = top.shape[1]
    ranking.offer_rows[rows, :width] = np.where(shown, offers[top], -1)
    ranking.hits[rows, :width] = np.take_along_axis(relevant, top, axis=1) & shown
    ranking.relevant_counts[rows] = relevant.sum(axis=1)


@dataclass
class ModelReport:
    """One model's metrics per slice (slice → "ndcg@10" → value) and members per slice."""

    name: str
    metrics: dict[str, dict[str, float]]
    members: dict[str, int]
    seconds: float
    member_values: dict[str, np.ndarray] = field(default_factory=dict)
    """"ndcg@10" → value per member of the overall slice (in window order; not serialized)."""
    slice_values: Mapping[str, dict[str, np.ndarray]] = field(default_factory=dict)
    """Slice name → `member_values` of that slice's members (paired comparisons per slice;
    `SliceValues`: computed when read)."""

    def to_dict(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "members": self.members, "metrics": self.metrics}


@dataclass
class EvaluationReport:
    """Several models evaluated on the same window."""

    window: dict[str, Any]
    k_values: tuple[int, ...]
    models: dict[str, ModelReport] = field(default_factory=dict)
    verdict: dict[str, Any] | None = None
    """The served model against the strongest baseline (`training.compare.served_verdict`)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "window": self.window,
            "k_values": list(self.k_values),
            "models": {name: report.to_dict() for name, report in self.models.items()},
            "verdict": self.verdict,
        }


def evaluate_model(
    window: EvaluationWindow, factors: Factors, k_values: Sequence[int], name: str | None = None
) -> ModelReport:
    """Metrics of one model on every non-empty slice of the window."""
    started = time.perf_counter()
    rankings = rank_window(window, factors, max(k_values))
    return _report(window, rankings, k_values, name or factors.name, started)


def evaluate_scores(
    window: EvaluationWindow, score_batch: ScoreBatch, k_values: Sequence[int], name: str
) -> ModelReport:
    """`evaluate_model` for any scores (see `rank_scores`)."""
    started = time.perf_counter()
    rankings = rank_scores(window, score_batch, max(k_values))
    return _report(window, rankings, k_values, name, started)


def _report(
    window: EvaluationWindow,
    rankings: dict[str, Ranking],
    k_values: Sequence[int],
    name: str,
    started: float,
) -> ModelReport:
    k_values = sorted(k_values)
    metrics = {
        part.name: _slice_metrics(rankings[part.restriction], part, k_values, window.offer_is_local)
        for part in window.slices
        if len(part.member_rows) > 0
    }
    slice_values = SliceValues(rankings, window.slices, k_values)
    return ModelReport(
        name=name,
        metrics=metrics,
        members={part.name: len(part.member_rows) for part in window.slices},
        seconds=time.perf_counter() - started,
        member_values=slice_values.get("overall", {}),
        slice_values=slice_values,
    )


class SliceValues(Mapping[str, dict[str, np.ndarray]]):
    """Slice name → `_member_values` of its members, computed when read from each
    restriction's hits and relevant counts: a report keeps those, not one vector per slice,
    metric and k (several times the memory on a large window, for every model)."""

    def __init__(
        self, rankings: Mapping[str, Ranking], slices: Sequence[Slice], k_values: Sequence[int]
    ) -> None:
        self._rankings = {
            restriction: replace(ranking, offer_rows=np.empty((len(ranking.hits), 0), np.int32))
            for restriction, ranking in rankings.items()
        }
        self._slices = {part.name: part for part in slices}
        self._k_values = list(k_values)

    def __getitem__(self, name: str) -> dict[str, np.ndarray]:
        part = self._slices[name]
        return _member_values(self._rankings[part.restriction], part, self._k_values)

    def __contains__(self, name: object) -> bool:
        return name in self._slices

    def __iter__(self) -> Iterator[str]:
        return iter(self._slices)

    def __len__(self) -> int:
        return len(self._slices)


def evaluate_models(
    window: EvaluationWindow, models: Mapping[str, Factors], k_values: Sequence[int]
) -> EvaluationReport:
    """Every model on the same window; `models` maps report names to factors."""
    return EvaluationReport(
        window=window.summary(),
        k_values=tuple(sorted(k_values)),
        models={
            name: evaluate_model(window, factors, k_values, name)
            for name, factors in models.items()
        },
    )


def overall_metrics(
    window: EvaluationWindow, score_batch: ScoreBatch, k_values: Sequence[int]
) -> dict[str, float]:
    """The overall slice's metrics of any scores (`rank_scores`), ranking only the unrestricted
    candidates: what a blend weight search compares, at a quarter of `evaluate_scores`' work."""
    k_values = sorted(k_values)
    ranking = rank_scores(window, score_batch, max(k_values), ("all",))["all"]
    overall = next(part for part in window.slices if part.name == "overall")
    return _slice_metrics(ranking, overall, k_values, window.offer_is_local)


def _member_values(ranking: Ranking, part: Slice, k_values: Sequence[int]) -> dict[str, np.ndarray]:
    """NDCG and recall at each k, per member of `part` (for `training.compare`)."""
    hits = ranking.hits[part.member_rows]
    counts = ranking.relevant_counts[part.member_rows]
    values: dict[str, np.ndarray] = {}
    for k in k_values:
        values[f"ndcg@{k}"] = ndcg_at_k(hits, counts, k)
        values[f"recall@{k}"] = recall_at_k(hits, counts, k)
    return values


def _slice_metrics(
    ranking: Ranking,
    part: Slice,
    k_values: Sequence[int],
    offer_is_local: np.ndarray | None = None,
) -> dict[str, float]:
    """Every metric at every k over `part`'s members (local_share@k with `offer_is_local`)."""
    hits = ranking.hits[part.member_rows]
    counts = ranking.relevant_counts[part.member_rows]
    offer_rows = ranking.offer_rows[part.member_rows]
    values: dict[str, float] = {}
    for k in k_values:
        values[f"precision@{k}"] = float(precision_at_k(hits, k).mean())
        values[f"recall@{k}"] = float(recall_at_k(hits, counts, k).mean())
        values[f"ndcg@{k}"] = float(ndcg_at_k(hits, counts, k).mean())
        values[f"map@{k}"] = float(average_precision_at_k(hits, counts, k).mean())
        values[f"hit_rate@{k}"] = float(hit_rate_at_k(hits, k).mean())
        values[f"coverage@{k}"] = catalog_coverage(offer_rows, k, part.candidate_offers)
        if offer_is_local is not None:
            share = local_share_at_k(offer_rows, k, offer_is_local)
            values[f"local_share@{k}"] = float(share.mean())
    return values
