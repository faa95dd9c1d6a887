"""CPU per offers request beside `GET /healthz`, in process: what the offers path adds.

The app is built as `perkrank serve` builds it (`create_app` over the serve_load benchmark's
data, model and environment, lifespan running, a private redis-server) and called directly as
ASGI, one request at a time on uvloop: no HTTP parsing, sockets or load generators, so the
difference between the two is the offers path's own work (parameters, ranking, the store
call, decision, JSON). Blocks of `--requests` `/healthz` and offers requests alternate
`--rounds` times; each block's process CPU (user + system) per request is kept, and the
medians reported. Cheap enough to compare two versions of the code minutes apart; run the
process under `py-spy record` for where the time goes.

Members are drawn as serve_load draws them (`request_paths`: uniform over the 100,000
members, 5% unknown), so a known member's kept work (`MemberCache`) is rarely there: the
cold-member figure. `--members N` draws from the first N members only, so that nearly every
request repeats a member already ranked that day: the repeat-member figure. The member
cache's hit rate over the measured blocks is reported beside each.

    .venv/bin/python -m benchmarks.offers_cpu [--requests 1000] [--rounds 5] [--warm-up 3000]
        [--members 0] [--work-dir var/bench/serve]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from pathlib import Path

from starlette.types import ASGIApp

from benchmarks.redis_server import redis_server
from benchmarks.serve_load.run import FLOOR_PATH, request_paths
from benchmarks.serve_load.setup import (
    APP_KEY,
    MODEL_NAME,
    prepare,
    prepare_registry,
    read_member_ids,
    server_environment,
)

STORE_TIMEOUT_MS = 3000
"""Generous: a loaded machine must not turn a slow reply into a 503 mid-measurement."""


async def call(app: ASGIApp, path: str) -> None:
    """One GET of `path` with the app key; raises unless it answers 200."""
    route, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": route,
        "raw_path": route.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"bench"), (b"x-api-key", APP_KEY.encode())],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    await app(scope, receive, send)
    if sent[0]["status"] != 200:
        raise RuntimeError(f"{path}: {sent[0]['status']} {sent[1:]}")


async def measure(app: ASGIApp, paths: list[str], arguments: argparse.Namespace) -> dict:
    """Alternating blocks under the app's lifespan; CPU ms per request of each block."""
    startup, events = asyncio.Queue(), asyncio.Queue()
    await startup.put({"type": "lifespan.startup"})
    lifespan = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    running = asyncio.ensure_future(app(lifespan, startup.get, events.put))
    if (await events.get())["type"] != "lifespan.startup.complete":
        raise RuntimeError("the app did not start")
    for path in paths[: arguments.warm_up]:  # builds the segments the requests need
        await call(app, path)
    blocks: dict[str, list[float]] = {"healthz": [], "offers": []}
    cache_before = _cache_counts(app)
    offset = arguments.warm_up
    for _ in range(arguments.rounds):
        for kind in blocks:
            started = time.process_time()
            for number in range(arguments.requests):
                path = FLOOR_PATH if kind == "healthz" else paths[offset + number]
                await call(app, path)
            blocks[kind].append((time.process_time() - started) / arguments.requests * 1000)
        offset += arguments.requests
    hits, misses = (
        after - before for after, before in zip(_cache_counts(app), cache_before, strict=True)
    )
    await startup.put({"type": "lifespan.shutdown"})
    await events.get()
    await running
    healthz, offers = (statistics.median(blocks[kind]) for kind in ("healthz", "offers"))
    return {
        "members": arguments.members or "all",
        "healthz_ms": round(healthz, 4),
        "offers_ms": round(offers, 4),
        "ratio": round(offers / healthz, 3),
        "offers_extra_ms": round(offers - healthz, 4),
        "member_cache_hit_rate": round(hits / (hits + misses), 3) if hits + misses else None,
        "blocks_ms": {
            kind: [round(value, 4) for value in values] for kind, values in blocks.items()
        },
    }


def _cache_counts(app: ASGIApp) -> tuple[int, int]:
    """Hits and misses of the serving ranker's member cache so far ((0, 0) without one)."""
    members = getattr(app.state.holder.current.ranker, "members", None)  # type: ignore[attr-defined]
    return (members.hits, members.misses) if members is not None else (0, 0)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.offers_cpu")
    parser.add_argument("--requests", type=int, default=1000, help="requests per block")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warm-up", type=int, default=3000, help="offers requests first")
    parser.add_argument(
        "--members", type=int, default=0, help="draw from the first N members (0: all)"
    )
    parser.add_argument("--work-dir", type=Path, default=Path("var/bench/serve"))
    arguments = parser.parse_args()
    setup = prepare(arguments.work_dir)
    tracking_uri = prepare_registry(arguments.work_dir, setup.bundle_dir)
    count = arguments.warm_up + arguments.rounds * arguments.requests
    members = read_member_ids(setup.data_dir)
    paths = request_paths(members[: arguments.members or None], count, 1)
    with redis_server() as (_, port):
        os.environ.update(server_environment(setup, port, tracking_uri, arguments.work_dir))
        import uvloop

        from perkrank.config import CONFIG_DIR, ServeConfig, load_config
        from perkrank.serving.api.app import create_app

        settings = load_config(ServeConfig, CONFIG_DIR / "serve.yaml").model_copy(
            update={
                "model_uri": f"models:/{MODEL_NAME}@champion",
                "store_timeout_ms": STORE_TIMEOUT_MS,
            }
        )
        app = create_app(settings, data_dir=setup.data_dir)
        result = uvloop.run(measure(app, paths, arguments))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
