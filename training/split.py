"""The time split of `perkrank train` (`training.pipeline`): the validation and test windows,
and the components each cutoff fits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from perkrank.config import TrainConfig
from perkrank.features.columns import Columns
from perkrank.features.dataset import Dataset
from perkrank.training import ranker_step

FALLBACK = "regional_popularity"
"""The served bundle's fallback component."""


@dataclass(frozen=True)
class SplitDates:
    """The three boundaries of the time split."""

    validation_start: date
    test_start: date
    test_end: date


def split_dates(dataset: Dataset, config: TrainConfig) -> SplitDates:
    """The validation and test windows (see `training.pipeline`).

    Without `split.test_start`, the test window starts on the first day of the month in which
    the last `test_days` of purchases begin (catalogs rotate monthly, so the window holds a
    whole catalog's new offers) and runs to the last purchase.
    """
    last_day = dataset.purchases[Columns.ts].max().date()
    if config.split.test_start is not None:
        test_start = config.split.test_start
        test_end = test_start + timedelta(days=config.split.test_days)
    else:
        test_start = (last_day - timedelta(days=config.split.test_days - 1)).replace(day=1)
        test_end = last_day + timedelta(days=1)
    return SplitDates(
        validation_start=test_start - timedelta(days=config.split.validation_days),
        test_start=test_start,
        test_end=test_end,
    )


def fit_plan(
    dates: SplitDates, served_until: date, config: TrainConfig
) -> dict[date, list[str] | None]:
    """The components each cutoff needs (None: all): the blended ones to choose the weights
    and fit the second stage (also at its earlier snapshots' starts), all of them to
    evaluate, the blended ones and the fallback to serve."""
    blended = list(config.blend.weights)
    plan: dict[date, list[str] | None] = {dates.validation_start: blended}
    for cutoff in ranker_step.snapshot_cutoffs(dates.validation_start, config.ranker):
        plan[cutoff] = blended
    plan[dates.test_start] = None
    plan.setdefault(served_until, [*blended, FALLBACK])
    return plan


def split_record(dates: SplitDates) -> dict[str, str]:
    return {
        "validation_start": dates.validation_start.isoformat(),
        "test_start": dates.test_start.isoformat(),
        "test_end": dates.test_end.isoformat(),
    }
