"""The fit plan holds every cutoff the pipeline waits on, the ranker's label windows included."""

from datetime import date, timedelta

from perkrank.config import CONFIG_DIR, TrainConfig, load_config
from perkrank.training.split import FALLBACK, SplitDates, fit_plan

DATES = SplitDates(date(2011, 6, 1), date(2011, 9, 1), date(2011, 12, 10))
SERVED_UNTIL = date(2011, 12, 10)


def config_with(**ranker: int) -> TrainConfig:
    config = load_config(TrainConfig, CONFIG_DIR / "train.yaml")
    return config.model_copy(update={"ranker": config.ranker.model_copy(update=ranker)})


def test_short_label_windows_add_their_starts_with_the_blended_components():
    config = config_with(snapshots=2, snapshot_step_days=31, label_days=31)
    plan = fit_plan(DATES, SERVED_UNTIL, config)
    blended = list(config.blend.weights)
    august, july = DATES.test_start - timedelta(days=31), DATES.test_start - timedelta(days=62)
    assert list(plan) == [DATES.validation_start, august, july, DATES.test_start, SERVED_UNTIL]
    assert plan[august] == plan[july] == plan[DATES.validation_start] == blended
    assert plan[DATES.test_start] is None
    assert plan[SERVED_UNTIL] == [*blended, FALLBACK]


def test_the_default_label_window_is_the_validation_window():
    plan = fit_plan(DATES, SERVED_UNTIL, config_with(snapshots=2, snapshot_step_days=31))
    assert list(plan) == [
        DATES.validation_start,
        DATES.validation_start - timedelta(days=31),
        DATES.test_start,
        SERVED_UNTIL,
    ]
