"""Campaign batch decisions (`perkrank decide`'s `run_campaign`) on a real redis-server:
member decisions per second per core, and the acceptance checks at `--members` members.

Setup: a private redis-server on a free loopback port (no persistence), the synthetic bundle
of benchmarks/capacity_inputs (`--members` known members × 64 factors, `--offers` offers), the
cap rules of configs/caps.yaml plus an offer_total cap that the campaign reaches on popular
offers, one member in 50 opted out of everything and one in 50 out of e-mail.

Measured, for one uninterrupted run on the email channel (10 offers each, 1000 per chunk):
wall seconds, CPU seconds of this (the deciding) process and of redis-server (psutil), and
decisions per second of wall time, per decide-process core and per core of both together.
The floor, same run: the store's part alone (`select_many` of fixed candidate lists, no
ranking, no output) on the same server, per core the same way.

Checked: one line per member, no member twice; opted-out members get no offers; every
offer_total counter equals the offers the output shows and stays within its limit; every
member's e-mail counter equals the offers shown to them; a second run interrupted after chunk
`--kill-after` (decided and counted, not written) and then rerun writes one line per member
and leaves exactly the counters of the uninterrupted run. A third, smaller run under cProfile
says where the time goes. Results: benchmarks/results/batch_decisions.{md,json}.

    .venv/bin/python -m benchmarks.batch_decisions [--members 100000] [--offers 500]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import pstats
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import orjson
import psutil
import redis

from benchmarks.capacity_inputs import (
    TODAY,
    catalog_offers,
    member_profiles,
    synthetic_bundle,
)
from benchmarks.redis_server import redis_server
from perkrank.campaign_run import run_campaign
from perkrank.config import CONFIG_DIR, CapRule, CapsConfig, ServeConfig, load_config
from perkrank.serving.bootstrap import build_context
from perkrank.serving.domain.catalog import build_catalog
from perkrank.serving.domain.context import ServingContext
from perkrank.serving.domain.selection import Preferences, SelectionRequest
from perkrank.serving.state.redis_store import RedisStateStore

RESULTS = Path(__file__).resolve().parent / "results"
LIMIT, CHUNK, TARGET = 10, 1000, 20_000
OFFER_TOTAL = CapRule(name="campaign_total", scope="offer_total", limit=4000, window="total")
OPT_OUT_EVERY = 50


class Killed(Exception):  # noqa: N818 - stands for the process being killed
    """Raised after a chunk was decided and counted, before it is written."""


class World:
    """The bundle, catalog and rules shared by every run; a context per key prefix."""

    def __init__(self, members: int, offers: int, port: int) -> None:
        self.bundle = synthetic_bundle(members, offers, np.random.default_rng(11))
        self.profiles = member_profiles(members)
        self.catalog = build_catalog(catalog_offers(self.bundle), self.profiles, self.bundle)
        rules = load_config(CapsConfig, CONFIG_DIR / "caps.yaml").rules
        self.caps = CapsConfig(rules=[*rules, OFFER_TOTAL])
        self.url = f"redis://127.0.0.1:{port}/0"
        self.member_ids = list(self.profiles)
        self.opted_out = set(self.member_ids[::OPT_OUT_EVERY]) | set(
            self.member_ids[1::OPT_OUT_EVERY]
        )

    def context(self, prefix: str) -> ServingContext:
        settings = ServeConfig(
            redis_url=self.url, key_prefix=prefix, catalog_date=TODAY, store_timeout_ms=30_000
        )
        store = RedisStateStore(self.url, prefix, 30_000)
        for member_id in self.member_ids[::OPT_OUT_EVERY]:
            store.set_preferences(member_id, Preferences(opt_out_all=True))
        for member_id in self.member_ids[1::OPT_OUT_EVERY]:
            store.set_preferences(member_id, Preferences(opted_out_channels=frozenset({"email"})))
        return build_context(
            bundle=self.bundle,
            model_version="batch-bench",
            catalog=self.catalog,
            store=store,
            caps=self.caps,
            settings=settings,
        )


def measured(redis_process: psutil.Process, work) -> tuple[object, dict]:
    """`work()`'s result and its wall and CPU seconds (this process, redis-server)."""
    me = psutil.Process()
    own, server = me.cpu_times(), redis_process.cpu_times()
    started = time.perf_counter()
    result = work()
    wall = time.perf_counter() - started
    own_after, server_after = me.cpu_times(), redis_process.cpu_times()
    return result, {
        "wall_s": round(wall, 3),
        "decide_cpu_s": round(own_after.user + own_after.system - own.user - own.system, 3),
        "redis_cpu_s": round(
            server_after.user + server_after.system - server.user - server.system, 3
        ),
    }


def rates(count: int, times: dict) -> dict:
    decide, both = times["decide_cpu_s"], times["decide_cpu_s"] + times["redis_cpu_s"]
    return times | {
        "per_s_wall": round(count / times["wall_s"]),
        "per_s_per_decide_core": round(count / decide) if decide else None,
        "per_s_per_core_decide_and_redis": round(count / both) if both else None,
    }


def store_floor(world: World, redis_process: psutil.Process, count: int) -> dict:
    """The store's part alone: `select_many` of fixed lists for `count` members."""
    context = world.context("floor")
    candidates = context.ranker.catalog.candidates[: context.ranker.pool_size(LIMIT)]
    now, rules = time.time(), context.rules()
    requests = [
        SelectionRequest(member_id, "email", now, LIMIT, 2, candidates, candidates, rules)
        for member_id in world.member_ids[:count]
    ]

    async def select_all() -> None:
        for start in range(0, count, CHUNK):
            await context.store.select_many(requests[start : start + CHUNK])
        await context.store.close()

    _, times = measured(redis_process, lambda: asyncio.run(select_all()))
    return {"members": count} | rates(count, times)


def decide(world: World, context: ServingContext, out: Path, **options) -> object:
    return run_campaign(
        context,
        world.member_ids,
        campaign="bench",
        channel="email",
        out=out,
        limit=LIMIT,
        chunk=CHUNK,
        **options,
    )


def cap_counters(client: redis.Redis, prefix: str) -> dict[str, str]:
    """Every cap counter under `prefix` (hash fields as key/field), prefix left out."""
    found: dict[str, str] = {}
    keys = list(client.scan_iter(match=f"{prefix}:*:cap:*", count=10_000))
    pipeline = client.pipeline(transaction=False)
    for key in keys:
        pipeline.hgetall(key) if client.type(key) == "hash" else pipeline.get(key)
    for key, value in zip(keys, pipeline.execute(), strict=True):
        name = key.partition(":")[2]
        if isinstance(value, dict):
            found |= {f"{name}/{field}": count for field, count in value.items()}
        else:
            found[name] = value
    return found


def checks(world: World, client: redis.Redis, prefix: str, out: Path) -> dict:
    """The acceptance checks of one finished run (see the module docstring)."""
    lines = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    members = [line["member_id"] for line in lines]
    shown = Counter(offer["offer_id"] for line in lines for offer in line["offers"])
    counters = cap_counters(client, prefix)
    totals = {
        key.split("}")[0].split("{o:")[1]: int(count)
        for key, count in counters.items()
        if f":cap:{OFFER_TOTAL.name}:" in key
    }
    per_member = {
        key.split("}")[0].split("{m:")[1]: int(count)
        for key, count in counters.items()
        if ":cap:member_channel_day:" in key and key.endswith("/email")
    }
    shown_to = {line["member_id"]: len(line["offers"]) for line in lines if line["offers"]}
    return {
        "lines": len(lines),
        "one_line_per_member": sorted(members) == sorted(world.member_ids),
        "opted_out_members": len(world.opted_out),
        "opted_out_with_offers": sum(
            1 for line in lines if line["member_id"] in world.opted_out and line["offers"]
        ),
        "members_with_offers": len(shown_to),
        "offer_total_equals_shown": totals == dict(shown),
        "offer_total_max": max(totals.values(), default=0),
        "offer_total_limit": OFFER_TOTAL.limit,
        "offers_at_offer_total_limit": sum(1 for n in totals.values() if n == OFFER_TOTAL.limit),
        "member_email_counts_equal_shown": per_member == shown_to,
    }


def profiled(world: World, work: Path, count: int) -> list[dict]:
    """The functions taking the most time (own time) in a run over `count` members."""
    profile = cProfile.Profile(time.process_time)  # CPU time: the machine is shared
    context = world.context("profiled")
    profile.enable()
    run_campaign(
        context,
        world.member_ids[:count],
        campaign="profile",
        channel="email",
        out=work / "profiled.jsonl",
        limit=LIMIT,
        chunk=CHUNK,
    )
    profile.disable()
    stats = pstats.Stats(profile, stream=io.StringIO())
    rows = []
    for (file, line, name), (_, calls, own, total, _) in stats.stats.items():
        where = f"{Path(file).name}:{line}({name})" if line else name
        rows.append({"function": where, "calls": calls, "own_s": own, "total_s": total})
    rows.sort(key=lambda row: row["own_s"], reverse=True)
    spent = sum(row["own_s"] for row in rows)
    return [
        row
        | {"own_s": round(row["own_s"], 3), "total_s": round(row["total_s"], 3)}
        | {"own_share": round(row["own_s"] / spent, 3)}
        for row in rows[:20]
    ]


def markdown(result: dict) -> str:
    main, floor, check = result["run"], result["store_floor"], result["checks"]
    resume = result["resume"]
    lines = [
        "# Campaign batch decisions (`perkrank decide`)",
        "",
        f"Machine: {psutil.cpu_count()} cores, shared with other jobs (load average "
        f"{result['load_average']}): wall figures swing between runs, CPU seconds much less. "
        f"`python -m benchmarks.batch_decisions --members {result['members']}`: a private "
        f"redis-server, {result['members']} members, {result['offers']} offers, {LIMIT} offers "
        f"per member on e-mail, {CHUNK} members per chunk.",
        "",
        "| run | members | wall s | decide CPU s | redis CPU s | per s (wall) | "
        "per s per decide core | per s per core (decide + redis) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in (("decide (uninterrupted)", main), ("store floor: select_many only", floor)):
        lines.append(
            f"| {name} | {row['members']} | {row['wall_s']} | {row['decide_cpu_s']} | "
            f"{row['redis_cpu_s']} | {row['per_s_wall']} | {row['per_s_per_decide_core']} | "
            f"{row['per_s_per_core_decide_and_redis']} |"
        )
    ratio = main["per_s_per_decide_core"] / floor["per_s_per_decide_core"]
    lines += [
        "",
        f"Target: ≥ {TARGET} member decisions per second per core. Reached: "
        f"{main['per_s_per_decide_core']}/s per core of the deciding process "
        f"({'met' if main['per_s_per_decide_core'] >= TARGET else 'NOT met'}), "
        f"{main['per_s_per_core_decide_and_redis']}/s per core counting redis-server's CPU too. "
        f"Per decide core, the full decision runs at {ratio:.2f}× the store-only floor.",
        "",
        "## Checks",
        "",
        *(f"- {name}: {value}" for name, value in check.items()),
        "",
        f"Interrupted after chunk {resume['killed_after_chunk']} (decided and counted, not "
        f"written), then rerun: {resume['lines_before_rerun']} lines before the rerun, "
        f"{resume['rerun_decided']} decided by it, one line per member: "
        f"{resume['one_line_per_member']}, counters equal to the uninterrupted run's: "
        f"{resume['counters_equal_uninterrupted']} ({resume['counters']} counters).",
        "",
        f"## Where the time goes (cProfile, {result['profile_members']} members, own time)",
        "",
        "| function | calls | own s | share | total s |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| `{row['function']}` | {row['calls']} | {row['own_s']} | "
            f"{row['own_share']:.1%} | {row['total_s']} |"
            for row in result["profile"]
        ),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--offers", type=int, default=500)
    parser.add_argument("--kill-after", type=int, default=40)
    parser.add_argument("--profile-members", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        with redis_server(work) as (server, port):
            redis_process = psutil.Process(server.pid)
            client = redis.Redis(port=port, decode_responses=True)
            world = World(arguments.members, arguments.offers, port)
            floor = store_floor(world, redis_process, min(arguments.members, 20_000))
            whole = world.context("whole")  # opt-outs written before the clock starts
            run, times = measured(redis_process, lambda: decide(world, whole, work / "whole.jsonl"))
            check = checks(world, client, "whole", work / "whole.jsonl")

            def kill(chunk: int) -> None:
                if chunk == arguments.kill_after:
                    raise Killed

            with contextlib.suppress(Killed):
                decide(world, world.context("resumed"), work / "resumed.jsonl", before_write=kill)
            before = len((work / "resumed.jsonl").read_bytes().splitlines())
            rerun = decide(world, world.context("resumed"), work / "resumed.jsonl")
            resumed = checks(world, client, "resumed", work / "resumed.jsonl")
            whole_counters = cap_counters(client, "whole")
            resumed_counters = cap_counters(client, "resumed")
            profile = profiled(world, work, min(arguments.profile_members, arguments.members))
    result = {
        "members": arguments.members,
        "offers": arguments.offers,
        "load_average": [round(n, 1) for n in psutil.getloadavg()],
        "run": {"members": run.decided, "with_offers": run.with_offers} | rates(run.decided, times),
        "store_floor": floor,
        "checks": check,
        "resume": {
            "killed_after_chunk": arguments.kill_after,
            "lines_before_rerun": before,
            "rerun_decided": rerun.decided,
            "one_line_per_member": resumed["one_line_per_member"]
            and resumed["lines"] == before + rerun.decided,
            "counters_equal_uninterrupted": resumed_counters == whole_counters,
            "counters": len(whole_counters),
        },
        "profile_members": min(arguments.profile_members, arguments.members),
        "profile": profile,
    }
    arguments.out.mkdir(parents=True, exist_ok=True)
    (arguments.out / "batch_decisions.json").write_text(json.dumps(result, indent=2) + "\n")
    (arguments.out / "batch_decisions.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
