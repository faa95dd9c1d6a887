"""Fixtures shared by every test package: a real Redis server, a real three-primary Redis
Cluster, and private key prefixes; the scoring parity tests' setup."""

import os
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
import redis
from hypothesis import settings
from redis.cluster import RedisCluster

from benchmarks.redis_cluster import RedisClusterProcesses
from perkrank.serving.state.redis_cluster import cluster_nodes

if TYPE_CHECKING:
    from tests.scoring_setup import Setup

# No wall-clock deadline per example: the CI machine's two shared cores pause.
settings.register_profile("perkrank", deadline=None)
settings.load_profile("perkrank")


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


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> "Setup":
    """The same bundle, catalog and day on serving's side and evaluation's side (the scoring
    parity tests, test_scoring_parity.py and test_second_stage_parity.py)."""
    from tests.scoring_setup import Setup

    return Setup(tmp_path_factory.mktemp("parity") / "data")
