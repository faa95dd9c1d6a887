"""The load benchmark's pure logic on hand-made inputs: merging the generators' raw results
into a run's summary, the verdict on each target, and a table row."""

import pytest

from benchmarks.serve_load.cpu_ratio import ratio_section, ratio_summary
from benchmarks.serve_load.report import cpu_ratios, table_row, verdicts
from benchmarks.serve_load.run import summarize
from benchmarks.swap_p99 import outside_p99, window_p99

ONE_K = "p99 <= 2 ms at 1,000 req/s"
TWO_AND_A_HALF_K = ">= 2,500 req/s with p99 <= 10 ms"


def run(target: float, achieved: float, p99_ms: float | None, errors: int = 0) -> dict:
    return {"target_rate": target, "achieved_rate": achieved, "p99_ms": p99_ms, "errors": errors}


def part(latencies: list[float], measure_seconds: float, errors: dict[str, int]) -> dict:
    """One generator's raw result; as many requests went out in its warm-up as measured."""
    measured = len(latencies) + sum(errors.values())
    return {
        "latencies": latencies,
        "send_lags": [0.0] * len(latencies),
        "errors": errors,
        "measured": measured,
        "responses": 2 * len(latencies),
        "measure_seconds": measure_seconds,
    }


def test_summarize_merges_the_generators() -> None:
    parts = [
        part([0.001, 0.002, 0.003], 2.0, {"HTTP 503": 1}),
        part([0.004], 1.0, {"HTTP 503": 2, "timeout": 1}),
    ]
    cpu = {"server": 0.016, "redis": 0.008}

    summary = summarize(4.0, parts, cpu, wall=0.01)

    assert summary["target_rate"] == 4.0
    assert summary["ok"] == 4
    assert summary["requests"] == 8  # 4 answered + 4 errors
    assert summary["achieved_rate"] == 2.0  # 4 answers over the longest window, 2 s
    assert summary["errors"] == 4
    assert summary["error_kinds"] == {"HTTP 503": 3, "timeout": 1}
    assert summary["p50_ms"] == pytest.approx(2.5)
    assert summary["max_ms"] == pytest.approx(4.0)
    # over the 8 responses of the whole run (warm-up included), not the 16 requests sent
    assert summary["cpu_ms_per_request"] == {"server": 2.0, "redis": 1.0}
    assert summary["cores_busy"] == {"server": 1.6, "redis": 0.8}  # CPU seconds / wall


def test_summarize_without_answers_has_no_latencies() -> None:
    summary = summarize(10.0, [part([], 1.0, {"connection lost": 5})], {"server": 0.0}, 1.0)

    assert summary["ok"] == 0
    assert summary["achieved_rate"] == 0.0
    assert summary["p50_ms"] is summary["p99_ms"] is summary["max_ms"] is None


def test_targets_met_by_a_fast_clean_run() -> None:
    targets = verdicts([run(1000, 1000, 1.5), run(2500, 2490, 9.0)])

    assert targets == {ONE_K: True, TWO_AND_A_HALF_K: True}


@pytest.mark.parametrize(
    "result",
    [
        run(1000, 1000, 2.5),  # too slow
        run(1000, 1000, 1.5, errors=1),  # an error
        run(1000, 850, 1.5),  # below 90% of the target rate
        run(1000, 1000, None),  # nothing answered
    ],
)
def test_target_not_met(result: dict) -> None:
    assert verdicts([result])[ONE_K] is False


def test_a_higher_rate_counts_for_a_lower_target() -> None:
    assert verdicts([run(500, 500, 3.0), run(1500, 1500, 1.9)])[ONE_K] is True


def test_a_ramp_that_saturated_below_a_target_does_not_meet_it() -> None:
    targets = verdicts([run(1000, 1000, 1.0), run(2000, 1500, 200.0)])

    assert targets[ONE_K] is True
    assert targets[TWO_AND_A_HALF_K] is False


def test_nothing_measured() -> None:
    assert verdicts([]) == {ONE_K: None, TWO_AND_A_HALF_K: None}


def test_table_row_names_the_error_kinds() -> None:
    result = run(2000, 1695.4, 292.34, errors=3) | {
        "requests": 20000,
        "error_kinds": {"timeout": 1, "HTTP 503": 2},
        "p50_ms": 224.03,
        "p95_ms": 281.94,
        "max_ms": 300.35,
        "cpu_ms_per_request": {"server": 0.503, "redis": 0.196, "load generators": 0.143},
        "cores_busy": {"server": 0.85, "redis": 0.33, "load generators": 0.46},
    }

    assert table_row(result) == (
        "| 2000 | 1695 | 20000 | 3 (HTTP 503: 2, timeout: 1) | 224.03 | 281.94 | 292.34 | "
        "300.35 | 0.503 / 0.196 / 0.143 | 1.64 |"
    )


def cpu_run(rate: float, server_ms: float) -> dict:
    return {"target_rate": rate, "cpu_ms_per_request": {"server": server_ms}}


def test_cpu_ratio_is_offers_over_floor_at_the_rates_both_ran() -> None:
    results = [cpu_run(500, 0.9), cpu_run(1000, 0.6), cpu_run(2500, 0.45)]
    floor = [cpu_run(1000, 0.4), cpu_run(2500, 0.3)]

    ratios = cpu_ratios(results, floor)

    assert [(r["rate"], r["ratio"]) for r in ratios] == [(1000, 1.5), (2500, 1.5)]
    assert cpu_ratios(results, []) == []


def test_swap_window_p99_counts_requests_scheduled_in_the_window_only() -> None:
    parts = [
        {"latencies": [0.001] * 200 + [0.5], "scheduled": [10.0] * 200 + [10.5]},
        {"latencies": [0.9], "scheduled": [20.0]},
    ]

    p99, count = window_p99(parts, start=10.2, end=10.3)  # widened to one second

    assert count == 1 and p99 == 500.0
    assert window_p99(parts, start=30.0, end=30.0) == (None, 0)


def test_p99_outside_the_windows_leaves_their_requests_out() -> None:
    parts = [{"latencies": [0.001] * 100 + [0.5], "scheduled": [1.0] * 100 + [10.5]}]

    assert outside_p99(parts, [(10.2, 10.3)]) == 1.0
    assert outside_p99(parts, [(0.0, 20.0)]) is None


def ratio_run(server_ms: float, errors: int = 0) -> dict:
    return {"cpu_ms_per_request": {"server": server_ms}, "errors": errors, "achieved_rate": 500.0}


def test_alternating_pairs_give_each_ratio_their_median_and_range() -> None:
    runs = [
        {"pair": 1, "floor": ratio_run(0.4), "offers": ratio_run(0.8)},
        {"pair": 2, "floor": ratio_run(0.5), "offers": ratio_run(0.6, errors=3)},
        {"pair": 3, "floor": ratio_run(0.4), "offers": ratio_run(0.56)},
    ]

    summary = ratio_summary(500.0, runs)

    assert [pair["ratio"] for pair in summary["pairs"]] == [2.0, 1.2, 1.4]
    assert summary["pairs"][1]["offers_errors"] == 3
    assert (summary["median_ratio"], summary["min_ratio"], summary["max_ratio"]) == (1.4, 1.2, 2.0)
    assert (summary["median_floor_ms"], summary["median_offers_ms"]) == (0.4, 0.6)
    assert summary["met"] is True
    assert ratio_summary(500.0, runs[:1])["met"] is False
    assert "**1.4**" in "\n".join(ratio_section(summary))
    assert ratio_section(ratio_summary(500.0, [])) == []
