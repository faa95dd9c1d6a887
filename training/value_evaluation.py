"""Value beside relevance: calibration on a window, value per list, the λ trade-off curve.

Calibration: the served ranker's scores of every (member, candidate offer) pair of a window
(validation, before the test window) against whether the member then redeemed it (a relevant
offer, `training.window`), fitted by `models.value.fit_platt` on a seeded sample of pairs.

Value per list, over the members of the overall slice and the top k of each list ranked by
`models.value.final_scores` (the ranking key serving uses):
    expected_value@k  Σ p_calibrated(member, offer) · net value(offer): what the program expects
                      to earn from the list;
    value@k           Σ net value of the relevant offers in it: what it did earn in the window.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from perkrank.features.columns import Columns
from perkrank.models import value
from perkrank.models.factors import Factors
from perkrank.training import evaluation
from perkrank.training.evaluation import ModelReport, Ranking, rank_window, window_scorer
from perkrank.training.metrics import ndcg_at_k
from perkrank.training.window import EvaluationWindow

CALIBRATION_PAIRS = 200_000
"""About how many (member, offer) pairs a calibration is fitted on (a seeded sample of each
group's pairs when the window holds more)."""
TRADEOFF_WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
"""The `value_weight`s of the trade-off curve."""


def offer_net_values(offers: pd.DataFrame, offer_ids: Sequence[str] | None = None) -> np.ndarray:
    """partner_funding − reward_cost of each of `offer_ids` (None: every offer of the table; 0
    where the columns are absent or empty), from a validated offers table."""
    table = offers.set_index(Columns.offer_id)
    columns = {}
    for column in (Columns.reward_cost, Columns.partner_funding):
        present = column in table
        columns[column] = table[column] if present else pd.Series(0.0, index=table.index)
    net = value.net_values(
        columns[Columns.reward_cost].astype(float).to_numpy(),
        columns[Columns.partner_funding].astype(float).to_numpy(),
    )
    if offer_ids is None:
        return net
    return pd.Series(net, index=table.index).reindex(list(offer_ids)).fillna(0.0).to_numpy()


def fit_window_calibration(
    window: EvaluationWindow, factors: Factors, seed: int = 0, most: int = CALIBRATION_PAIRS
) -> value.Calibration:
    """Platt scaling of `factors`' scores to the window's redemptions (see the module doc)."""
    scorer = window_scorer(window, factors)
    total = sum(len(group.member_rows) * len(group.offer_rows) for group in window.groups)
    share = min(1.0, most / max(total, 1))
    rng = np.random.default_rng(seed)
    scores, outcomes = [], []
    for group in window.groups:
        rows, columns = group.member_rows, group.offer_rows
        batch = scorer.scores(rows, columns).ravel()
        relevant = window.relevant[rows][:, columns].toarray().ravel()
        kept = rng.random(len(batch)) < share if share < 1 else slice(None)
        scores.append(batch[kept])
        outcomes.append(relevant[kept])
    all_scores, all_outcomes = np.concatenate(scores), np.concatenate(outcomes)
    return value.fit_platt(all_scores, all_outcomes)


def list_values(
    window: EvaluationWindow,
    factors: Factors,
    ranking: Ranking,
    calibration: value.Calibration,
    net: np.ndarray,
    k: int,
) -> dict[str, float]:
    """expected_value@k and value@k of `ranking` (the "all" restriction) averaged over the
    overall slice's members."""
    members = next(part for part in window.slices if part.name == "overall").member_rows
    if len(members) == 0:
        return {f"expected_value@{k}": 0.0, f"value@{k}": 0.0}
    scorer = window_scorer(window, factors)
    expected, realized = [], []
    for start in range(0, len(members), evaluation.BATCH_MEMBERS):
        rows = members[start : start + evaluation.BATCH_MEMBERS]
        top = ranking.offer_rows[rows, :k]
        shown = top >= 0
        safe = np.where(shown, top, 0)
        raw = np.einsum("md,mkd->mk", scorer.member_vectors(rows), scorer.offers.vectors[safe])
        raw = raw + scorer.offers.biases[safe]
        if scorer.repeat is not None:
            raw = raw + np.asarray(scorer.repeat[rows[:, None], safe].todense())
        probabilities = calibration.probabilities(raw)
        expected.append(np.where(shown, probabilities * net[safe], 0.0).sum(axis=1))
        realized.append(np.where(shown & ranking.hits[rows, :k], net[safe], 0.0).sum(axis=1))
    return {
        f"expected_value@{k}": float(np.concatenate(expected).mean()),
        f"value@{k}": float(np.concatenate(realized).mean()),
    }


def add_value_metrics(
    report: ModelReport,
    window: EvaluationWindow,
    factors: Factors,
    calibration: value.Calibration,
    offers: pd.DataFrame,
    k: int,
) -> None:
    """Add `list_values` of `factors`' lists (ranked by relevance, value_weight 0) to the
    overall metrics of `report` (`offers`: the validated offers table)."""
    ranking = rank_window(window, factors, k, calibration, None, ("all",))["all"]
    net = offer_net_values(offers, window.offer_ids.tolist())
    report.metrics.setdefault("overall", {}).update(
        list_values(window, factors, ranking, calibration, net, k)
    )


def value_tradeoff(
    window: EvaluationWindow,
    factors: Factors,
    calibration: value.Calibration,
    net: np.ndarray,
    scale: float,
    k: int,
    weights: Sequence[float] = TRADEOFF_WEIGHTS,
) -> list[dict[str, Any]]:
    """NDCG@k, expected_value@k and value@k of the lists ranked at each `value_weight` (`net`:
    each window offer's net value; `scale`: the catalog's `value.value_scale`)."""
    members = next(part for part in window.slices if part.name == "overall").member_rows
    curve = []
    for weight in weights:
        adjustments = value.value_terms(net, weight, scale)
        ranking = rank_window(window, factors, k, calibration, adjustments, ("all",))["all"]
        hits, counts = ranking.hits[members], ranking.relevant_counts[members]
        point: dict[str, Any] = {
            "value_weight": weight,
            f"ndcg@{k}": float(ndcg_at_k(hits, counts, k).mean()),
        }
        point |= list_values(window, factors, ranking, calibration, net, k)
        curve.append(point)
    return curve
