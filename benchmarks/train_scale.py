"""Training at scale: N members × 12 months through `perkrank generate` and `perkrank train`.

Both commands run as child processes exactly as a user runs them (`train` with MLflow logging
and registration into a scratch SQLite store). A monitor thread samples the child's resident
memory (its own children included) every `--sample` seconds; its progress lines on stderr
(`perkrank.progress`: "… step" / "✓ step (Ns)") are echoed and give the per-stage wall time,
the process CPU seconds and the peak memory while each stage was open (fits run side by side
on a thread pool, so their stages overlap). Total CPU seconds come from the kernel's
accounting of the child (all threads), which other jobs on a shared machine do not inflate.
Goal (issue 17): 1,000,000 members × 12 months trains within 30 minutes and 12 GB.
Writes benchmarks/results/train_scale.md and .json.

    nice .venv/bin/python benchmarks/train_scale.py [--members 1000000] [--months 12]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import psutil

RESULTS = Path(__file__).parent / "results"
GOAL_SECONDS = 30 * 60
GOAL_BYTES = 12 * 2**30
GIB = 2**30
STARTED = re.compile(r"^… (?P<title>.+)$")
FINISHED = re.compile(r"^✓ (?P<title>.+) \((?P<seconds>[0-9.]+)s\)$")


@dataclass
class Stage:
    """One progress step of a command: wall seconds, CPU and peak memory while it was open."""

    title: str
    cpu_start: float
    start: float = 0.0
    """Seconds from the command's start to the stage's progress line."""
    wall: float | None = None
    cpu: float | None = None
    peak_rss: int = 0


@dataclass
class Command:
    """What one monitored command took."""

    name: str
    wall: float = 0.0
    cpu: float = 0.0
    peak_rss: int = 0
    stages: list[Stage] = field(default_factory=list)


def _tree_rss(process: psutil.Process) -> tuple[int, float]:
    """Resident bytes and CPU seconds of `process` and its descendants (0 once gone)."""
    rss, cpu = 0, 0.0
    try:
        for member in [process, *process.children(recursive=True)]:
            rss += member.memory_info().rss
            times = member.cpu_times()
            cpu += times.user + times.system
    except psutil.Error:
        pass
    return rss, cpu


def monitored(
    result: Command,
    argv: list[str],
    env: dict[str, str],
    sample: float,
    on_stage: Callable[[], None],
    stdout: IO[str],
) -> Command:
    """Run `argv` (its stdout to `stdout`), echo its stderr, sample its memory into `result`,
    call `on_stage` after each finished stage (for partial results); raise if it fails."""
    print(f"$ {' '.join(argv)}", file=sys.stderr, flush=True)
    name = result.name
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    child = subprocess.Popen(argv, env=env, stdout=stdout, stderr=subprocess.PIPE, text=True)
    process = psutil.Process(child.pid)
    open_stages: dict[str, Stage] = {}
    lock = threading.Lock()
    done = threading.Event()

    def sampler() -> None:
        while not done.wait(sample):
            rss, _ = _tree_rss(process)
            with lock:
                result.peak_rss = max(result.peak_rss, rss)
                for stage in open_stages.values():
                    stage.peak_rss = max(stage.peak_rss, rss)

    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    assert child.stderr is not None
    for line in child.stderr:
        sys.stderr.write(line)
        sys.stderr.flush()
        text = line.rstrip("\n")
        rss, cpu = _tree_rss(process)
        with lock:
            result.peak_rss = max(result.peak_rss, rss)
            if match := STARTED.match(text):
                stage = Stage(
                    match["title"],
                    cpu_start=cpu,
                    start=round(time.perf_counter() - started, 1),
                    peak_rss=rss,
                )
                open_stages[stage.title] = stage
                result.stages.append(stage)
            elif (match := FINISHED.match(text)) and match["title"] in open_stages:
                stage = open_stages.pop(match["title"])
                stage.wall, stage.cpu = float(match["seconds"]), round(cpu - stage.cpu_start, 1)
                stage.peak_rss = max(stage.peak_rss, rss)
                on_stage()
    code = child.wait()
    done.set()
    thread.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result.wall = round(time.perf_counter() - started, 1)
    result.cpu = round(
        after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1
    )  # the kernel's count: every thread of the child and of its children
    result.peak_rss = max(result.peak_rss, after.ru_maxrss * 1024)  # ru_maxrss is in KiB
    if code != 0:
        raise SystemExit(f"{name} failed with exit code {code}")
    return result


def floor_seconds() -> dict[str, float]:
    """A fixed CPU-bound reference (sorting 20M float32, one thread) timed in this run: how
    fast this machine is right now."""
    import numpy as np

    values = np.random.default_rng(0).random(20_000_000, dtype=np.float32)
    wall, cpu = time.perf_counter(), time.process_time()
    np.sort(values)
    return {
        "wall": round(time.perf_counter() - wall, 2),
        "cpu": round(time.process_time() - cpu, 2),
    }


def run(
    members: int, months: int, work_dir: Path, sample: float, save: Callable[[dict], None]
) -> dict[str, Any]:
    """Generate, then train; `save` receives the result so far after every finished stage."""
    if work_dir.exists():
        shutil.rmtree(work_dir)
    work_dir.mkdir(parents=True)
    perkrank = str(Path(sys.executable).with_name("perkrank"))
    env = os.environ | {
        "MLFLOW_TRACKING_URI": f"sqlite:///{work_dir.resolve()}/mlflow.db",
        "PYTHONUNBUFFERED": "1",
    }
    data = work_dir / "data"
    log = (work_dir / "stdout.txt").open("w")  # the commands' own output (tables, summaries)
    result: dict[str, Any] = {
        "members": members,
        "months": months,
        "complete": False,
        "floor_sort_20m_s": {"before": floor_seconds()},
    }
    commands = [Command("generate"), Command("train")]
    result["machine"] = _machine()

    def progress() -> None:
        result["commands"] = {command.name: _command_record(command) for command in commands}
        result["machine"] = _machine()
        save(result)

    monitored(
        commands[0],
        [perkrank, "generate", "--members", str(members), "--months", str(months),
         "--seed", "7", "--start", "2025-01-01", "--out", str(data)],
        env, sample, progress, log,
    )  # fmt: skip
    result["data_bytes"] = {p.name: p.stat().st_size for p in sorted(data.glob("*.csv"))}
    train = monitored(
        commands[1], [perkrank, "train", "--data", str(data), "--out", str(work_dir / "train")],
        env, sample, progress, log,
    )  # fmt: skip
    log.close()
    result["floor_sort_20m_s"]["after"] = floor_seconds()
    report = json.loads((work_dir / "train" / "report" / "evaluation.json").read_text())
    result["goal"] = {
        "train_wall_s_max": GOAL_SECONDS,
        "train_peak_gib_max": GOAL_BYTES / GIB,
        "wall_met": train.wall <= GOAL_SECONDS,
        "cpu_met": train.cpu <= GOAL_SECONDS,
        "memory_met": train.peak_rss <= GOAL_BYTES,
    }
    result["test_metrics"] = _served_metrics(report)
    result["lightfm_fits"] = lightfm_span(_command_record(train)["stages"])
    result["complete"] = True
    progress()
    return result


def _command_record(command: Command) -> dict[str, Any]:
    return {
        "wall_s": command.wall,
        "cpu_s": command.cpu,
        "peak_rss_gib": round(command.peak_rss / GIB, 2),
        "stages": [
            {
                "title": stage.title,
                "start_s": stage.start,
                "wall_s": stage.wall,
                "cpu_s": stage.cpu,
                "peak_rss_gib": round(stage.peak_rss / GIB, 2),
            }
            for stage in command.stages
        ],
    }


def _machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / GIB, 1),
        "python": platform.python_version(),
        "load_average": [round(value, 1) for value in os.getloadavg()],
    }


def _served_metrics(report: dict[str, Any]) -> dict[str, Any]:
    """NDCG@10 of every evaluated model from the report's metrics.json (best effort)."""
    models = report.get("models", report)
    found = {}
    for name, value in models.items():
        if isinstance(value, dict):
            overall = value.get("metrics", {}).get("overall", value.get("overall", {}))
            if isinstance(overall, dict) and "ndcg@10" in overall:
                found[name] = round(overall["ndcg@10"], 4)
    return found


def markdown(result: dict[str, Any]) -> str:
    """The results as markdown; a run stopped before its end shows the stages it finished."""
    train, generate = result["commands"]["train"], result["commands"]["generate"]
    floor = result["floor_sort_20m_s"]
    lines = [
        f"# Training at scale: {result['members']:,} members × {result['months']} months",
        "",
        "Command: `nice .venv/bin/python benchmarks/train_scale.py "
        f"--members {result['members']}` ({result['machine']['cpus']} cores, "
        f"{result['machine']['memory_gib']} GiB; load average at the end "
        f"{result['machine']['load_average']}: other jobs shared the cores).",
        "",
    ]
    if result.get("complete", "goal" in result):
        goal = result["goal"]
        lines += [
            f"**`perkrank train`: {train['wall_s']:.0f} s wall, {train['cpu_s']:.0f} s CPU, "
            f"peak {train['peak_rss_gib']:.2f} GiB resident.** Goal ≤ {GOAL_SECONDS} s and "
            f"≤ {goal['train_peak_gib_max']:.0f} GiB: wall {_met(goal['wall_met'])}, "
            f"CPU {_met(goal['cpu_met'])}, memory {_met(goal['memory_met'])}.",
            "",
            "Floor (sorting 20M float32 on one thread, same run): "
            f"{floor['before']['wall']:.2f} s wall / {floor['before']['cpu']:.2f} s CPU before, "
            f"{floor['after']['wall']:.2f} s / {floor['after']['cpu']:.2f} s after; `train` is "
            f"{train['cpu_s'] / max(floor['before']['cpu'], 0.01):.0f}× the floor's CPU.",
            "",
        ]
    else:
        last = (train["stages"] or generate["stages"] or [{"title": "start"}])[-1]["title"]
        lines += [
            f"**The run did not finish: it was stopped during or after “{last}”**, after "
            f"{train['wall_s']:.0f} s wall and {train['cpu_s']:.0f} s CPU of `train` (0: not "
            f"recorded). Peak resident memory of `train` until then: "
            f"{train['peak_rss_gib']:.2f} GiB. Floor "
            f"(sorting 20M float32 on one thread, same run): {floor['before']['wall']:.2f} s "
            f"wall / {floor['before']['cpu']:.2f} s CPU.",
            "",
        ]
    if "data_bytes" in result:
        sizes = ", ".join(f"{n} {b / 2**20:.0f} MiB" for n, b in result["data_bytes"].items())
        lines += [
            f"`perkrank generate`: {generate['wall_s']:.0f} s wall, {generate['cpu_s']:.0f} s "
            f"CPU, peak {generate['peak_rss_gib']:.2f} GiB. Data: {sizes}.",
            "",
        ]
    if span := lightfm_span(train["stages"]):
        lines += [
            f"LightFM fits of `train`: {span['fits']}, {span['wall_s']:.0f} s of wall in all, "
            f"from {span['first_start_s']:.0f} s to {span['last_end_s']:.0f} s (span "
            f"{span['span_s']:.0f} s; fits of different cutoffs may overlap).",
            "",
        ]
    lines += [
        "Stages (start: seconds after the command started; wall from the progress lines; "
        "CPU and peak memory of the whole process while "
        "the stage was open — the fits run side by side, so their rows overlap):",
        "",
        "| command | stage | start s | wall s | CPU s | peak GiB |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, command in result["commands"].items():
        for stage in command["stages"]:
            wall = "–" if stage["wall_s"] is None else f"{stage['wall_s']:.1f}"
            cpu = "–" if stage["cpu_s"] is None else f"{stage['cpu_s']:.1f}"
            start = f"{stage['start_s']:.0f}" if "start_s" in stage else "–"
            lines.append(
                f"| {name} | {stage['title']} | {start} | {wall} | {cpu} | "
                f"{_gib(stage['peak_rss_gib'])} |"
            )
    if result.get("test_metrics"):
        lines += ["", "| model | test NDCG@10 |", "|---|---:|"]
        lines += [f"| {name} | {value:.4f} |" for name, value in result["test_metrics"].items()]
    return "\n".join(lines) + "\n"


def lightfm_span(stages: list[dict[str, Any]]) -> dict[str, float] | None:
    """The finished LightFM fits of `stages` (records with starts): count, summed wall, and
    the span from the first one's start to the last one's end (None: none or no starts)."""
    fits = [
        stage
        for stage in stages
        if stage["title"].startswith("fit lightfm") and stage["wall_s"] is not None
    ]
    if not fits or any("start_s" not in stage for stage in fits):
        return None
    first = min(stage["start_s"] for stage in fits)
    last = max(stage["start_s"] + stage["wall_s"] for stage in fits)
    return {
        "fits": len(fits),
        "wall_s": round(sum(stage["wall_s"] for stage in fits), 1),
        "first_start_s": first,
        "last_end_s": round(last, 1),
        "span_s": round(last - first, 1),
    }


def _gib(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _met(met: bool) -> str:
    return "met" if met else "NOT met"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--work-dir", type=Path, default=Path("var/bench/train_scale"))
    parser.add_argument("--sample", type=float, default=0.5, help="memory sampling seconds")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--name", default="train_scale", help="result file name")
    parser.add_argument(
        "--render", action="store_true", help="only write the .md from the .json (a stopped run)"
    )
    arguments = parser.parse_args()
    arguments.out.mkdir(parents=True, exist_ok=True)
    if arguments.render:
        result = json.loads((arguments.out / f"{arguments.name}.json").read_text())
        (arguments.out / f"{arguments.name}.md").write_text(markdown(result))
        return

    def save(result: dict[str, Any]) -> None:
        (arguments.out / f"{arguments.name}.json").write_text(json.dumps(result, indent=2) + "\n")
        (arguments.out / f"{arguments.name}.md").write_text(markdown(result))

    result = run(arguments.members, arguments.months, arguments.work_dir, arguments.sample, save)
    print(markdown(result))


if __name__ == "__main__":
    main()
