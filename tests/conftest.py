"""Fixtures shared by every test package: a real Redis server, a real three-primary Redis
Cluster, and private key prefixes."""

import os
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from redis.cluster import RedisCluster

from perkrank.serving.state.redis_cluster import cluster_nodes


@pytest.fixture(scope="session")
def redis_url(request: pytest.FixtureRequest) -> str:
    """REDIS_URL when set, else a redis-server that pytest-redis starts on a free port."""
    url = os.environ.get("REDIS_URL")
    if url:
        return url
    process = request.getfixturevalue("redis_proc")
    return f"redis://{process.host}:{process.port}/0"


@pytest.fixture
def redis_key_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix no other test uses; its keys (and only they) are deleted afterwards."""
    prefix = f"perkrank-test-{uuid.uuid4().hex[:12]}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


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
            _wait_until(
                lambda port=port: _answers(port), f"redis-server on port {port} did not start"
            )
        addresses = [f"127.0.0.1:{port}" for port in self.ports]
        command = ["redis-cli", "--cluster", "create", *addresses]
        subprocess.run(
            [*command, "--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        for port in self.ports:
            _wait_until(lambda port=port: _cluster_ok(port), f"cluster node {port} is not ok")

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


def _answers(port: int) -> bool:
    try:
        return redis.Redis(port=port, socket_connect_timeout=0.2).ping()
    except redis.ConnectionError:
        return False


def _cluster_ok(port: int) -> bool:
    client = redis.Redis(port=port, decode_responses=True)
    try:
        return client.cluster("info").get("cluster_state") == "ok"
    finally:
        client.close()


def _wait_until(condition: Callable[[], bool], failure: str, seconds: float = 30) -> None:
    """Poll `condition` until it holds; fail with `failure` after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, failure


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A three-primary Redis Cluster of this test session: its redis+cluster:// URL."""
    cluster = RedisClusterProcesses(tmp_path_factory.mktemp("redis-cluster"))
    try:
        cluster.start()
        yield cluster.url
    finally:
        cluster.stop()


@pytest.fixture
def cluster_key_prefix(redis_cluster_url: str) -> Iterator[str]:
    """A key prefix no other test uses on the cluster; its keys are deleted afterwards."""
    prefix = f"perkrank-test-{uuid.uuid4().hex[:12]}"
    yield prefix
    client = RedisCluster(startup_nodes=cluster_nodes(redis_cluster_url)[0])
    for key in list(client.scan_iter(match=f"{prefix}*", count=1000)):
        client.delete(key)
    client.close()
