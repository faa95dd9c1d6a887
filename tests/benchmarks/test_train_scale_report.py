"""The training-at-scale benchmark's report on hand-made stage records: the LightFM fits' span
(first start to last end, overlapping fits counted once in the span) and the stage table."""

from benchmarks.train_scale import lightfm_span, markdown


def stage(title: str, start: float | None, wall: float | None) -> dict:
    record = {"title": title, "wall_s": wall, "cpu_s": wall, "peak_rss_gib": 1.0}
    return record if start is None else record | {"start_s": start}


def test_span_runs_from_the_first_lightfm_start_to_the_last_end():
    stages = [
        stage("validate data", 0.0, 40.0),
        stage("fit lightfm before 2025-11-01", 50.0, 100.0),
        stage("fit lightfm before 2025-12-01", 60.0, 120.0),  # beside the first
        stage("fit als before 2025-11-01", 50.0, 300.0),
        stage("fit lightfm before 2026-01-01", 200.0, 90.0),
    ]
    assert lightfm_span(stages) == {
        "fits": 3,
        "wall_s": 310.0,
        "first_start_s": 50.0,
        "last_end_s": 290.0,
        "span_s": 240.0,
    }


def test_no_span_without_a_finished_fit_or_without_starts():
    assert lightfm_span([stage("fit lightfm before 2025-11-01", 5.0, None)]) is None
    assert lightfm_span([stage("fit lightfm before 2025-11-01", None, 9.0)]) is None


def test_a_stopped_run_shows_each_stage_with_its_start():
    command = {"wall_s": 0, "cpu_s": 0, "peak_rss_gib": 2.0}
    result = {
        "members": 1000,
        "months": 12,
        "machine": {"cpus": 2, "memory_gib": 8.0, "load_average": [1.0, 1.0, 1.0]},
        "floor_sort_20m_s": {"before": {"wall": 0.3, "cpu": 0.3}},
        "commands": {
            "generate": command | {"stages": []},
            "train": command
            | {
                "stages": [
                    stage("fit lightfm before 2025-11-01", 12.0, 30.5),
                    stage("fit lightfm before 2025-12-01", 14.0, None),
                ]
            },
        },
    }
    text = markdown(result)
    assert "stopped during or after “fit lightfm before 2025-12-01”" in text
    assert "| train | fit lightfm before 2025-11-01 | 12 | 30.5 | 30.5 | 1.00 |" in text
    assert "| train | fit lightfm before 2025-12-01 | 14 | – | – | 1.00 |" in text
    assert "LightFM fits of `train`: 1, 30 s of wall in all, from 12 s to 42 s" in text
