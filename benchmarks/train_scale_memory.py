"""Training at scale, memory only: `perkrank train` on data `train_scale.py` generated, with
every fit cut to one epoch or iteration (LightFM, BPR, ALS), monitored as `train_scale.py`
monitors it (resident memory of the process and its children every `--sample` seconds, per
progress stage).

The fitted models have the sizes of the full run's (same members, items and factors), so the
memory of every step after the fits is the full run's; the fits' own working memory is held
for less time, so the fits overlap the later steps less than in the full run. Wall and CPU
seconds are NOT those of the goal: `train_scale.py` measures those.
Writes benchmarks/results/train_scale_memory.md and .json.

    .venv/bin/python benchmarks/train_scale.py --members 1000000   # once, for the data
    .venv/bin/python -m benchmarks.train_scale_memory [--data var/bench/train_scale/data]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from benchmarks.train_scale import (
    GIB,
    GOAL_BYTES,
    RESULTS,
    Command,
    _command_record,
    _machine,
    _served_metrics,
    floor_seconds,
    markdown,
    monitored,
)

SHORT_FITS = {
    "PERKRANK_TRAIN_LIGHTFM__EPOCHS": "1",
    "PERKRANK_TRAIN_BPR__ITERATIONS": "1",
    "PERKRANK_TRAIN_ALS__ITERATIONS": "1",
}


def run(data: Path, work_dir: Path, sample: float, save: Any) -> dict[str, Any]:
    """Train on `data` with SHORT_FITS; `save` receives the result after every stage."""
    if work_dir.exists():
        shutil.rmtree(work_dir)
    work_dir.mkdir(parents=True)
    members = sum(1 for _ in (data / "members.csv").open()) - 1
    env = os.environ | SHORT_FITS
    env |= {"MLFLOW_TRACKING_URI": f"sqlite:///{work_dir.resolve()}/mlflow.db"}
    env |= {"PYTHONUNBUFFERED": "1"}
    result: dict[str, Any] = {
        "members": members,
        "months": 12,
        "short_fits": SHORT_FITS,
        "complete": False,
        "floor_sort_20m_s": {"before": floor_seconds()},
        "machine": _machine(),
    }
    commands = [Command("generate"), Command("train")]  # generate: not run here

    def progress() -> None:
        result["commands"] = {command.name: _command_record(command) for command in commands}
        result["machine"] = _machine()
        save(result)

    perkrank = str(Path(sys.executable).with_name("perkrank"))
    argv = [perkrank, "train", "--data", str(data), "--out", str(work_dir / "train")]
    with (work_dir / "stdout.txt").open("w") as log:
        train = monitored(commands[1], argv, env, sample, progress, log)
    result["floor_sort_20m_s"]["after"] = floor_seconds()
    report = json.loads((work_dir / "train" / "report" / "evaluation.json").read_text())
    result["goal"] = {
        "train_wall_s_max": None,
        "train_peak_gib_max": GOAL_BYTES / GIB,
        "wall_met": None,
        "cpu_met": None,
        "memory_met": train.peak_rss <= GOAL_BYTES,
    }
    result["test_metrics"] = _served_metrics(report)
    result["complete"] = True
    progress()
    return result


def memory_markdown(result: dict[str, Any]) -> str:
    """`train_scale.markdown`, headed as the memory-only run it is."""
    train = result["commands"]["train"]
    body = markdown(result).split("\n", 4)[4]  # the title and command lines replaced
    body = body[body.index("Stages") :] if "Stages" in body else body
    goal = result.get("goal", {})
    verdict = {True: "met", False: "NOT met", None: "not known (stopped)"}
    return (
        f"# Training at scale, memory only: {result['members']:,} members × 12 months\n\n"
        "Command: `.venv/bin/python -m benchmarks.train_scale_memory` (data of "
        "`train_scale.py --members 1000000`; LightFM, BPR and ALS cut to one epoch or "
        f"iteration: {result['short_fits']}); {result['machine']['cpus']} cores, "
        f"{result['machine']['memory_gib']} GiB, load average at the end "
        f"{result['machine']['load_average']}: other jobs shared the cores.\n\n"
        f"**Peak resident memory of `perkrank train`: {train['peak_rss_gib']:.2f} GiB** "
        f"(goal ≤ 12 GiB: {verdict[goal.get('memory_met')]}). Wall {train['wall_s']:.0f} s "
        f"and CPU {train['cpu_s']:.0f} s are NOT the goal's (short fits, shared machine).\n\n"
        + body
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("var/bench/train_scale/data"))
    parser.add_argument("--work-dir", type=Path, default=Path("var/bench/train_scale_memory"))
    parser.add_argument("--sample", type=float, default=0.5, help="memory sampling seconds")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--name", default="train_scale_memory", help="result file name")
    arguments = parser.parse_args()
    arguments.out.mkdir(parents=True, exist_ok=True)

    def save(result: dict[str, Any]) -> None:
        (arguments.out / f"{arguments.name}.json").write_text(json.dumps(result, indent=2) + "\n")
        (arguments.out / f"{arguments.name}.md").write_text(memory_markdown(result))

    result = run(arguments.data, arguments.work_dir, arguments.sample, save)
    print(memory_markdown(result))


if __name__ == "__main__":
    main()
