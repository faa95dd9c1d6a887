"""Fixtures shared by every test package: a real Redis server and a private key prefix."""

import os
import uuid
from collections.abc import Iterator

import pytest
import redis


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
