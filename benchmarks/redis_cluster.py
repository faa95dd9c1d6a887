"""A throwaway Redis Cluster on this machine: `size` redis-server primaries on free loopback
ports, joined by `redis-cli --cluster create`; for the tests (a session fixture) and the
cluster benchmark."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import redis


class RedisClusterProcesses:
    """`size` redis-server primaries in cluster mode on free ports of 127.0.0.1 (each with its
    cluster bus port + 10000 free), their files in `directory`."""

    def __init__(self, directory: Path, size: int = 3) -> None:
        self.directory = directory
        self.ports = _free_port_pairs(size)
        self.processes: list[subprocess.Popen] = []
        self.url = "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def start(self) -> None:
        """Start the servers, join them into one cluster, and wait (polling) until every
        node reports `cluster_state:ok`."""
        for port in self.ports:
            command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1"]
            command += ["--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf"]
            command += ["--save", "", "--appendonly", "no", "--dir", str(self.directory)]
            self.processes.append(subprocess.Popen(command, stdout=subprocess.DEVNULL))
        for port in self.ports:
            wait_until(
                lambda port=port: answers(port), f"redis-server on port {port} did not start"
            )
        addresses = [f"127.0.0.1:{port}" for port in self.ports]
        command = ["redis-cli", "--cluster", "create", *addresses]
        subprocess.run(
            [*command, "--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        for port in self.ports:
            wait_until(lambda port=port: _cluster_ok(port), f"cluster node {port} is not ok")

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.wait(timeout=10)


def _free_port_pairs(count: int) -> list[int]:
    """`count` ports that are free on 127.0.0.1 together with port + 10000."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port + 10000 > 65535 or port in ports:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        ports.append(port)
    return ports


def answers(port: int) -> bool:
    """Whether a redis-server answers PING on `port` of 127.0.0.1."""
    client = redis.Redis(port=port, socket_connect_timeout=0.2)
    try:
        return client.ping()
    except redis.ConnectionError:
        return False
    finally:
        client.close()


def _cluster_ok(port: int) -> bool:
    client = redis.Redis(port=port, decode_responses=True)
    try:
        return client.cluster("info").get("cluster_state") == "ok"
    finally:
        client.close()


def wait_until(condition: Callable[[], bool], failure: str, seconds: float = 30) -> None:
    """Poll `condition` until it holds; fail with `failure` after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(failure)
