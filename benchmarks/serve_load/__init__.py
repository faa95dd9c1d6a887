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
at --floor-rates show what the HTTP stack and the generators cost alone; first, --ratio-pairs
pairs of a `GET /healthz` run and an offers run at --ratio-rate give the server's CPU per
offers request over its CPU per `/healthz` request (median and range). By default the server
has the core the machine paused least to itself, and Redis and the generators share the others
(--no-pin: no pinning).
Results: benchmarks/results/serve_load.md and .json (--out: another directory).

    .venv/bin/python -m benchmarks.serve_load [--rates 500,1000,1500,2000,2500,3000]
        [--duration 10] [--warm-up 2] [--work-dir var/bench/serve] [--floor-rates 1000,2500]
        [--live-rate 1000] [--ratio-pairs 5] [--ratio-rate 500] [--no-pin]
        [--out benchmarks/results]

Modules, one job each: `setup` (data, catalog, model registry, the Redis and server
processes), `machine` (core pauses, pinning, CPU seconds), `client` (the asyncio HTTP client),
`run` (the open-loop schedule, the rates, the live changes), `cpu_ratio` (the alternating
pairs), `report` (verdicts, markdown and
JSON), `__main__` (the command line).
"""
