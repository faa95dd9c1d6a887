"""What `ObservabilityMiddleware` costs per request: request id, latency histogram and a JSON
access line (written to /dev/null, as to a file).

A minimal ASGI app (it names its route as a router would and answers 200) is called straight,
without sockets, alone and wrapped in the middleware, in alternating rounds of --requests;
the best round of each counts, and the difference is the middleware's cost. Results:
benchmarks/results/observability_overhead.md.

    .venv/bin/python benchmarks/observability_overhead.py [--requests 20000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from pathlib import Path
from typing import Any

from starlette.routing import Route

from perkrank.serving.api.logs import JsonFormatter
from perkrank.serving.api.observability import ObservabilityMiddleware

RESULTS = Path(__file__).with_name("results") / "observability_overhead.md"
ROUTE = Route("/v1/members/{member_id}/offers", lambda request: None)
PATH = "/v1/members/M000042/offers"
SCOPE = {
    "type": "http",
    "method": "GET",
    "path": PATH,
    "raw_path": PATH.encode(),
    "query_string": b"",
    "headers": [(b"host", b"bench"), (b"x-api-key", b"some-app-key-0001")],
}


async def answer(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The app behind the middleware: routed, then 200 with a small body."""
    scope["route"] = ROUTE
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def microseconds_per_request(app: Any, requests: int) -> float:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    started = time.perf_counter()
    for _ in range(requests):
        await app(dict(SCOPE), receive, send)
    return (time.perf_counter() - started) / requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    arguments = parser.parse_args()
    with Path("/dev/null").open("w") as null:
        handler = logging.StreamHandler(null)
        handler.setFormatter(JsonFormatter())
        logging.getLogger().addHandler(handler)
        logging.getLogger().setLevel(logging.INFO)
        apps = {"bare": answer, "observed": ObservabilityMiddleware(answer)}
        rounds: dict[str, list[float]] = {name: [] for name in apps}
        for _ in range(arguments.rounds):
            for name, app in apps.items():
                rounds[name].append(asyncio.run(microseconds_per_request(app, arguments.requests)))
    bare, observed = min(rounds["bare"]), min(rounds["observed"])
    text = (
        "| app | µs per request |\n|---|---:|\n"
        f"| minimal ASGI app | {bare:.1f} |\n"
        f"| wrapped in ObservabilityMiddleware | {observed:.1f} |\n"
        f"| **middleware overhead** | **{observed - bare:.1f}** |\n"
    )
    RESULTS.write_text(
        "# ObservabilityMiddleware overhead\n\n"
        f"`benchmarks/observability_overhead.py`: {arguments.requests} requests per round, "
        f"best of {arguments.rounds} rounds, straight through ASGI.\n\n{text}",
        encoding="utf-8",
    )
    print(text, end="")


if __name__ == "__main__":
    main()
