"""The local floor's price: local-partner share served and the NDCG@10 it costs.

On synthetic data (`features.synthetic`: federal partners everywhere, local partners in one or
two regions), an ALS + repeat blend (regional popularity fallback) is fitted on the purchases
before December; every sampled member with a December purchase matching an offer of the
December catalog then asks for 10 offers on 1 December, served by `OfferRanker.rank` through
the in-process store exactly as `/v1/members/{id}/offers` serves them, once per local floor
(`CapsConfig.local_floor`, the same share in every region; no frequency caps, serve.yaml's
per-partner limit). As in benchmarks/ranker_serving.py, every offer of the 13 monthly
catalogs is made valid on the served day (one month's catalog gives a member 4-12 eligible
offers: a list of 10 would hold them all, and no floor could change it). Per list: the share
of local partners' offers, whether it holds as many local offers as the floor asks for and
the rules allow (`floor_met_where_possible`: it must be 1), and NDCG@10 against the member's
December purchases (an offer is relevant when the member bought its partner's
category in December; the ideal list holds min(10, relevant eligible offers)). The NDCG
difference to floor 0 is a paired bootstrap (`training.compare.paired_bootstrap`, 95% CI)
over the same members. Writes benchmarks/results/local_partners.md and .json.

    .venv/bin/python benchmarks/local_partners.py [--members 20000] [--requests 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from perkrank.config import AlsConfig, CapsConfig, InteractionConfig, LocalFloor, ServeConfig
from perkrank.features.columns import Columns
from perkrank.features.interactions import cutoff_features
from perkrank.features.loader import load_dataset
from perkrank.features.synthetic import generate
from perkrank.features.vocabulary import item_id
from perkrank.models.als import fit_als
from perkrank.models.blend import blend
from perkrank.models.bundle import Bundle
from perkrank.models.popularity import fit_popularity
from perkrank.models.repeat import fit_repeat
from perkrank.serving.domain.catalog import catalog_from_dataset
from perkrank.serving.domain.local_partners import local_slots
from perkrank.serving.domain.ranking import OfferRanker, OfferRequest
from perkrank.serving.state.memory import MemoryStateStore
from perkrank.training.compare import paired_bootstrap
from perkrank.training.metrics import ndcg_at_k

RESULTS = Path(__file__).parent / "results"
FLOORS = (0.0, 0.2, 0.3, 0.5)
LIMIT = 10
SEED = 7
START = date(2025, 1, 1)
CUTOFF = date(2025, 12, 1)
"""Training sees purchases before it; relevance is December's purchases; lists are served on
this day."""


def run(members: int, requests: int, work_dir: Path) -> dict[str, Any]:
    """Fit once, then serve the same members' lists under every floor."""
    generate(work_dir / "data", members=members, months=12, seed=SEED, start=START)
    dataset = load_dataset(work_dir / "data")
    cutoff = datetime.combine(CUTOFF, datetime.min.time())
    data = cutoff_features(dataset, cutoff, InteractionConfig()).data
    components = {
        "als": fit_als(data, AlsConfig(), seed=SEED, threads=1),
        "repeat": fit_repeat(data),
    }
    bundle = Bundle(
        ranker=blend(components, {"als": 1.0, "repeat": 1.0}), fallback=fit_popularity(data)
    )
    offers = dataset.offers.assign(
        valid_from=dataset.offers[Columns.valid_from].min(),
        valid_to=dataset.offers[Columns.valid_to].max(),
    )
    catalog = catalog_from_dataset(replace(dataset, offers=offers), bundle)
    settings = ServeConfig(catalog_date=CUTOFF, app_api_keys="bench:key-for-benchmarks-01")
    ranker = OfferRanker(bundle, catalog, settings)
    bought = _december_items(dataset.purchases)
    sample = _members_with_relevant(ranker, bought, requests)
    local = np.array([candidate.local for candidate in catalog.candidates])
    eligible_local = []
    for member in sample:
        region, tier = ranker.profile(OfferRequest(member, "app", LIMIT))
        rows = ranker.segment(region, tier, ranker.day(0.0)).rows
        eligible_local.append(float(local[rows].mean()))
    served = _serve(ranker, sample, bought)
    results = {}
    ndcg_by_floor = {}
    base_ns = float(np.median(served[0.0]["ns"]))
    for floor in FLOORS:
        shares, met, ndcg, ns = (served[floor][key] for key in ("share", "met", "ndcg", "ns"))
        ndcg_by_floor[floor] = ndcg
        results[f"{floor:g}"] = {
            "local_share_mean": round(float(np.mean(shares)), 4),
            "lists_meeting_floor": round(
                float(np.mean(shares >= np.ceil(round(floor * LIMIT, 9)) / LIMIT - 1e-9)), 4
            ),
            "floor_met_where_possible": round(float(np.mean(met)), 4),
            "ndcg@10": round(float(np.mean(ndcg)), 4),
            "rank_p50_ms": round(float(np.median(ns)) / 1e6, 3),
            "rank_p50_ratio_to_floor_0": round(float(np.median(ns)) / base_ns, 2),
        }
    for floor in FLOORS[1:]:
        difference = paired_bootstrap(
            ndcg_by_floor[floor], ndcg_by_floor[0.0], metric="ndcg@10", seed=SEED
        )
        results[f"{floor:g}"]["ndcg_difference_vs_0"] = {
            "mean": round(difference.mean, 4),
            "ci_low": round(difference.low, 4),
            "ci_high": round(difference.high, 4),
            "verdict": difference.verdict,
        }
    return {
        "members": members,
        "months": 12,
        "served_day": CUTOFF.isoformat(),
        "lists": len(sample),
        "limit": LIMIT,
        "eligible_local_share_mean": round(float(np.mean(eligible_local)), 4),
        "floors": results,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }


def _december_items(purchases: pd.DataFrame) -> dict[str, set[str]]:
    """Items (partner|category) each member bought in December."""
    start, end = pd.Timestamp(CUTOFF), pd.Timestamp(date(2026, 1, 1))
    december = purchases[(purchases[Columns.ts] >= start) & (purchases[Columns.ts] < end)]
    items: dict[str, set[str]] = {}
    for member, partner, category in zip(
        december[Columns.member_id],
        december[Columns.partner_id],
        december[Columns.category],
        strict=True,
    ):
        items.setdefault(member, set()).add(item_id(partner, category))
    return items


def _relevant(ranker: OfferRanker, rows: np.ndarray, items: set[str]) -> np.ndarray:
    offers = ranker.catalog.offers
    return np.array([item_id(offers[r].partner_id, offers[r].category) in items for r in rows])


def _members_with_relevant(
    ranker: OfferRanker, bought: dict[str, set[str]], requests: int
) -> list[str]:
    """Up to `requests` members (seeded sample) with a relevant offer among their eligible."""
    known = [member for member in sorted(bought) if ranker.catalog.member(member) is not None]
    rng = np.random.default_rng(SEED)
    chosen = []
    for member in rng.permutation(known).tolist():
        region, tier = ranker.profile(OfferRequest(member, "app", LIMIT))
        rows = ranker.segment(region, tier, ranker.day(0.0)).rows
        if _relevant(ranker, rows, bought[member]).any():
            chosen.append(member)
            if len(chosen) == requests:
                break
    return chosen


def _serve(
    ranker: OfferRanker, sample: list[str], bought: dict[str, set[str]]
) -> dict[float, dict[str, np.ndarray]]:
    """Each member's list under every floor (one store per floor; the floors take turns going
    first): per list its local share, whether it holds the local offers the floor asks for as
    far as the per-partner limit lets them in, its NDCG@10, and the nanoseconds of the
    `rank` call."""
    caps = {floor: CapsConfig(local_floor=LocalFloor(default=floor)) for floor in FLOORS}
    stores = {floor: MemoryStateStore() for floor in FLOORS}
    per_partner = ServeConfig().max_offers_per_partner
    now = datetime.combine(CUTOFF, datetime.min.time(), UTC).timestamp() + 12 * 3600
    hits = {floor: np.zeros((len(sample), LIMIT), bool) for floor in FLOORS}
    columns: dict[float, dict[str, list]] = {
        floor: {"share": [], "met": [], "ns": []} for floor in FLOORS
    }
    relevant_counts = []

    async def serve_all() -> None:
        for index, member in enumerate(sample):
            request = OfferRequest(member, "app", LIMIT, decision_id=f"{index:032x}")
            region, tier = ranker.profile(request)
            eligible = ranker.segment(region, tier, ranker.day(now)).rows
            relevant_counts.append(int(_relevant(ranker, eligible, bought[member]).sum()))
            local_partners = Counter(
                ranker.catalog.offers[row].partner_id
                for row in eligible
                if ranker.catalog.candidates[row].local
            )
            allowed = sum(min(n, per_partner) for n in local_partners.values())
            turn = index % len(FLOORS)
            for floor in FLOORS[turn:] + FLOORS[:turn]:
                began = time.perf_counter_ns()
                ranking = await ranker.rank(stores[floor], request, (), now, caps=caps[floor])
                elapsed = time.perf_counter_ns() - began
                offers = [ranked.offer for ranked in ranking.offers]
                locals_served = sum(offer.scope == "local" for offer in offers)
                column = columns[floor]
                column["ns"].append(elapsed)
                column["share"].append(locals_served / len(offers) if offers else 0.0)
                slots = local_slots(caps[floor], region, LIMIT)
                column["met"].append(locals_served >= min(slots, allowed))
                rows = np.array([ranker.catalog.offer_rows[o.offer_id] for o in offers], int)
                hits[floor][index, : len(rows)] = _relevant(ranker, rows, bought[member])

    asyncio.run(serve_all())
    counts = np.array(relevant_counts)
    return {
        floor: {
            **{key: np.array(values) for key, values in columns[floor].items()},
            "ndcg": ndcg_at_k(hits[floor], counts, LIMIT),
        }
        for floor in FLOORS
    }


def markdown(result: dict[str, Any]) -> str:
    rows = []
    for floor, values in result["floors"].items():
        difference = values.get("ndcg_difference_vs_0")
        delta = (
            "–"
            if difference is None
            else f"{difference['mean']:+.4f} ({difference['ci_low']:+.4f} … "
            f"{difference['ci_high']:+.4f}), {difference['verdict']}"
        )
        rows.append(
            f"| {floor} | {values['local_share_mean']:.4f} | {values['lists_meeting_floor']:.4f} "
            f"| {values['floor_met_where_possible']:.4f} "
            f"| {values['ndcg@10']:.4f} | {delta} | {values['rank_p50_ms']} "
            f"({values['rank_p50_ratio_to_floor_0']}×) |"
        )
    lines = [
        "# Local partners: the share served and the relevance it costs",
        "",
        f"Command: `{result['command']}`  ",
        f"Synthetic data: {result['members']:,} members × {result['months']} months; "
        f"{result['lists']:,} lists of {result['limit']} served on {result['served_day']} "
        "(members with a December purchase matching an eligible offer), the same members under "
        "every floor. Local partners' offers are "
        f"{result['eligible_local_share_mean']:.1%} of a member's eligible offers (mean). "
        f"{result['machine']['cpus']} shared cores, Python {result['machine']['python']}.",
        "",
        "Served by `OfferRanker.rank` through the in-process store with "
        "`local_floor: {default: floor}` in the caps document, no frequency caps, serve.yaml's "
        "per-partner limit. NDCG@10 against the member's December purchases; its difference "
        "to floor 0 is a paired bootstrap over the same members (95% CI).",
        "",
        "| floor | local share per list (mean) | lists at or above the floor "
        "| floor met where possible | NDCG@10 | NDCG@10 − floor 0 (95% CI) "
        "| `rank` p50 ms (× floor 0) |",
        "|---:|---:|---:|---:|---:|---|---:|",
        *rows,
        "",
        "A list below the floor had fewer eligible local offers than the floor asks for, or "
        "too few local partners for the per-partner limit (the floor then serves every one "
        "that passes the rules): `floor met where possible` counts the lists holding "
        "min(slots, local offers the per-partner limit lets in) local offers. `rank` p50: the "
        "whole call, store included, each member's lists under all floors timed back to back "
        "(the floors taking turns first) on shared, loaded cores; the ratio to floor 0 is the "
        "figure to read.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=3_000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as directory:
        result = run(args.members, args.requests, Path(directory))
    result["command"] = " ".join(["benchmarks/local_partners.py", *sys.argv[1:]])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "local_partners.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "local_partners.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
