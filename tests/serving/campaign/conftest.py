"""Fixtures of the campaign tests (the world itself: `world`)."""

from collections.abc import Callable, Iterator

import pytest

from perkrank.serving.state.memory import MemoryStateStore
from perkrank.serving.state.ports import StateStore
from perkrank.serving.state.redis_cluster import RedisClusterStateStore
from perkrank.serving.state.redis_store import RedisStateStore


@pytest.fixture(params=["memory", "redis", "cluster"])
def new_store(request: pytest.FixtureRequest) -> Iterator[Callable[[], StateStore]]:
    """Makes empty stores of one kind (on Redis and on the three-primary cluster: each under
    a prefix of its own)."""
    made: list[str] = []

    def make() -> StateStore:
        if request.param == "memory":
            return MemoryStateStore()
        if request.param == "cluster":
            url = request.getfixturevalue("redis_cluster_url")
            prefix = f"{request.getfixturevalue('cluster_key_prefix')}-{len(made)}"
            made.append(prefix)
            return RedisClusterStateStore(url, prefix, 5000)
        url = request.getfixturevalue("redis_url")
        prefix = f"{request.getfixturevalue('redis_key_prefix')}-{len(made)}"
        made.append(prefix)
        return RedisStateStore(url, prefix, 5000)

    yield make
