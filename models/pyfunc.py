"""A bundle as an MLflow pyfunc model: one ranker score per (member, offer) row.

Scored by `models.scoring`, like evaluation and serving: a member the ranker never saw is
named by `cold_member_feature_names` of its region, tier and tenure, an offer of an item the
ranker never saw by its partner, category and scope. With a bundle's second stage, the rows
of one member the stage ranks are that member's eligible offers: they are ordered by
`models.second_stage.member_scores` as serving orders a request's offers, and the rows of a
member it does not rank by the fallback (regional popularity), as serving does. With a
bundle's coupon stage (`models.coupon_stage`), the input also names each row's `offer_id`, and
the rows of a member the stage knows are scored by `CouponStage.member_scores`, as serving
orders that member's offers.
"""

from __future__ import annotations

from typing import Any

import mlflow
import numpy as np
import pandas as pd

from perkrank.features.columns import Columns
from perkrank.features.vocabulary import (
    cold_member_feature_names,
    item_feature_names,
    item_id,
    member_feature_names,
)
from perkrank.models import scoring
from perkrank.models.bundle import Bundle
from perkrank.models.coupon_stage import CouponStage
from perkrank.models.factors import Factors
from perkrank.models.second_stage import SecondStage, member_scores

BUNDLE_ARTIFACT = "bundle"
TENURE_DAYS = "tenure_days"
"""Input column: days since the member signed up, at the moment scored (0: unknown)."""
EXAMPLE_INPUT: dict[str, list[Any]] = {
    Columns.member_id: ["M000001", "new-member"],
    Columns.region: ["north", "south"],
    Columns.tier: ["gold", "base"],
    TENURE_DAYS: [400.0, 0.0],
    Columns.partner_id: ["P0001", "P0002"],
    Columns.category: ["Food", "Travel"],
    Columns.scope: ["federal", "local"],
}
"""A few rows of the model's input (logged as its input example)."""
INPUT_COLUMNS = tuple(EXAMPLE_INPUT)
"""Member id, region, tier, tenure in days, partner id, category, scope."""
OFFER_ID = Columns.offer_id
"""The input column a bundle with a coupon stage also needs."""
MODEL_CODE = """\
import mlflow

from perkrank.models.pyfunc import BundleModel

mlflow.models.set_model(BundleModel())
"""
"""The model is logged as this code ("models from code"), not as a pickle."""


class BundleModel(mlflow.pyfunc.PythonModel):
    """The ranker of the bundle the model was logged with; input columns `INPUT_COLUMNS`."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        """Read the bundle the model was logged with."""
        self.bundle = Bundle.load(context.artifacts[BUNDLE_ARTIFACT])

    def predict(
        self,
        context: mlflow.pyfunc.PythonModelContext,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> np.ndarray:
        """Ranker scores of the input rows."""
        bundle = self.bundle
        return score_rows(
            bundle.ranker, model_input, bundle.second_stage, bundle.fallback, bundle.coupon_stage
        )


def example_input(bundle: Bundle) -> pd.DataFrame:
    """`EXAMPLE_INPUT`, with two of the coupon stage's offer ids when the bundle has one."""
    frame = pd.DataFrame(EXAMPLE_INPUT)
    if bundle.coupon_stage is not None:
        frame[OFFER_ID] = [str(offer) for offer in bundle.coupon_stage.stats.offer_ids[:2]]
    return frame


def score_rows(
    ranker: Factors,
    rows: pd.DataFrame,
    second_stage: SecondStage | None = None,
    fallback: Factors | None = None,
    coupon_stage: CouponStage | None = None,
) -> np.ndarray:
    """Scores of (member, offer) rows with the columns `INPUT_COLUMNS`, one per row (float64
    with a second or coupon stage, else float32). With `second_stage`, the members it does not
    rank are scored by `fallback` for their region and tier, as serving orders them; with
    `coupon_stage` (the rows also need `OFFER_ID`), the members it knows by the stage."""
    if second_stage is not None and fallback is None:
        raise ValueError("a second stage needs the fallback for the members it does not rank")
    if coupon_stage is not None and OFFER_ID not in rows.columns:
        raise ValueError(f"a bundle with a coupon stage needs the input column {OFFER_ID!r}")
    staged = second_stage is not None or coupon_stage is not None
    records = rows[list(INPUT_COLUMNS)]
    offer_columns = (Columns.partner_id, Columns.category, Columns.scope)
    offers = [records[column].astype(str).tolist() for column in offer_columns]
    item_ids = [item_id(partner, category) for partner, category, _ in zip(*offers, strict=True)]
    feature_names = [item_feature_names(*names) for names in zip(*offers, strict=True)]
    items = scoring.item_inputs(ranker, item_ids, feature_names)
    members = pd.DataFrame(
        {
            Columns.member_id: records[Columns.member_id].astype(str),
            Columns.region: records[Columns.region].astype(str),
            Columns.tier: records[Columns.tier].astype(str),
            TENURE_DAYS: records[TENURE_DAYS].astype(float),
        }
    )
    result = np.zeros(len(records), dtype=np.float64 if staged else np.float32)
    for (member_id, region, tier, tenure_days), positions in members.groupby(
        list(members)
    ).indices.items():
        if coupon_stage is not None and coupon_stage.member_row(member_id) is not None:
            offer_ids = rows[OFFER_ID].iloc[positions].astype(str).tolist()
            zeros = np.zeros(len(positions))
            result[positions] = coupon_stage.member_scores(member_id, offer_ids, zeros)
            continue
        stats_row = None if second_stage is None else second_stage.member_row(member_id)
        if second_stage is not None and (stats_row is None or ranker.member_row(member_id) is None):
            inputs = [[item_ids[p] for p in positions], [feature_names[p] for p in positions]]
            result[positions] = _fallback_scores(fallback, region, tier, *inputs)
            continue
        names = cold_member_feature_names(region, tier, tenure_days)
        vector = scoring.member_vector(ranker, member_id, names)
        repeat = scoring.repeat_scores(ranker, ranker.member_row(member_id), items.rows[positions])
        scores = scoring.scores(vector, items.vectors[positions], items.biases[positions], repeat)
        if stats_row is not None:
            item_rows = second_stage.item_rows([item_ids[p] for p in positions])
            flags = second_stage.segment_flags(item_rows, region)
            scores = member_scores(second_stage, stats_row, item_rows, flags, scores)
        result[positions] = scores
    return result


def _fallback_scores(
    fallback: Factors, region: str, tier: str, item_ids: list[str], feature_names: list[list[str]]
) -> np.ndarray:
    """The fallback's scores of items for a member of `region` and `tier`."""
    items = scoring.item_inputs(fallback, item_ids, feature_names)
    vector = scoring.member_vector(fallback, None, member_feature_names(region, tier))
    return scoring.scores(vector, items.vectors, items.biases)
