"""The measured inputs of the capacity plan (docs/capacity.md): Redis and memory per member.

- **Redis per request and per member:** the app in process (its lifespan running: decisions
  are recorded) over a private redis-server, with a synthetic bundle of `--members` members
  and `--offers` offers and the cap rules of configs/caps.yaml. Every member gets
  `--requests-per-member` offers requests; `INFO` before and after gives the commands, the
  bytes in and out, and the memory per request and per member.
- **Bundle memory per member and per item:** the `.npy` bytes of the ranker's member and item
  arrays (memory-mapped: one copy per host in the page cache, shared by every process) and
  the Python heap a process adds per member when it loads the bundle and the members file
  (id maps, member profiles; tracemalloc).
- **CPU per request:** read from benchmarks/results/serve_load.json (one `perkrank serve`
  process under open-loop load); this script does not measure it again.

    .venv/bin/python -m benchmarks.capacity_inputs [--members 20000] [--offers 2000]
        [--requests-per-member 3] [--out benchmarks/results] [--plan-only]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import tracemalloc
from datetime import UTC, date, datetime, timedelta
from math import ceil
from pathlib import Path

import numpy as np
import redis

from benchmarks.redis_server import redis_server
from perkrank.config import CONFIG_DIR, CapsConfig, ServeConfig, load_config
from perkrank.features.vocabulary import item_id
from perkrank.models.bundle import Bundle
from perkrank.models.factors import Factors

RESULTS = Path(__file__).resolve().parent / "results"
DIM = 64
"""The ranker's vector size (configs/train.yaml: factors)."""
REGIONS, TIERS = ["north", "south", "east", "west"], ["base", "silver", "gold", "vip"]
CATEGORIES = ["Beauty", "Grocery", "Bakery", "Fuel", "Travel", "Dining", "Fashion", "Pets"]
APP_KEY = "capacity-app-key-0001"
TODAY = date(2026, 6, 15)
DECISIONS_KEPT = ServeConfig().decisions_kept
"""Decisions the log keeps (a capped stream): its memory stops growing there."""


def synthetic_bundle(members: int, offers: int, rng: np.random.Generator) -> Bundle:
    """A ranker of `members` × DIM and `offers` items, and a one-dimensional fallback."""
    items = [
        item_id(f"P{n // len(CATEGORIES):04d}", CATEGORIES[n % len(CATEGORIES)])
        for n in range(offers)
    ]
    features = [f"region={region}" for region in REGIONS] + [f"tier={tier}" for tier in TIERS]
    ranker = Factors(
        member_ids=[f"M{n:08d}" for n in range(members)],
        member_vectors=rng.normal(size=(members, DIM)).astype(np.float32),
        item_ids=items,
        item_vectors=rng.normal(size=(offers, DIM)).astype(np.float32),
        item_biases=rng.normal(size=offers).astype(np.float32),
        member_feature_ids=features,
        member_feature_vectors=rng.normal(size=(len(features), DIM)).astype(np.float32),
        name="synthetic",
    )
    fallback = Factors(
        member_ids=[],
        member_vectors=np.zeros((0, 1)),
        item_ids=items,
        item_vectors=rng.random((offers, 1)),
        item_biases=np.zeros(offers),
        member_feature_ids=features,
        member_feature_vectors=np.ones((len(features), 1)),
    )
    return Bundle(ranker=ranker, fallback=fallback)


def member_profiles(members: int) -> dict:
    from perkrank.serving.domain.catalog import Member

    return {
        f"M{n:08d}": Member(REGIONS[n % len(REGIONS)], TIERS[n % len(TIERS)], 19_000 + n % 900)
        for n in range(members)
    }


def catalog_offers(bundle: Bundle) -> list:
    from perkrank.serving.domain.catalog import Offer

    offers = []
    for number, item in enumerate(bundle.ranker.item_ids.tolist()):
        partner_id, _, category = item.partition("|")
        offers.append(
            Offer(
                f"O{number:06d}",
                partner_id,
                partner_id,
                category=category,
                title=item,
                min_tier="base",
                scope="federal",
                reward="10% back",
                valid_from=TODAY - timedelta(days=10),
                valid_to=TODAY + timedelta(days=10),
            )
        )
    return offers


def bundle_memory(bundle: Bundle, work: Path) -> dict:
    """Bytes per member and per item on disk (mapped) and on the Python heap once loaded."""
    directory = bundle.save(work / "bundle")
    arrays = directory / "ranker" / "arrays"
    members, items = len(bundle.ranker.member_ids), len(bundle.ranker.item_ids)
    member_files = sum(
        (arrays / f"{name}.npy").stat().st_size for name in ("member_ids", "member_vectors")
    )
    item_files = sum(
        (arrays / f"{name}.npy").stat().st_size
        for name in ("item_ids", "item_vectors", "item_biases")
    )
    tracemalloc.start()
    loaded = Bundle.load(directory)
    profiles = member_profiles(members)
    heap, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del loaded, profiles
    return {
        "mapped_bytes_per_member": round(member_files / members, 1),
        "mapped_bytes_per_item": round(item_files / items, 1),
        "heap_bytes_per_member": round(heap / members, 1),
    }


def redis_costs(bundle: Bundle, requests_per_member: int, work: Path) -> dict:
    """Commands, bytes and memory per offers request and per member, on a private Redis."""
    from fastapi.testclient import TestClient

    from perkrank.serving.api.app import create_app
    from perkrank.serving.bootstrap import Runtime, build_context
    from perkrank.serving.domain.catalog import build_catalog
    from perkrank.serving.state.ports import open_store

    with redis_server(work) as (_, port):
        client = redis.Redis(port=port)
        settings = ServeConfig(
            redis_url=f"redis://127.0.0.1:{port}/0",
            catalog_date=TODAY,
            app_api_keys=f"capacity:{APP_KEY}",
            store_timeout_ms=5000,  # a loaded shared machine: count, do not time out
            model_uri=str(work / "bundle"),
        )
        members = member_profiles(len(bundle.ranker.member_ids))
        context = build_context(
            bundle=bundle,
            model_version="capacity",
            store=open_store(settings),
            catalog=build_catalog(catalog_offers(bundle), members, bundle),
            caps=load_config(CapsConfig, CONFIG_DIR / "caps.yaml"),
            settings=settings,
        )
        app = create_app(settings, Runtime(context))
        with TestClient(app) as http:
            http.get(
                f"/v1/members/{next(iter(members))}/offers?limit=10", headers={"X-API-Key": APP_KEY}
            )
            before = _info(client)
            requests = 0
            for round_number in range(requests_per_member):
                if round_number == 1:
                    first_round = _info(client)
                for member_id in members:
                    response = http.get(
                        f"/v1/members/{member_id}/offers?channel=app&limit=10",
                        headers={"X-API-Key": APP_KEY},
                    )
                    response.raise_for_status()
                    requests += 1
        after = _info(client)
        keys = client.dbsize()
    calls = {
        name: after["calls"].get(name, 0) - before["calls"].get(name, 0) for name in after["calls"]
    }
    return {
        "requests": requests,
        "members": len(members),
        "commands_per_request": round(sum(calls.values()) / requests, 2),
        "commands_by_name_per_request": {
            name: round(count / requests, 3) for name, count in sorted(calls.items()) if count
        },
        "bytes_in_per_request": round((after["in"] - before["in"]) / requests, 1),
        "bytes_out_per_request": round((after["out"] - before["out"]) / requests, 1),
        "memory_bytes_per_member_first_request": round(
            (first_round["memory"] - before["memory"]) / len(members), 1
        ),
        "memory_bytes_per_later_request": round(
            (after["memory"] - first_round["memory"]) / (requests - len(members)), 1
        ),
        "keys_per_member": round(keys / len(members), 2),
    }


def _info(client: redis.Redis) -> dict:
    stats, memory = client.info("stats"), client.info("memory")
    commands = client.info("commandstats")
    return {
        "in": stats["total_net_input_bytes"],
        "out": stats["total_net_output_bytes"],
        "memory": memory["used_memory"],
        "calls": {
            name.removeprefix("cmdstat_"): value["calls"] for name, value in commands.items()
        },
    }


def serve_load_cpu() -> dict | None:
    """Server and Redis CPU ms per request of the load benchmark at 1,000 req/s, if run."""
    path = RESULTS / "serve_load.json"
    if not path.is_file():
        return None
    result = json.loads(path.read_text())
    runs = [r for r in result["results"] if r["target_rate"] == 1000]
    floor = [r for r in result["floor"] if r["target_rate"] == 1000]
    if not runs:
        return None
    return {
        "date": result["setup"]["date"],
        "server_cpu_ms_per_request": runs[0]["cpu_ms_per_request"]["server"],
        "redis_cpu_ms_per_request": runs[0]["cpu_ms_per_request"]["redis"],
        "healthz_server_cpu_ms_per_request": floor[0]["cpu_ms_per_request"]["server"]
        if floor
        else None,
    }


BUSY_SHARE = 0.6
"""Share of a core a serving process or a Redis shard is planned to use (headroom for bursts,
swaps, AOF rewrites and a lost replica)."""
SHARD_MEMORY_BYTES = 25e9
"""Data per Redis shard: half of a 64 GB host, room for the copy-on-write of AOF rewrites."""
PROGRAMS = [(members, rate) for members in (1e6, 10e6, 50e6) for rate in (1e3, 10e3, 50e3)]


def plan(result: dict) -> list[dict]:
    """Serving processes, Redis shards and memory for each program size and request rate."""
    cpu, redis_costs, bundle = result["cpu"], result["redis"], result["bundle"]
    rows = []
    for members, rate in PROGRAMS:
        processes = max(2, ceil(rate * cpu["server_cpu_ms_per_request"] / 1000 / BUSY_SHARE))
        redis_bytes = (
            members * redis_costs["memory_bytes_per_member_first_request"]
            + min(rate * 86_400, DECISIONS_KEPT) * redis_costs["memory_bytes_per_later_request"]
        )
        shards = max(
            ceil(rate * cpu["redis_cpu_ms_per_request"] / 1000 / BUSY_SHARE),
            ceil(redis_bytes / SHARD_MEMORY_BYTES),
        )
        rows.append(
            {
                "members": int(members),
                "requests_per_second": int(rate),
                "serving_processes": processes,
                "heap_gb_per_process": round(members * bundle["heap_bytes_per_member"] / 1e9, 1),
                "mapped_gb_per_host": round(members * bundle["mapped_bytes_per_member"] / 1e9, 1),
                "redis_shards": shards,
                "redis_gb": round(redis_bytes / 1e9, 1),
            }
        )
    return rows


def markdown(result: dict) -> str:
    lines = [
        "# Capacity inputs: what one member, one item and one request cost",
        "",
        f"Command: `{result['command']}` ({result['date']})",
        "",
        "## Bundle (per serving host and process)",
        "",
        *[f"- {key.replace('_', ' ')}: {value}" for key, value in result["bundle"].items()],
        "",
        f"## Redis (`{result['redis']['requests']}` offers requests over "
        f"{result['redis']['members']} members, cap rules of configs/caps.yaml)",
        "",
        *[f"- {key.replace('_', ' ')}: {value}" for key, value in result["redis"].items()],
        "",
        "## CPU per request (from benchmarks/results/serve_load.json)",
        "",
        *[f"- {key.replace('_', ' ')}: {value}" for key, value in (result["cpu"] or {}).items()],
        "",
        "## The plan these give (docs/capacity.md explains each column)",
        "",
        "| members | req/s | serving processes | heap GB per process | mapped GB per host | "
        "Redis shards | Redis GB |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        *[
            f"| {r['members']:,} | {r['requests_per_second']:,} | {r['serving_processes']} | "
            f"{r['heap_gb_per_process']} | {r['mapped_gb_per_host']} | {r['redis_shards']} | "
            f"{r['redis_gb']} |"
            for r in result.get("plan", [])
        ],
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--offers", type=int, default=2_000)
    parser.add_argument("--requests-per-member", type=int, default=3, help="at least 2")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--plan-only",
        action="store_true",
        help="recompute the plan from the stored capacity_inputs.json and serve_load.json",
    )
    arguments = parser.parse_args()
    if arguments.plan_only:
        result = json.loads((arguments.out / "capacity_inputs.json").read_text())
        result["cpu"] = serve_load_cpu()
        result["plan"] = plan(result)
        write(arguments.out, result)
        return
    bundle = synthetic_bundle(arguments.members, arguments.offers, np.random.default_rng(7))
    work = Path(tempfile.mkdtemp(prefix="perkrank-capacity-"))
    try:
        result = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": " ".join(
                [
                    ".venv/bin/python -m benchmarks.capacity_inputs",
                    f"--members {arguments.members} --offers {arguments.offers}",
                    f"--requests-per-member {arguments.requests_per_member}",
                ]
            ),
            "bundle": bundle_memory(bundle, work),
            "redis": redis_costs(bundle, arguments.requests_per_member, work),
            "cpu": serve_load_cpu(),
        }
        if result["cpu"] is not None:
            result["plan"] = plan(result)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write(arguments.out, result)


def write(out: Path, result: dict) -> None:
    """`out`/capacity_inputs.json and .md; the markdown is printed too."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "capacity_inputs.json").write_text(json.dumps(result, indent=2) + "\n")
    text = markdown(result)
    (out / "capacity_inputs.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
