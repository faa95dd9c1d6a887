"""Cap windows: the bucket label and the seconds left, for calendar and fixed windows (UTC)."""

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perkrank.serving.domain.windows import Bucket, current_bucket


def at(*parts: float) -> float:
    """Unix seconds of a UTC date and time."""
    return datetime(*(int(part) for part in parts), tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("window", "now", "label", "ttl_seconds"),
    [
        # Friday 2024-05-17 13:45 UTC.
        ("day", at(2024, 5, 17, 13, 45), "2024-05-17", 10 * 3600 + 15 * 60),
        ("week", at(2024, 5, 17, 13, 45), "2024-W20", 2 * 86400 + 10 * 3600 + 15 * 60),
        ("month", at(2024, 5, 17, 13, 45), "2024-05", 14 * 86400 + 10 * 3600 + 15 * 60),
        ("total", at(2024, 5, 17, 13, 45), "total", None),
        # A bucket starts exactly at its boundary and lasts the whole window.
        ("day", at(2024, 5, 18), "2024-05-18", 86400),
        ("week", at(2024, 5, 20), "2024-W21", 7 * 86400),
        ("month", at(2024, 6, 1), "2024-06", 30 * 86400),
        # Leap day; December rolls over into January.
        ("day", at(2024, 2, 29, 6), "2024-02-29", 18 * 3600),
        ("month", at(2024, 2, 29, 6), "2024-02", 18 * 3600),
        ("month", at(2024, 12, 31, 12), "2024-12", 12 * 3600),
        # ISO weeks: Tuesday 2024-12-31 is in 2025-W01; Sunday 2021-01-03 in 2020-W53.
        ("week", at(2024, 12, 31, 12), "2025-W01", 5 * 86400 + 12 * 3600),
        ("week", at(2021, 1, 3, 23), "2020-W53", 3600),
        # Fractions of a second round the time left up, never down to zero.
        ("day", at(2024, 5, 17, 23, 59, 59) + 0.5, "2024-05-17", 1),
        # Fixed windows in seconds count buckets from the Unix epoch.
        (3600, 7200.0, "3600s-2", 3600),
        (3600, 7199.5, "3600s-1", 1),
        (900, 1000.0, "900s-1", 800),
        (86400, at(2024, 5, 17, 13, 45), "86400s-19860", 10 * 3600 + 15 * 60),
    ],
)
def test_bucket_label_and_seconds_left(window, now, label, ttl_seconds):
    assert current_bucket(window, now) == Bucket(label, ttl_seconds)


@settings(max_examples=200, deadline=None)
@given(
    window=st.sampled_from(["day", "week", "month", 1, 60, 3600, 7 * 86400]),
    now=st.floats(min_value=0, max_value=4e9, allow_nan=False),
)
def test_bucket_ends_exactly_when_its_seconds_run_out(window, now):
    bucket = current_bucket(window, now)
    assert bucket.ttl_seconds is not None and bucket.ttl_seconds >= 1
    assert current_bucket(window, now + bucket.ttl_seconds - 1).label == bucket.label
    assert current_bucket(window, now + bucket.ttl_seconds).label != bucket.label


def test_total_window_never_changes_bucket():
    assert current_bucket("total", 0.0) == current_bucket("total", at(2090, 1, 1))
