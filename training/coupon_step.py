"""`perkrank train`'s coupon stage: with `coupons.source` (a directory of Complete Journey raw
files, the importer's input), each offer group's coupon ranker is chosen by rolling-origin
cross-validation over the campaigns starting before the served cutoff, refitted on all of them
(`training.coupon_ranker.fit_rankers`, as the benchmark fits its own), and served with the
arrays as of the cutoff (`training.coupon_stats`). The offer ids are the importer's
("C<campaign>-<upc>"), so a bundle trained on the imported data serves the stage for its
campaigns' offers."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from perkrank.features.complete_journey import (
    RAW_FILES,
    coupon_tables,
    missing_raw_files,
    read_raw,
)
from perkrank.models.coupon_stage import CouponStage
from perkrank.progress import report, step
from perkrank.training import coupon_evaluation as ce
from perkrank.training import coupon_ranker as cr
from perkrank.training.lineage import file_sha256

METRIC_PREFIX = "coupon_stage."


class CouponSourceError(ValueError):
    """`coupons.source` cannot train a coupon stage (the message names the source)."""


def served_coupon_stage(source: Path, cutoff: date) -> tuple[CouponStage, dict[str, Any]]:
    """The stage for a bundle cut at `cutoff`, and its summary (the raw files' SHA-256, each
    group's choice and validation NDCG@10). `CouponSourceError` when a raw file is missing or
    no household redeemed before the cutoff."""
    source = Path(source)
    if missing := missing_raw_files(source):
        raise CouponSourceError(f"coupons.source {source}: missing {', '.join(missing)}")
    moment = pd.Timestamp(cutoff)
    with step(f"choose and fit the coupon rankers on the campaigns of {source} before {cutoff}"):
        tables = coupon_tables(read_raw(source))
        index = ce.coupon_index(tables)
        try:
            fitted = cr.fit_rankers(tables, index, moment)
        except ValueError as error:
            raise CouponSourceError(f"coupons.source {source}: {error}") from error
        stage = cr.campaign_stage(tables, index, moment, fitted.rankers)
    choices = {
        group: {
            "features": list(choice.features),
            "l2": choice.l2,
            "fit_on": choice.fit_on,
            "validation_ndcg@10": choice.score if np.isfinite(choice.score) else None,
        }
        for group, choice in fitted.choices.items()
    }
    for group, choice in choices.items():
        report(f"{group}: {choice}")
    files = {name: file_sha256(source / name) for name in sorted(RAW_FILES.values())}
    summary = {"source": str(source.resolve()), "files": files, "groups": choices}
    return stage, summary


def coupon_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """MLflow metrics of a summary: each group's cross-validated NDCG@10 (where it had folds)."""
    return {
        f"{METRIC_PREFIX}{group.replace(' ', '_').replace('/', '')}.validation_ndcg@10": value
        for group, choice in summary["groups"].items()
        if (value := choice["validation_ndcg@10"]) is not None
    }
