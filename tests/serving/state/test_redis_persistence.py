"""Startup warns once when Redis would forget opt-outs on restart (no AOF, no RDB), and says
once that it cannot tell when CONFIG is refused; a persistent Redis gets no warning."""

import logging

import pytest

from perkrank.config import ServeConfig
from perkrank.serving.state.ports import open_store
from perkrank.serving.state.redis_persistence import persistence_problem

LOGGER = "perkrank.serving"


def warnings_when_opened(url: str, caplog: pytest.LogCaptureFixture) -> list[str]:
    """The warnings `open_store` logs for the Redis at `url`."""
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        open_store(ServeConfig(redis_url=url, key_prefix="persistence"))
    return [record.getMessage() for record in caplog.records if record.name == LOGGER]


def test_redis_without_aof_or_snapshots_gets_one_warning_naming_the_settings(private_redis, caplog):
    (warning,) = warnings_when_opened(private_redis.url, caplog)
    assert "neither AOF nor RDB" in warning
    assert "appendonly yes" in warning
    assert "appendfsync everysec" in warning


class ConfiguredRedis:
    """A client stand-in answering CONFIG GET from `settings` (a real server with AOF or
    snapshots on would write files into the test's working directory)."""

    def __init__(self, **settings: str) -> None:
        self.settings = settings

    def config_get(self, name: str) -> dict[str, str]:
        return {name: self.settings[name]}


@pytest.mark.parametrize(
    ("appendonly", "save", "persists"),
    [("yes", "", True), ("no", "3600 1 300 100", True), ("yes", "3600 1", True), ("no", "", False)],
)
def test_aof_or_snapshots_persist(appendonly, save, persists):
    problem = persistence_problem(ConfiguredRedis(appendonly=appendonly, save=save))
    assert (problem is None) == persists


def test_a_refused_config_command_is_said_once(private_redis, caplog):
    client = private_redis.client()
    client.acl_setuser(
        "app", enabled=True, passwords=["+app-password"], keys=["*"], commands=["+@all", "-config"]
    )
    url = f"redis://app:app-password@127.0.0.1:{private_redis.port}/0"
    (warning,) = warnings_when_opened(url, caplog)
    assert "cannot check whether Redis persists opt-outs" in warning
    assert "CONFIG GET refused" in warning
    assert "appendonly yes" in warning
