"""The machine under the benchmark: how often each core is paused, which core is quietest,
pinning processes to cores, and the CPU seconds a process has used (from /proc; Linux)."""

from __future__ import annotations

import multiprocessing
import os
import platform
import time
from pathlib import Path

PAUSE_PROBE_SECONDS = 5.0
PAUSE_SECONDS = 0.001
"""A busy loop that sees its clock jump by more than this was not running meanwhile."""
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def core_pauses(core: int, seconds: float) -> list[float]:
    """Pauses (ms) a busy loop pinned to `core` sees over `seconds`: time the machine gave
    the core to something else."""
    os.sched_setaffinity(0, {core})
    pauses, last = [], time.perf_counter()
    end = last + seconds
    while last < end:
        now = time.perf_counter()
        if now - last > PAUSE_SECONDS:
            pauses.append((now - last) * 1000)
        last = now
    return pauses


def machine_pauses(seconds: float) -> dict[int, dict]:
    """Per core, while nothing of the benchmark runs: how often and how long it was paused."""
    cores = sorted(os.sched_getaffinity(0))
    with multiprocessing.get_context("spawn").Pool(len(cores)) as pool:
        pauses = pool.starmap(core_pauses, [(core, seconds) for core in cores])
    return {
        core: {
            "pauses_over_1_ms": len(found),
            "pauses_over_10_ms": sum(pause > 10 for pause in found),
            "longest_ms": round(max(found, default=0.0), 1),
            "paused_share": round(sum(found) / 1000 / seconds, 4),
        }
        for core, found in zip(cores, pauses, strict=True)
    }


def quietest_core(pauses: dict[int, dict]) -> int:
    """The core the machine paused least."""
    return min(pauses, key=lambda core: pauses[core]["paused_share"])


def pin_cores(server_pid: int, server_core: int, other_pids: list[int]) -> None:
    """The server alone on `server_core`, the other processes on the remaining cores."""
    others = sorted(os.sched_getaffinity(0) - {server_core})
    if not others:
        return
    os.sched_setaffinity(server_pid, {server_core})
    for pid in other_pids:
        os.sched_setaffinity(pid, others)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def cpu_model() -> str:
    """The processor's model name."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return platform.processor()
