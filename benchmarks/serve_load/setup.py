"""The benchmark's world: synthetic data with a widened catalog, a bundle trained on it, its
own MLflow registry, and the private redis-server and `perkrank serve` processes.

The server is built by `perkrank serve` itself, that is by perkrank's one composition root
`perkrank.serving.bootstrap.bootstrap` (model, catalog, caps, store): nothing here builds
serving objects in-process, so what is measured is what production runs. Everything is cached
in the work directory; a change of MEMBERS, SEED or CATALOG_VERSION rebuilds it.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from perkrank.config import RegistryConfig

HOST = "127.0.0.1"
APP_KEY = "bench-app-key-0123456789"
ADMIN_KEY = "bench-admin-key-0123456789"
MODEL_NAME = "perkrank-bench"
"""Registered twice in the benchmark's own MLflow store: the live phase swaps version 1 for 2."""
MEMBERS = 100_000
HISTORY_MONTHS = 12
SEED = 7
ACTIVE_OFFERS = 2_000
CATALOG_VERSION = 2
"""Bump when the widening changes, so cached data is rebuilt."""
READY_TIMEOUT_SECONDS = 180.0
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Setup:
    """The benchmark's data, model and what they contain."""

    data_dir: Path
    bundle_dir: Path
    serving_day: date
    offers_valid: int
    offers_in_file: int
    members: int


@dataclass(frozen=True)
class Server:
    """A `perkrank serve` process and its Redis, both running."""

    base_url: str
    pids: dict[str, int]
    """Process ids by name: "server", "redis"."""
    command: list[str]
    """How the server was started."""


# ---------------------------------------------------------------- data and model


def prepare(work_dir: Path) -> Setup:
    """Data with ~2,000 offers valid on the serving day and a trained bundle (cached)."""
    data_dir, bundle_dir = work_dir / "data", work_dir / "train" / "bundle"
    marker = data_dir / "benchmark.json"
    wanted = {"members": MEMBERS, "seed": SEED, "catalog_version": CATALOG_VERSION}
    facts = json.loads(marker.read_text()) if marker.is_file() else {}
    if {key: facts.get(key) for key in wanted} != wanted:
        shutil.rmtree(data_dir, ignore_errors=True)
        shutil.rmtree(work_dir / "train", ignore_errors=True)
        facts = wanted | build_data(data_dir)
        marker.write_text(json.dumps(facts, indent=2) + "\n")
    if not (bundle_dir / "bundle.json").is_file():
        train_bundle(data_dir, work_dir / "train")
    return Setup(
        data_dir=data_dir,
        bundle_dir=bundle_dir,
        serving_day=date.fromisoformat(facts["serving_day"]),
        offers_valid=facts["offers_valid"],
        offers_in_file=facts["offers_in_file"],
        members=MEMBERS,
    )


def build_data(data_dir: Path) -> dict:
    """Generate the members' history up to today and widen today's catalog; return facts."""
    from perkrank.demo import history_start
    from perkrank.features.synthetic import generate

    serving_day = datetime.now(UTC).date()
    start = history_start(serving_day, HISTORY_MONTHS)
    generate(data_dir, members=MEMBERS, months=HISTORY_MONTHS, seed=SEED, start=start)
    offers_valid, offers_in_file = widen_catalog(data_dir, serving_day)
    return {
        "serving_day": serving_day.isoformat(),
        "offers_valid": offers_valid,
        "offers_in_file": offers_in_file,
    }


def widen_catalog(data_dir: Path, serving_day: date) -> tuple[int, int]:
    """Clone the offers valid on `serving_day` onto random partner × category items until
    ~ACTIVE_OFFERS are valid; return (offers valid that day, offers in the file)."""
    import pandas as pd

    offers_file = data_dir / "offers.csv"
    offers = pd.read_csv(offers_file, dtype=str, keep_default_na=False)
    partners = pd.read_csv(data_dir / "partners.csv", dtype=str, keep_default_na=False)
    day = pd.Timestamp(serving_day)
    valid = offers[
        (pd.to_datetime(offers["valid_from"]) <= day) & (pd.to_datetime(offers["valid_to"]) >= day)
    ]
    items = partners.assign(category=partners["categories"].str.split(";")).explode("category")
    copies = max(round(ACTIVE_OFFERS / max(len(valid), 1)) - 1, 0)
    rng = np.random.default_rng(SEED)
    clones = []
    for copy in range(1, copies + 1):
        item = items.iloc[rng.integers(len(items), size=len(valid))]
        federal = (item["scope"] == "federal").to_numpy()
        clones.append(
            valid.assign(
                offer_id=valid["offer_id"] + f"-x{copy}",
                partner_id=item["partner_id"].to_numpy(),
                category=item["category"].to_numpy(),
                title=item["category"].to_numpy()
                + " at "
                + item["name"].to_numpy()
                + ": "
                + valid["reward"].to_numpy(),
                # A local partner's clone takes the partner's own regions (empty column).
                regions=np.where(federal, valid["regions"].to_numpy(), ""),
            )
        )
    pd.concat([offers, *clones]).to_csv(offers_file, index=False)
    return len(valid) * (copies + 1), len(offers) + len(valid) * copies


def train_bundle(data_dir: Path, output_dir: Path) -> None:
    """Train on configs/train.yaml with cheap settings (no weight search, fewer epochs)."""
    from perkrank.config import CONFIG_DIR, TrainConfig, load_config
    from perkrank.training.pipeline import train

    config = load_config(TrainConfig, CONFIG_DIR / "train.yaml")
    config = config.model_copy(
        update={
            "blend": config.blend.model_copy(update={"fit_weights": False}),
            "lightfm": config.lightfm.model_copy(update={"epochs": 5}),
            "bpr": config.bpr.model_copy(update={"iterations": 20}),
        }
    )
    train(data_dir, config, output_dir=output_dir, register=False)


def read_member_ids(data_dir: Path) -> list[str]:
    """Every member id of the members file."""
    import pandas as pd

    return pd.read_csv(data_dir / "members.csv", usecols=["member_id"])["member_id"].tolist()


# ---------------------------------------------------------------- registry


def prepare_registry(work_dir: Path, bundle_dir: Path) -> str:
    """A sqlite MLflow store in `work_dir` with the bundle registered as versions 1 and 2
    (cached); champion is set to version 1. Returns its tracking URI."""
    from perkrank.models.registry import log_bundle

    registry = registry_config(work_dir)
    marker = work_dir / "registry" / "versions.json"
    if not marker.is_file():
        shutil.rmtree(work_dir / "registry", ignore_errors=True)
        (work_dir / "registry").mkdir(parents=True)
        for copy in (1, 2):
            log_bundle(
                bundle_dir,
                registry=registry,
                params={"copy": copy},
                metrics={},
                artifacts=[],
                tags={"purpose": "serve_load benchmark"},
            )
        marker.write_text(json.dumps({"versions": ["1", "2"]}) + "\n")
    set_champion(registry, "1")
    return registry.tracking_uri


def registry_config(work_dir: Path) -> RegistryConfig:
    """The benchmark's registry: a sqlite MLflow store under `work_dir`."""
    from perkrank.config import RegistryConfig

    tracking_uri = f"sqlite:///{(work_dir / 'registry' / 'mlflow.db').resolve()}"
    return RegistryConfig(tracking_uri=tracking_uri, model_name=MODEL_NAME, experiment="bench")


def set_champion(registry: RegistryConfig, version: str) -> None:
    """Point the registry's champion alias at `version`."""
    from perkrank.training.promotion import promote

    promote(registry, version=version, force=True)


# ---------------------------------------------------------------- processes


@contextmanager
def serving(setup: Setup, tracking_uri: str, work_dir: Path) -> Iterator[Server]:
    """A private redis-server and one `perkrank serve` process on free ports, ready to answer;
    both are stopped on exit (the server first). Logs: redis.log, serve.log in `work_dir`."""
    redis_port, serve_port = free_port(), free_port()
    env = server_environment(setup, redis_port, tracking_uri, work_dir)
    base_url = f"http://{HOST}:{serve_port}"
    redis_command = [shutil.which("redis-server") or "redis-server"]
    redis_command += ["--bind", HOST, "--port", str(redis_port), "--save", "", "--appendonly", "no"]
    serve_command = [
        *(sys.executable, "-m", "perkrank.cli", "serve", "--data", str(setup.data_dir)),
        *("--model", f"models:/{MODEL_NAME}@champion", "--port", str(serve_port)),
    ]
    with (
        running(redis_command, env, work_dir / "redis.log") as redis,
        running(serve_command, env, work_dir / "serve.log") as server,
    ):
        wait_until_ready(f"{base_url}/readyz", server, READY_TIMEOUT_SECONDS)
        yield Server(base_url, {"server": server.pid, "redis": redis.pid}, serve_command)


def server_environment(
    setup: Setup, redis_port: int, tracking_uri: str, work_dir: Path
) -> dict[str, str]:
    """This environment without PERKRANK_* or MLFLOW_* settings, plus the benchmark's."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PERKRANK_", "MLFLOW_"))
    }
    return env | {
        "PERKRANK_REDIS_URL": f"redis://{HOST}:{redis_port}/0",
        "PERKRANK_KEY_PREFIX": "bench",
        "PERKRANK_APP_API_KEYS": f"bench:{APP_KEY}",
        "PERKRANK_ADMIN_API_KEYS": f"bench-admin:{ADMIN_KEY}",
        "PERKRANK_CATALOG_DATE": setup.serving_day.isoformat(),
        "PERKRANK_TRACKING_URI": tracking_uri,
        "PERKRANK_MODEL_CACHE_DIR": str(work_dir / "model-cache"),
        "PERKRANK_MODEL_POLL_SECONDS": "3600",  # the live phase asks for its reload
        # Members who signed up in the last weeks are not all in the model (~90% known):
        # versions 1 and 2 are the same bundle, so a swap must not be refused for it.
        "PERKRANK_MIN_KNOWN_MEMBERS": "0.5",
    }


def free_port() -> int:
    """A TCP port on HOST that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the benchmark dies, even by SIGKILL (Linux)."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@contextmanager
def running(command: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """A subprocess that is terminated (then killed) on exit, whatever happens."""
    with log.open("w") as output:
        child = subprocess.Popen(
            command,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        try:
            yield child
        finally:
            child.terminate()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def wait_until_ready(url: str, child: subprocess.Popen, timeout_seconds: float) -> None:
    """Poll `url` until it answers 200; fail if the process exits or time runs out."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        try:  # waits up to 0.2 s for the process to exit; staying up is the normal case
            child.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            continue
        raise RuntimeError(f"{child.args[0]} exited with {child.returncode}")
    raise TimeoutError(f"{url} not ready after {timeout_seconds:.0f} s")
