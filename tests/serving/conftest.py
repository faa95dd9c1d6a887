"""Fixtures for the serving tests: every state store adapter, on a real Redis where needed."""

from collections.abc import Iterator

import pytest

from perkrank.serving.memory_store import MemoryStateStore
from perkrank.serving.redis_store import RedisStateStore
from perkrank.serving.store import StateStore

STORE_TIMEOUT_MS = 2000
"""Generous: the test machine is shared and slow; production uses ServeConfig.store_timeout_ms."""


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> Iterator[StateStore]:
    """Each StateStore adapter in turn; the Redis one writes only under `redis_key_prefix`."""
    if request.param == "memory":
        state_store: StateStore = MemoryStateStore()
    else:
        state_store = RedisStateStore(
            request.getfixturevalue("redis_url"),
            request.getfixturevalue("redis_key_prefix"),
            STORE_TIMEOUT_MS,
        )
    yield state_store
    state_store.close()
