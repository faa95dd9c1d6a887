"""Open-loop load test of `perkrank serve` with real Redis, on 127.0.0.1 only.

Setup (cached in --work-dir, default var/bench/serve): 100,000 synthetic members; the
generator's catalog widened to ~2,000 offers valid on the serving day (each of that day's
offers cloned with new ids onto other partner × category items, regions and tier kept where
the partner allows); a bundle trained on that data with cheap settings; a private
redis-server on a free port; one `perkrank serve` process with `catalog_date` = the serving
day. Each rate runs a warm-up and then a measured window: requests go out on schedule
whatever the responses (open loop) and latency counts from the scheduled send time, so a
slow server cannot hide its queueing. CPU per request of the server, Redis and the load
generators comes from /proc. The server loads its model from the benchmark's own MLflow
store (the bundle registered as versions 1 and 2); a last run at --live-rate changes the caps
and swaps the model to version 2 in the middle of its measured window. Runs of `GET /healthz`
at --floor-rates show what the HTTP stack and the generators cost alone. By default the server
has the core the machine paused least to itself, and Redis and the generators share the others
(--no-pin: no pinning).
Results: benchmarks/results/serve_load.md and .json.

    .venv/bin/python benchmarks/serve_load.py [--rates 500,1000,1500,2000,2500,3000]
        [--duration 10] [--warm-up 2] [--work-dir var/bench/serve] [--floor-rates 1000,2500]
        [--live-rate 1000] [--no-pin]
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import multiprocessing
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"
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
UNKNOWN_MEMBER_SHARE = 0.05
APP_CHANNEL_SHARE = 0.7
LIMIT = 10
GENERATORS = 2
CONNECTIONS_PER_GENERATOR = 8
MAX_IN_FLIGHT_PER_GENERATOR = 200
"""Scheduled requests beyond this many unanswered ones are not sent (counted as errors)."""
REQUEST_TIMEOUT_SECONDS = 10.0
READY_TIMEOUT_SECONDS = 180.0
PAUSE_PROBE_SECONDS = 5.0
PAUSE_SECONDS = 0.001
"""A busy loop that sees its clock jump by more than this was not running meanwhile."""
FLOOR_PATH = "/healthz"
"""No key, store or model: the server's HTTP stack and the generators alone."""
SATURATED_SHARE = 0.9
"""A rate whose achieved rate falls below this share of the target ends the ramp."""
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
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
class LoadSpec:
    """One generator process's share of one rate."""

    base_url: str
    paths: list[str]
    rate: float
    warm_up_seconds: float
    duration_seconds: float


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


def registry_config(work_dir: Path):
    from perkrank.config import RegistryConfig

    tracking_uri = f"sqlite:///{(work_dir / 'registry' / 'mlflow.db').resolve()}"
    return RegistryConfig(tracking_uri=tracking_uri, model_name=MODEL_NAME, experiment="bench")


def set_champion(registry, version: str) -> None:
    from perkrank.models.registry import promote

    promote(registry, version=version, force=True)


def read_member_ids(data_dir: Path) -> list[str]:
    """Every member id of the members file."""
    import pandas as pd

    return pd.read_csv(data_dir / "members.csv", usecols=["member_id"])["member_id"].tolist()


def request_paths(members: list[str], count: int, seed: int) -> list[str]:
    """`count` offer requests: mostly known members, a few unknown ones, app or web."""
    rng = random.Random(seed)
    paths = []
    for number in range(count):
        if rng.random() < UNKNOWN_MEMBER_SHARE:
            member_id = f"NEW-{seed}-{number}"
        else:
            member_id = rng.choice(members)
        channel = "app" if rng.random() < APP_CHANNEL_SHARE else "web"
        paths.append(f"/v1/members/{member_id}/offers?channel={channel}&limit={LIMIT}")
    return paths


# ---------------------------------------------------------------- subprocesses


def core_pauses(core: int, seconds: float) -> list[float]:
    """Pauses (ms) a busy loop pinned to `core` sees over `seconds`: time the machine gave
    the core to something else."""
    os.sched_setaffinity(0, {core})
    pauses, last = [], time.perf_counter()
    end = last + seconds
    while last < end:
        now = time.perf_counter()
        if now - last > PAUSE_SECONDS:
            pauses.append((now - last) * 1000)
        last = now
    return pauses


def machine_pauses(seconds: float) -> dict[int, dict]:
    """Per core, while nothing of the benchmark runs: how often and how long it was paused."""
    cores = sorted(os.sched_getaffinity(0))
    with multiprocessing.get_context("spawn").Pool(len(cores)) as pool:
        pauses = pool.starmap(core_pauses, [(core, seconds) for core in cores])
    return {
        core: {
            "pauses_over_1_ms": len(found),
            "pauses_over_10_ms": sum(pause > 10 for pause in found),
            "longest_ms": round(max(found, default=0.0), 1),
            "paused_share": round(sum(found) / 1000 / seconds, 4),
        }
        for core, found in zip(cores, pauses, strict=True)
    }


def quietest_core(pauses: dict[int, dict]) -> int:
    """The core the machine paused least."""
    return min(pauses, key=lambda core: pauses[core]["paused_share"])


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


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


# ---------------------------------------------------------------- load generator


def generate_load(spec: LoadSpec) -> dict:
    """Run one generator process's schedule (on uvloop when installed)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(send_on_schedule(spec))
    return uvloop.run(send_on_schedule(spec))


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection carrying one request at a time."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.request: tuple[float, bool] | None = None
        """Scheduled time and whether it is measured, while a request is out."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, path: str, scheduled: float, measured: bool) -> None:
        self.request = (scheduled, measured)
        self.transport.write(self.client.request_bytes(path))  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        header_end = self.buffer.find(b"\r\n\r\n")
        if header_end < 0:
            return
        head = bytes(self.buffer[:header_end]).lower()
        length_at = head.find(b"\r\ncontent-length:")
        if length_at < 0:
            self.fail("response without content-length")
            return
        line_end = head.find(b"\r\n", length_at + 2)
        length = int(head[length_at + 17 : line_end if line_end >= 0 else None])
        if len(self.buffer) < header_end + 4 + length:
            return
        del self.buffer[: header_end + 4 + length]
        request, self.request = self.request, None
        keep_alive = b"\r\nconnection: close" not in head
        self.client.finished(self, request, int(head[9:12]), keep_alive)

    def fail(self, kind: str) -> None:
        request, self.request = self.request, None
        self.client.failed(self, request, kind)
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, error: Exception | None) -> None:
        if self.request is not None:
            self.fail("connection lost")
        self.client.closed(self)


class Client:
    """A bounded pool of connections; requests wait in a queue for a free one."""

    def __init__(self, host: str, port: int, connections: int) -> None:
        self.host, self.port, self.size = host, port, connections
        self.headers = f" HTTP/1.1\r\nHost: {host}:{port}\r\nX-API-Key: {APP_KEY}\r\n\r\n"
        self.idle: list[Connection] = []
        self.open_count = 0
        self.waiting: deque[tuple[str, float, bool]] = deque()
        self.in_flight = 0
        self.latencies: list[float] = []
        self.errors: Counter[str] = Counter()
        self.all_answered = asyncio.Event()
        """Set when nothing is in flight any more, once `schedule_done` is true."""
        self.schedule_done = False

    def request_bytes(self, path: str) -> bytes:
        return f"GET {path}{self.headers}".encode()

    async def open(self) -> None:
        """Open connections until the pool is full."""
        loop = asyncio.get_running_loop()
        while self.open_count < self.size:
            self.open_count += 1
            try:
                _, connection = await loop.create_connection(
                    lambda: Connection(self), self.host, self.port
                )
            except OSError:
                self.open_count -= 1
                raise
            self.release(connection)

    def send(self, path: str, scheduled: float, measured: bool) -> None:
        self.in_flight += 1
        if self.idle:
            self.idle.pop().send(path, scheduled, measured)
        else:
            self.waiting.append((path, scheduled, measured))

    def release(self, connection: Connection) -> None:
        if self.waiting:
            connection.send(*self.waiting.popleft())
        else:
            self.idle.append(connection)

    def finished(self, connection: Connection, request, status: int, keep_alive: bool) -> None:
        self.answered()
        scheduled, measured = request
        if measured:
            if status == 200:
                self.latencies.append(time.perf_counter() - scheduled)
            else:
                self.errors[f"HTTP {status}"] += 1
        if keep_alive:
            self.release(connection)
        else:
            connection.transport.close()  # type: ignore[union-attr]

    def failed(self, connection: Connection, request, kind: str) -> None:
        if request is None:
            return
        self.answered()
        if request[1]:
            self.errors[kind] += 1

    def answered(self) -> None:
        self.in_flight -= 1
        if self.schedule_done and self.in_flight == 0:
            self.all_answered.set()

    def closed(self, connection: Connection) -> None:
        if connection in self.idle:
            self.idle.remove(connection)
        self.open_count -= 1
        asyncio.get_running_loop().create_task(self.reopen())

    async def reopen(self) -> None:
        try:
            await self.open()
        except OSError:
            self.errors["cannot connect"] += 1


async def send_on_schedule(spec: LoadSpec) -> dict:
    """Send `spec.rate` req/s on schedule; latency from the scheduled time, for requests
    scheduled after the warm-up. Returns raw latencies, errors by kind and timings."""
    host, _, port = spec.base_url.removeprefix("http://").partition(":")
    client = Client(host, int(port), CONNECTIONS_PER_GENERATOR)
    await client.open()
    total = int(spec.rate * (spec.warm_up_seconds + spec.duration_seconds))
    measured_from = int(spec.rate * spec.warm_up_seconds)
    send_lags: list[float] = []
    cpu_start = time.process_time()
    start = time.perf_counter() + 0.05
    sent = 0
    while sent < total:
        now = time.perf_counter()
        due = min(total, int((now - start) * spec.rate) + 1)
        for index in range(sent, due):
            scheduled = start + index / spec.rate
            measured = index >= measured_from
            if client.in_flight >= MAX_IN_FLIGHT_PER_GENERATOR:
                if measured:
                    client.errors["not sent: generator in-flight bound"] += 1
                continue
            if measured:
                send_lags.append(now - scheduled)
            client.send(spec.paths[index % len(spec.paths)], scheduled, measured)
        sent = max(sent, due)
        await asyncio.sleep(max(0.0, start + sent / spec.rate - time.perf_counter()))
    client.schedule_done = True
    if client.in_flight > 0:
        with suppress(TimeoutError):
            await asyncio.wait_for(client.all_answered.wait(), REQUEST_TIMEOUT_SECONDS)
    finished = time.perf_counter()
    client.errors["timeout"] += client.in_flight
    return {
        "latencies": client.latencies,
        "send_lags": send_lags,
        "errors": {kind: count for kind, count in client.errors.items() if count},
        "measured": total - measured_from,
        "measure_seconds": finished - (start + measured_from / spec.rate),
        "sent": total,
        "cpu_seconds": time.process_time() - cpu_start,
    }


def run_rate(
    pool,
    members: list[str],
    base_url: str,
    rate: float,
    warm_up: float,
    duration: float,
    pids: dict,
    path: str | None = None,
) -> dict:
    """One rate split over the generator processes; merged percentiles and CPU per request.
    Requests are offer requests, or all for `path` when given."""
    share = rate / GENERATORS
    count = int(share * (warm_up + duration)) + 1
    specs = [
        LoadSpec(
            base_url,
            [path] if path else request_paths(members, count, seed=int(rate) * 100 + number),
            share,
            warm_up,
            duration,
        )
        for number in range(GENERATORS)
    ]
    cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    wall_before = time.perf_counter()
    parts = pool.map(generate_load, specs)
    wall = time.perf_counter() - wall_before
    cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
    cpu["load generators"] = sum(part["cpu_seconds"] for part in parts)
    return summarize(rate, parts, cpu, wall)


class LiveChanges(threading.Thread):
    """During a measured window: a cap change at 1/3, a model swap (champion → version 2, then
    `POST /v1/admin/reload`) at 1/2; then waits until responses carry the new model."""

    def __init__(self, base_url: str, registry, member_id: str, start_in: float, span: float):
        super().__init__(daemon=True)
        self.base_url, self.registry, self.member_id = base_url, registry, member_id
        self.start_in, self.span = start_in, span
        self.facts: dict = {}

    def run(self) -> None:
        started = time.perf_counter()
        caps = admin_call(self.base_url, "GET", "/v1/caps")
        rules = [rule | {"limit": rule["limit"] + 1} for rule in caps["rules"]]
        wait_until(started + self.start_in + self.span / 3)
        changed = admin_call(self.base_url, "PUT", "/v1/caps", {"rules": rules})
        self.facts["caps_version"] = f"{caps['version']} → {changed['version']}"
        self.facts["cap_change_at_s"] = round(time.perf_counter() - started, 2)
        model_before = self.model_version()
        wait_until(started + self.start_in + self.span / 2)
        swap_started = time.perf_counter()
        set_champion(self.registry, "2")
        admin_call(self.base_url, "POST", "/v1/admin/reload")
        self.facts["model_swap_asked_at_s"] = round(swap_started - started, 2)
        deadline = swap_started + 30
        model_after = self.model_version()
        while model_after == model_before and time.perf_counter() < deadline:
            model_after = self.model_version()
        self.facts["model_version"] = f"{model_before} → {model_after}"
        self.facts["model_swap_seconds"] = round(time.perf_counter() - swap_started, 2)

    def model_version(self) -> str:
        request = urllib.request.Request(
            f"{self.base_url}/v1/members/{self.member_id}/offers?limit=1",
            headers={"X-API-Key": APP_KEY},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.load(response)["model_version"]


def admin_call(base_url: str, method: str, path: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base_url + path,
        data=data,
        method=method,
        headers={"X-API-Key": ADMIN_KEY, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def pin_cores(server_pid: int, server_core: int, other_pids: list[int]) -> None:
    """The server alone on `server_core`, the other processes on the remaining cores."""
    others = sorted(os.sched_getaffinity(0) - {server_core})
    if not others:
        return
    os.sched_setaffinity(server_pid, {server_core})
    for pid in other_pids:
        os.sched_setaffinity(pid, others)


def wait_until(moment: float) -> None:
    """Sleep until `moment` (time.perf_counter); the benchmark's schedule, not a test."""
    time.sleep(max(0.0, moment - time.perf_counter()))


def summarize(rate: float, parts: list[dict], cpu: dict, wall: float) -> dict:
    """Achieved rate, errors and latency percentiles (ms) of the measured window."""
    latencies = np.concatenate([np.asarray(part["latencies"]) for part in parts]) * 1000
    send_lags = np.concatenate([np.asarray(part["send_lags"]) for part in parts]) * 1000
    errors: Counter[str] = Counter()
    for part in parts:
        errors.update(part["errors"])
    measured = sum(part["measured"] for part in parts)
    sent = sum(part["sent"] for part in parts)
    ok = len(latencies)

    def percentile(values: np.ndarray, q: float) -> float | None:
        return round(float(np.percentile(values, q)), 2) if len(values) else None

    return {
        "target_rate": rate,
        "achieved_rate": round(ok / max(part["measure_seconds"] for part in parts), 1),
        "requests": measured,
        "ok": ok,
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "p99_ms": percentile(latencies, 99),
        "max_ms": round(float(latencies.max()), 2) if ok else None,
        "send_lag_p99_ms": percentile(send_lags, 99),
        "cpu_ms_per_request": {
            name: round(seconds / sent * 1000, 3) for name, seconds in cpu.items()
        },
        "cores_busy": {name: round(seconds / wall, 2) for name, seconds in cpu.items()},
    }


# ---------------------------------------------------------------- main


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
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", default="500,1000,1500,2000,2500,3000")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per rate")
    parser.add_argument("--warm-up", type=float, default=2.0, help="unmeasured seconds per rate")
    parser.add_argument("--work-dir", type=Path, default=Path("var/bench/serve"))
    parser.add_argument(
        "--live-rate",
        type=float,
        default=1000.0,
        help="rate of the extra run with a cap change and a model swap mid-window (0: none)",
    )
    parser.add_argument(
        "--floor-rates",
        default="1000,2500",
        help=f"rates of `GET {FLOOR_PATH}` runs: what HTTP and the generators cost alone",
    )
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="give the server the core paused least, Redis and the generators the others",
    )
    arguments = parser.parse_args()
    rates = [float(rate) for rate in arguments.rates.split(",")]
    floor_rates = [float(rate) for rate in arguments.floor_rates.split(",") if rate]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the cleanup on SIGTERM too
    arguments.work_dir.mkdir(parents=True, exist_ok=True)
    setup = prepare(arguments.work_dir)
    tracking_uri = prepare_registry(arguments.work_dir, setup.bundle_dir)
    pauses = machine_pauses(PAUSE_PROBE_SECONDS)
    print(json.dumps({"machine_pauses": pauses}), file=sys.stderr, flush=True)

    redis_port, serve_port = free_port(), free_port()
    env = server_environment(setup, redis_port, tracking_uri, arguments.work_dir)
    base_url = f"http://{HOST}:{serve_port}"
    redis_command = [shutil.which("redis-server") or "redis-server"]
    redis_command += ["--bind", HOST, "--port", str(redis_port), "--save", "", "--appendonly", "no"]
    serve_command = [
        *(sys.executable, "-m", "perkrank.cli", "serve", "--data", str(setup.data_dir)),
        *("--model", f"models:/{MODEL_NAME}@champion", "--port", str(serve_port)),
    ]
    results: list[dict] = []
    floor: list[dict] = []
    live: dict | None = None
    with ExitStack() as stack:
        redis = stack.enter_context(running(redis_command, env, arguments.work_dir / "redis.log"))
        server = stack.enter_context(running(serve_command, env, arguments.work_dir / "serve.log"))
        wait_until_ready(f"{base_url}/readyz", server, READY_TIMEOUT_SECONDS)
        if arguments.pin:
            # The generators inherit the benchmark's own cores.
            pin_cores(server.pid, quietest_core(pauses), [redis.pid, os.getpid()])
        pool = stack.enter_context(multiprocessing.get_context("spawn").Pool(GENERATORS))
        pids = {"server": server.pid, "redis": redis.pid}
        members = read_member_ids(setup.data_dir)
        for rate in floor_rates:
            result = run_rate(
                pool,
                members,
                base_url,
                rate,
                arguments.warm_up,
                arguments.duration,
                pids,
                FLOOR_PATH,
            )
            floor.append(result)
            print(json.dumps(result), file=sys.stderr, flush=True)
        for rate in rates:
            result = run_rate(
                pool, members, base_url, rate, arguments.warm_up, arguments.duration, pids
            )
            results.append(result)
            print(json.dumps(result), file=sys.stderr, flush=True)
            if result["achieved_rate"] < SATURATED_SHARE * rate:
                break
        if arguments.live_rate > 0:
            changes = LiveChanges(
                base_url,
                registry_config(arguments.work_dir),
                members[0],
                arguments.warm_up,
                arguments.duration,
            )
            changes.start()
            live = run_rate(
                pool,
                members,
                base_url,
                arguments.live_rate,
                arguments.warm_up,
                arguments.duration,
                pids,
            )
            changes.join()
            live["live_changes"] = changes.facts
            print(json.dumps(live), file=sys.stderr, flush=True)
    write_results(setup, results, floor, pauses, live, arguments, serve_command)


def verdicts(results: list[dict]) -> dict[str, bool | None]:
    """The issue's targets: p99 ≤ 2 ms at 1,000 req/s; ≥ 2,500 req/s with p99 ≤ 10 ms."""

    def met(target: float, limit_ms: float) -> bool | None:
        runs = [r for r in results if r["target_rate"] >= target]
        if not runs:
            saturated = [r for r in results if r["achieved_rate"] < SATURATED_SHARE * target]
            return False if saturated and saturated[-1] is results[-1] else None
        return any(
            r["achieved_rate"] >= SATURATED_SHARE * r["target_rate"]
            and r["errors"] == 0
            and r["p99_ms"] is not None
            and r["p99_ms"] <= limit_ms
            for r in runs
        )

    return {
        "p99 <= 2 ms at 1,000 req/s": met(1000, 2.0),
        ">= 2,500 req/s with p99 <= 10 ms": met(2500, 10.0),
    }


def write_results(
    setup: Setup,
    results: list[dict],
    floor: list[dict],
    pauses: dict[int, dict],
    live: dict | None,
    arguments,
    serve_command,
) -> None:
    """benchmarks/results/serve_load.json and .md."""
    from perkrank.config import CONFIG_DIR, CapsConfig, ServeConfig, load_config

    caps = load_config(CapsConfig, CONFIG_DIR / "caps.yaml")
    serve = load_config(ServeConfig, CONFIG_DIR / "serve.yaml")
    facts = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "members": setup.members,
        "offers_valid_on_serving_day": setup.offers_valid,
        "offers_in_catalog_file": setup.offers_in_file,
        "serving_day": setup.serving_day.isoformat(),
        "cap_rules": [f"{r.name}: {r.limit} per {r.scope} per {r.window}" for r in caps.rules],
        "max_offers_per_partner": serve.max_offers_per_partner,
        "candidate_pool": f"limit × {serve.candidate_pool_multiplier} + "
        f"{serve.candidate_pool_margin} per order",
        "request": f"limit={LIMIT}, {1 - UNKNOWN_MEMBER_SHARE:.0%} known members (uniform), "
        f"channel app {APP_CHANNEL_SHARE:.0%} / web",
        "server": "one `perkrank serve` process (uvicorn), max_in_flight "
        f"{serve.max_in_flight}, real Redis (private redis-server, no persistence)",
        "load_generators": f"{GENERATORS} processes, asyncio protocols on uvloop, "
        f"{CONNECTIONS_PER_GENERATOR} keep-alive connections and at most "
        f"{MAX_IN_FLIGHT_PER_GENERATOR} requests in flight each",
        "pinning": f"server alone on core {quietest_core(pauses)} (the one paused least); Redis "
        "and the generators on the other cores"
        if arguments.pin
        else "none: every process may run on every core",
        "warm_up_seconds": arguments.warm_up,
        "measured_seconds": arguments.duration,
        "cpu_count": os.cpu_count(),
        "machine": f"{platform.machine()} {_cpu_model()}, Python {platform.python_version()}",
        "redis": subprocess.run(
            ["redis-server", "--version"], capture_output=True, text=True
        ).stdout.strip(),
        "command": " ".join([".venv/bin/python benchmarks/serve_load.py", *sys.argv[1:]]).strip(),
        "server_command": " ".join(serve_command),
    }
    targets = verdicts(results)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "serve_load.json").write_text(
        json.dumps(
            {
                "setup": facts,
                "targets": targets,
                "results": results,
                "floor": floor,
                "machine_pauses": pauses,
                "live_run": live,
            },
            indent=2,
        )
        + "\n"
    )
    text = markdown(facts, targets, results, floor, pauses, live)
    (RESULTS / "serve_load.md").write_text(text)
    print(text)


TABLE_HEADER = [
    "| target req/s | achieved req/s | requests | errors | p50 ms | p95 ms | p99 ms | "
    "max ms | CPU ms/request: server / Redis / generators | cores used by the three |",
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
]


def table_row(r: dict) -> str:
    return (
        f"| {r['target_rate']:.0f} | {r['achieved_rate']:.0f} | {r['requests']} | "
        f"{r['errors']}{' (' + _kinds(r['error_kinds']) + ')' if r['errors'] else ''} | "
        f"{r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | {r['max_ms']} | "
        f"{r['cpu_ms_per_request']['server']} / {r['cpu_ms_per_request']['redis']} / "
        f"{r['cpu_ms_per_request']['load generators']} | "
        f"{_cores_used(r):.2f} |"
    )


def live_section(live: dict | None) -> list[str]:
    """The run with a cap change and a model swap in its measured window."""
    if live is None:
        return []
    facts = live["live_changes"]
    return [
        "## Live changes under load",
        "",
        f"At {live['target_rate']:.0f} req/s, the caps were changed through `PUT /v1/caps` "
        f"(every limit + 1, caps version {facts.get('caps_version')}) a third into the "
        "measured window, and at half of it the registry's champion alias moved to version 2 "
        "and `POST /v1/admin/reload` was sent: the process loaded, smoke-checked and swapped "
        f"the model ({facts.get('model_version')}) in {facts.get('model_swap_seconds')} s "
        "while serving.",
        "",
        *TABLE_HEADER,
        table_row(live),
        "",
    ]


def floor_section(floor: list[dict]) -> list[str]:
    """The same load on `GET /healthz`: no key, store, model or ranking."""
    if not floor:
        return []
    return [
        f"## Floor: `GET {FLOOR_PATH}` under the same load",
        "",
        "What uvicorn, FastAPI, the middleware and the load generators cost on this machine "
        "with no work behind them: no offers request can be faster.",
        "",
        *TABLE_HEADER,
        *[table_row(r) for r in floor],
        "",
    ]


def pauses_section(pauses: dict[int, dict]) -> list[str]:
    """How often the machine took a core away from a busy loop, before the benchmark ran."""
    rows = [
        f"| {core} | {p['pauses_over_1_ms']} | {p['pauses_over_10_ms']} | {p['longest_ms']} | "
        f"{p['paused_share']:.2%} |"
        for core, p in pauses.items()
    ]
    return [
        "## The machine: pauses of an idle core",
        "",
        f"A busy loop pinned to each core for {PAUSE_PROBE_SECONDS:.0f} s with nothing else of "
        "the benchmark running, counting the times its clock jumped by more than 1 ms (the "
        "core was given to something outside this machine's processes, or to the kernel). "
        "Every pause of the server's core delays every request in flight by as much.",
        "",
        "| core | pauses > 1 ms | pauses > 10 ms | longest ms | share of time paused |",
        "|---|---:|---:|---:|---:|",
        *rows,
        "",
    ]


def markdown(
    facts: dict,
    targets: dict,
    results: list[dict],
    floor: list[dict],
    pauses: dict[int, dict],
    live: dict | None,
) -> str:
    """The results table with the setup facts and the verdict on each target."""

    def verdict(value: bool | None) -> str:
        return {True: "met", False: "NOT met", None: "not measured"}[value]

    return "\n".join(
        [
            "# Serving load test: one `perkrank serve` process, real Redis, open loop",
            "",
            f"Command: `{facts['command']}` ({facts['date']})",
            "",
            *TABLE_HEADER,
            *[table_row(r) for r in results],
            "",
            "Latency is measured from each request's scheduled send time (no coordinated "
            "omission), over every response of the measured window; errors are non-200 "
            "responses, exceptions and requests the generators did not send because too many "
            'were unanswered. "cores used" adds up the CPU seconds of the server, Redis and '
            "the generators per second of the run (2 cores = 2.0). The ramp stops at the "
            "first rate achieved below "
            f"{SATURATED_SHARE:.0%} of its target.",
            "",
            "Targets (one serving process on this machine, load generators and Redis beside it):",
            "",
            *[f"- {name}: **{verdict(value)}**" for name, value in targets.items()],
            "",
            *floor_section(floor),
            *pauses_section(pauses),
            *live_section(live),
            "## Setup",
            "",
            *[
                f"- {name.replace('_', ' ')}: {_text(value)}"
                for name, value in facts.items()
                if name not in ("command", "date")
            ],
            "",
        ]
    )


def _cores_used(result: dict) -> float:
    """Cores the server, Redis and the generators kept busy together."""
    return sum(result["cores_busy"].values())


def _text(value: object) -> str:
    return "; ".join(value) if isinstance(value, list) else str(value)


def _kinds(kinds: dict[str, int]) -> str:
    return ", ".join(f"{kind}: {count}" for kind, count in sorted(kinds.items()))


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return platform.processor()


if __name__ == "__main__":
    main()
