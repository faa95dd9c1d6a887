"""Fixtures for the serving tests: every state store adapter (on a real Redis where needed),
small apps and services, and servers on 127.0.0.1 in a thread or a process."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
import redis
import uvicorn
from fastapi import FastAPI

from perkrank.config import CapsConfig, ServeConfig
from perkrank.models.bundle import Bundle
from perkrank.models.factors import Factors
from perkrank.serving.api.app import create_app
from perkrank.serving.bootstrap import Runtime, build_context
from perkrank.serving.domain.catalog import Member, Offer, build_catalog
from perkrank.serving.state.memory import MemoryStateStore
from perkrank.serving.state.ports import StateStore
from perkrank.serving.state.redis_cluster import RedisClusterStateStore
from perkrank.serving.state.redis_store import RedisStateStore

STORE_TIMEOUT_MS = 10_000
"""Generous: the test machine is shared and slow; production uses ServeConfig.store_timeout_ms."""


@pytest.fixture(params=["memory", "redis", "cluster"])
def store(request: pytest.FixtureRequest) -> Iterator[StateStore]:
    """Each StateStore adapter in turn: in memory, on one Redis server (writing only under
    `redis_key_prefix`) and on a three-primary Redis Cluster (under `cluster_key_prefix`)."""
    if request.param == "memory":
        state_store: StateStore = MemoryStateStore()
    elif request.param == "redis":
        state_store = RedisStateStore(
            request.getfixturevalue("redis_url"),
            request.getfixturevalue("redis_key_prefix"),
            STORE_TIMEOUT_MS,
        )
    else:
        state_store = RedisClusterStateStore(
            request.getfixturevalue("redis_cluster_url"),
            request.getfixturevalue("cluster_key_prefix"),
            STORE_TIMEOUT_MS,
        )
    yield state_store
    asyncio.run(state_store.close())


class PrivateRedis:
    """A redis-server of one test alone, on one port across restarts; `password` turns on
    AUTH and `unix_socket` also listens there."""

    def __init__(self, password: str | None = None, unix_socket: Path | None = None) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.password = password
        self.unix_socket = unix_socket
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no"]
        if self.password:
            command += ["--requirepass", self.password]
        if self.unix_socket:
            command += ["--unixsocket", str(self.unix_socket), "--unixsocketperm", "700"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        client = self.client()
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
        client.close()

    def client(self, db: int = 0) -> redis.Redis:
        """A plain redis-py client of this server."""
        return redis.Redis(
            port=self.port, db=db, password=self.password, socket_connect_timeout=0.2
        )

    def stop(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)
        self.process.terminate()
        self.process.wait(timeout=10)
        self.process = None


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    """A redis-server of this test alone: it may be stopped, frozen or flushed."""
    server = PrivateRedis()
    server.start()
    yield server
    if server.process is not None:
        server.stop()


@pytest.fixture
def locked_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A redis-server of this test alone that wants a password and also listens on a unix
    socket in `tmp_path`."""
    server = PrivateRedis(password="private-redis-password", unix_socket=tmp_path / "redis.sock")
    server.start()
    yield server
    server.stop()


SMALL_APP_KEY = "app-key-for-tests-0001"
SMALL_ADMIN_KEY = "admin-key-for-tests-0001"
SMALL_TODAY = date(2026, 6, 15)
SMALL_OFFERS_CSV = (
    "offer_id,partner_id,category,title,regions,min_tier,valid_from,valid_to,budget,reward\n"
    "glow-beauty,P1,Beauty,Beauty deal,,base,2026-06-05,2026-06-25,,10% back\n"
    "fresh-grocery,P2,Grocery,Grocery deal,,base,2026-06-05,2026-06-25,,10% back\n"
    "glow-vip,P1,Beauty,VIP deal,,vip,2026-06-05,2026-06-25,,10% back\n"
)


def small_bundle() -> Bundle:
    """Items P1|Beauty and P2|Grocery; the known member `alice` likes Beauty best."""
    items = ["P1|Beauty", "P2|Grocery"]
    ranker = Factors(
        member_ids=["alice"],
        member_vectors=[[1.0, 0.0]],
        item_ids=items,
        item_vectors=[[1.0, 0.0], [0.0, 1.0]],
        item_biases=np.zeros(2),
        member_feature_ids=["region=north"],
        member_feature_vectors=[[0.5, 0.4]],
    )
    fallback = Factors(
        member_ids=[],
        member_vectors=np.zeros((0, 1)),
        item_ids=items,
        item_vectors=[[0.2], [0.5]],
        item_biases=np.zeros(2),
        member_feature_ids=["tier=base", "tier=silver", "tier=gold", "tier=vip"],
        member_feature_vectors=np.ones((4, 1)),
    )
    return Bundle(ranker=ranker, fallback=fallback)


def small_app(store: StateStore, rules=(), partners=None, **settings) -> FastAPI:
    """An app over the offers of SMALL_OFFERS_CSV on 2026-06-15: `glow-beauty` (P1, Beauty),
    ranked first for `alice`, and `fresh-grocery` (P2, Grocery) for everyone, `glow-vip` for
    nobody (the only member, alice, is base tier); model version "small-1"; app key
    "app-key-for-tests-0001", admin key "admin-key-for-tests-0001"; `partners`: the table
    published catalogs are checked against (None: publishing is refused)."""
    bundle = small_bundle()
    validity = {
        "scope": "federal",
        "reward": "10% back",
        "valid_from": SMALL_TODAY - timedelta(days=10),
        "valid_to": SMALL_TODAY + timedelta(days=10),
    }
    offers = [
        Offer(offer_id, partner_id, name, category=category, title=title, min_tier=tier, **validity)
        for offer_id, partner_id, name, category, title, tier in [
            ("glow-beauty", "P1", "Glow", "Beauty", "Beauty deal", "base"),
            ("fresh-grocery", "P2", "Fresh", "Grocery", "Grocery deal", "base"),
            ("glow-vip", "P1", "Glow", "Beauty", "VIP deal", "vip"),
        ]
    ]
    values = {
        "catalog_date": SMALL_TODAY,
        "app_api_keys": f"tests:{SMALL_APP_KEY}",
        "admin_api_keys": f"ops:{SMALL_ADMIN_KEY}",
    }
    serve_config = ServeConfig(**values | settings)
    context = build_context(
        bundle=bundle,
        model_version="small-1",
        catalog=build_catalog(offers, {"alice": Member("north", "base")}, bundle),
        store=store,
        caps=CapsConfig(rules=rules),
        settings=serve_config,
    )
    return create_app(serve_config, Runtime(context, partners))


@pytest.fixture
def make_small_app() -> Callable[..., FastAPI]:
    """`small_app`, for test modules (they cannot import this conftest)."""
    return small_app


@pytest.fixture
def small_service_files(tmp_path: Path) -> dict[str, Path]:
    """What `perkrank serve` needs for small_app's world: `data` (members, purchases,
    partners, offers), `bundle` (a bundle directory) and `caps` (an empty rule set)."""
    data = tmp_path / "data"
    data.mkdir()
    tables = {
        "members": "member_id,region,tier,birth_date,signup_date\nalice,north,base,,2024-01-01\n",
        "purchases": "member_id,ts,partner_id,category,amount,channel\n"
        "alice,2026-05-01 10:00:00,P1,Beauty,12.5,app\n",
        "partners": "partner_id,name,scope,regions,categories\n"
        "P1,Glow,federal,,Beauty\nP2,Fresh,federal,,Grocery\n",
        "offers": SMALL_OFFERS_CSV,
    }
    for name, text in tables.items():
        (data / f"{name}.csv").write_text(text, encoding="utf-8")
    caps = tmp_path / "caps.yaml"
    caps.write_text("rules: []\n", encoding="utf-8")
    return {"data": data, "bundle": small_bundle().save(tmp_path / "bundle"), "caps": caps}


class _Server(uvicorn.Server):
    """uvicorn that signals when it accepts connections (after the app's startup, if any)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        self.ready.set()


@contextmanager
def live_server(app: FastAPI, lifespan: str = "off") -> Iterator[str]:
    """Run `app` on a free port of 127.0.0.1 in a thread, with uvicorn's `lifespan` setting
    ("on" runs the app's startup before it is ready); yield its base URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, lifespan=lifespan, log_level="warning", access_log=False)
    server = _Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]})
    thread.start()
    try:
        assert server.ready.wait(timeout=30), "uvicorn did not start"
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join()
        listener.close()


@pytest.fixture(name="live_server")
def live_server_fixture() -> Callable[..., AbstractContextManager[str]]:
    """`live_server`, for test modules (they cannot import this conftest)."""
    return live_server


LISTENING_LINE = "Uvicorn running on"
STARTED_LINE = "Application startup complete"
"""What uvicorn logs once it listens, and once a process (each worker) finished its startup."""


@contextmanager
def perkrank_serve(
    arguments: Sequence[str], environment: dict[str, str], log_path: Path, processes: int = 1
) -> Iterator[str]:
    """`perkrank serve ARGUMENTS` on a free port of 127.0.0.1, in a process group of its own,
    its stderr copied to `log_path`; yields its URL once it listens and `processes` processes
    (1, or the number of workers) logged their startup. Stopped with SIGTERM afterwards."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "perkrank.cli", "serve", *arguments, "--port", str(port)]
    # A store call may wait out a paused shared core unless the test sets its own timeout.
    environment = {"PERKRANK_STORE_TIMEOUT_MS": str(STORE_TIMEOUT_MS)} | environment
    process = subprocess.Popen(
        command,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    ready = threading.Event()

    def copy_stderr() -> None:
        listening, started = False, 0
        with log_path.open("w", encoding="utf-8") as log:
            for line in process.stderr:
                log.write(line)
                log.flush()
                listening = listening or LISTENING_LINE in line
                started += STARTED_LINE in line
                if listening and started >= processes:
                    ready.set()
        ready.set()  # the process ended: stop waiting for it

    copier = threading.Thread(target=copy_stderr)
    copier.start()
    try:
        assert ready.wait(timeout=120), "perkrank serve did not start within 120 s"
        assert process.poll() is None, log_path.read_text(encoding="utf-8")
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
        copier.join()


@pytest.fixture(name="perkrank_serve")
def perkrank_serve_fixture() -> Callable[..., AbstractContextManager[str]]:
    """`perkrank_serve`, for test modules (they cannot import this conftest)."""
    return perkrank_serve
