"""The second stage's scores on an evaluation window, one block of members at a time.

The order serving gives (`models.second_stage`): a window member whose purchases the
statistics know and whom the blend knows gets `member_scores` over the offers of their group
(from the blend's scores of those offers); every other member gets the fallback's scores.
`evaluation.rank_scores` asks for one block of members of one group at a time, so no array is
ever members × offers for the whole window; each block's values are those of
`candidates.model_scores` (float32) of the blend and the fallback at the same cells.
"""

from __future__ import annotations

import numpy as np

from perkrank.models.factors import Factors
from perkrank.models.second_stage import SecondStage, member_scores
from perkrank.training.evaluation import ScoreBatch, window_scorer
from perkrank.training.window import EvaluationWindow


def ranked_rows(window: EvaluationWindow, blend: Factors, stage: SecondStage) -> np.ndarray:
    """int (window members,): each member's row in the stage's statistics if the second stage
    ranks them (they bought something before its cutoff and the blend knows them), else -1."""
    rows = stage.members.rows(window.member_ids)
    warm = rows >= 0
    warm[warm] = stage.stats.member_purchases[rows[warm]] > 0
    ranked = warm & (blend.member_rows(window.member_ids) >= 0)
    return np.where(ranked, rows, -1)


def stage_score_batch(
    window: EvaluationWindow, blend: Factors, fallback: Factors, stage: SecondStage
) -> ScoreBatch:
    """float64 scores (member rows × offer rows): the second stage's, the fallback's for the
    members it does not rank. The offers of one call are those of one window group."""
    blend_scorer, fallback_scorer = window_scorer(window, blend), window_scorer(window, fallback)
    stats_rows = ranked_rows(window, blend, stage)

    def score_batch(rows: np.ndarray, offers: np.ndarray) -> np.ndarray:
        scores = fallback_scorer.scores(rows, offers).astype(np.float32).astype(np.float64)
        chosen = np.flatnonzero(stats_rows[rows] >= 0)
        if len(chosen) == 0:
            return scores
        blend_scores = blend_scorer.scores(rows[chosen], offers).astype(np.float32)
        item_rows = stage.item_rows(window.offer_items[offers])
        flags: dict[str, np.ndarray] = {}
        for index, position in enumerate(chosen.tolist()):
            row = rows[position]
            region = str(window.member_regions[row])
            if region not in flags:
                flags[region] = stage.segment_flags(item_rows, region)
            scores[position] = member_scores(
                stage, int(stats_rows[row]), item_rows, flags[region], blend_scores[index]
            )
        return scores

    return score_batch
