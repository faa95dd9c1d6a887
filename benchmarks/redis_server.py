"""A private redis-server for a benchmark: a free loopback port, no persistence, stopped on
exit. The one starter every benchmark uses (the tests use pytest-redis)."""

from __future__ import annotations

import signal
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks.redis_cluster import answers, wait_until


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def redis_server(directory: Path | None = None) -> Iterator[tuple[subprocess.Popen, int]]:
    """A redis-server on a free port of 127.0.0.1 (files, if any, in `directory`), answering
    PING when yielded as (process, port); terminated (resumed first if paused) afterwards."""
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1"]
    command += ["--save", "", "--appendonly", "no"]
    if directory is not None:
        command += ["--dir", str(directory)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    try:
        wait_until(lambda: answers(port), f"redis-server on port {port} did not start")
        yield process, port
    finally:
        process.send_signal(signal.SIGCONT)
        process.terminate()
        process.wait(timeout=30)
