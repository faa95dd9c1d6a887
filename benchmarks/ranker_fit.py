"""Fit time of the second-stage ranker (`training.ranker_step.fit_ranker`) at demo size.

On synthetic data (`features.synthetic`, 20,000 members × 12 months like `perkrank demo`),
an ALS + repeat blend is fitted before a 30-day window; the ranker's training frame is built
twice, member by member (`member_candidates` per ranked member, the loop the fit used before)
and in member blocks (`ranker_step.frame`, what the fit uses), checked equal, then the whole
`fit_ranker` (frame, L2 choice, refit) is timed. Wall and CPU seconds; the floor is one
`np.where` over 100 values timed in the same run. Writes benchmarks/results/ranker_fit.md.

    .venv/bin/python benchmarks/ranker_fit.py [--members 20000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np

from perkrank.config import AlsConfig, InteractionConfig
from perkrank.features.interactions import cutoff_features
from perkrank.features.loader import load_dataset
from perkrank.features.offer_features import item_feature_table, offer_regions
from perkrank.features.synthetic import generate
from perkrank.models.als import fit_als
from perkrank.models.blend import blend
from perkrank.models.repeat import fit_repeat
from perkrank.models.second_stage import CandidateSizes, member_candidates
from perkrank.training import ranker_step
from perkrank.training.window import prepare_window

RESULTS = Path(__file__).parent / "results"
SEED = 7


def timed(function):
    """(result, wall seconds, CPU seconds) of `function()`."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def member_by_member(window, blend_model, data, sizes):
    """The frame as the fit built it before: one `member_candidates` call per member."""
    features, members = [], []
    for inputs in ranker_step.ranked_members(window, blend_model, data, sizes):
        chosen, rows = member_candidates(
            data.stats, sizes, inputs.stats_row, inputs.item_rows, inputs.flags, inputs.blend_scores
        )
        features.append(rows)
        members.append(np.full(len(chosen), inputs.member))
    return np.vstack(features), np.concatenate(members)


def run(members: int, work_dir: Path) -> dict:
    generate(work_dir, members=members, months=12, seed=SEED, start=date(2025, 1, 1))
    dataset = load_dataset(work_dir)
    end = dataset.purchases["ts"].max().date() + timedelta(days=1)
    start = end - timedelta(days=30)
    features = cutoff_features(
        dataset, datetime.combine(start, datetime.min.time()), InteractionConfig()
    )
    components = {
        "als": fit_als(features.data, AlsConfig(), seed=SEED, threads=1),
        "repeat": fit_repeat(features.data),
    }
    blend_model = blend(components, {"als": 1.0, "repeat": 1.0})
    window = prepare_window(
        dataset,
        start,
        end,
        member_features=features.member_features,
        items_bought_before=features.items_bought_before,
        offer_regions=offer_regions(dataset),
        item_features=item_feature_table(dataset),
    )
    data = ranker_step.stage_data(dataset, start)
    sizes = CandidateSizes()
    (old_rows, old_members), old_wall, old_cpu = timed(
        lambda: member_by_member(window, blend_model, data, sizes)
    )
    (rows, _, frame_members), new_wall, new_cpu = timed(
        lambda: ranker_step.frame(window, blend_model, data, sizes)
    )
    np.testing.assert_array_equal(rows, old_rows)
    np.testing.assert_array_equal(frame_members, old_members)
    _, fit_wall, fit_cpu = timed(lambda: ranker_step.fit_ranker(window, blend_model, data, seed=0))
    values = np.arange(100.0)
    floors = []
    for _ in range(2000):
        began = time.perf_counter_ns()
        np.where(values > 3, values, 0.0)
        floors.append(time.perf_counter_ns() - began)
    return {
        "members": members,
        "window_members": len(window.member_ids),
        "frame_rows": len(rows),
        "frame_member_by_member": {"wall_s": round(old_wall, 2), "cpu_s": round(old_cpu, 2)},
        "frame_in_blocks": {"wall_s": round(new_wall, 2), "cpu_s": round(new_cpu, 2)},
        "frame_speedup_cpu": round(old_cpu / new_cpu, 1),
        "fit_ranker_total": {"wall_s": round(fit_wall, 2), "cpu_s": round(fit_cpu, 2)},
        "floor_p50_us": round(float(np.median(floors)) / 1e3, 2),
    }


def markdown(result: dict) -> str:
    old, new, fit = (
        result["frame_member_by_member"],
        result["frame_in_blocks"],
        result["fit_ranker_total"],
    )
    return (
        "# Fit time of the second-stage ranker (demo size)\n\n"
        "Command: `benchmarks/ranker_fit.py`  \n"
        f"Synthetic data: {result['members']:,} members × 12 months; 30-day window of "
        f"{result['window_members']:,} members; {result['frame_rows']:,} candidate rows. "
        "2 shared cores (other jobs running).\n\n"
        "| step | wall s | CPU s |\n|---|---:|---:|\n"
        f"| training frame, member by member (before) | {old['wall_s']} | {old['cpu_s']} |\n"
        f"| training frame, member blocks (now) | {new['wall_s']} | {new['cpu_s']} |\n"
        f"| `fit_ranker` now (frame + L2 choice + refit) | {fit['wall_s']} | {fit['cpu_s']} |\n\n"
        f"Both frames are checked equal. Frame CPU speed-up: {result['frame_speedup_cpu']}×. "
        f"Floor (one `np.where` over 100 values, same run): p50 {result['floor_p50_us']} µs "
        "(about 1 µs on an idle core).\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        result = run(args.members, Path(scratch))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ranker_fit.json").write_text(json.dumps(result, indent=1) + "\n")
    (RESULTS / "ranker_fit.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
