"""`perkrank demo` / `make demo`: data → train → register → promote → serve → offers."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime
from pathlib import Path

from perkrank.config import CONFIG_DIR, ServeConfig, TrainConfig, load_config
from perkrank.progress import step

DEMO_MEMBERS = 20_000
DEMO_MONTHS = 12
DEMO_SEED = 7
SHOWN_MEMBERS = 3


def history_start(today: date, months: int) -> date:
    """First day of the history whose extra catalog month is the current month."""
    month_index = today.year * 12 + today.month - 1 - months
    return date(month_index // 12, month_index % 12 + 1, 1)


def run_demo(work_dir: Path, *, members: int = DEMO_MEMBERS, serve: bool = True) -> int:
    """Generate data, train, register and promote, then serve or print three members' offers."""
    from perkrank.features.synthetic import generate
    from perkrank.training.pipeline import train
    from perkrank.training.promotion import promote

    data_dir = work_dir / "data"
    start = history_start(datetime.now(UTC).date(), DEMO_MONTHS)
    generate(data_dir, members=members, months=DEMO_MONTHS, seed=DEMO_SEED, start=start)
    train_config = load_config(TrainConfig, CONFIG_DIR / "train.yaml")
    train(data_dir, train_config, output_dir=work_dir / "train")
    decision = promote(train_config.registry)
    print(f"promotion: {decision.reason}")

    settings = load_config(ServeConfig, CONFIG_DIR / "serve.yaml").model_copy(
        update={"tracking_uri": train_config.registry.tracking_uri}
    )
    if not serve:
        print_offers(settings, data_dir)
        return 0
    from perkrank.serving.server import run

    app_key = settings.app_api_keys.split(",")[0].split(":")[-1]
    print(
        f"\nServing on http://{settings.host}:{settings.port} (Ctrl-C stops). Try:\n"
        f"  curl -s -H 'X-API-Key: {app_key}' "
        f"'http://{settings.host}:{settings.port}/v1/members/M000001/offers?channel=app&limit=5'\n"
        f"  OpenAPI docs: http://{settings.host}:{settings.port}/docs\n",
        flush=True,
    )
    run(settings, data_dir)
    return 0


def print_offers(settings: ServeConfig, data_dir: Path) -> None:
    """Rank offers for a warm member, a member without purchases and an unknown member."""
    from perkrank.serving.bootstrap import bootstrap
    from perkrank.serving.domain.ranking import OfferRequest

    with step("load the champion and the catalog"):
        # The in-process store: printing offers never counts caps in a shared Redis.
        context = bootstrap(settings.model_copy(update={"redis_url": None}), data_dir).context
    for member_id in _demo_members(data_dir):
        request = OfferRequest(member_id, "app", 5)
        ranking = asyncio.run(context.ranker.rank(context.store, request, context.rules()))
        offers = [
            {
                "rank": served.rank,
                "offer_id": served.offer.offer_id,
                "title": served.offer.title,
                "score": round(served.score, 3),
                "reason": served.reason,
            }
            for served in ranking.offers
        ]
        print(
            json.dumps(
                {
                    "member_id": member_id,
                    "model_version": context.model_version,
                    "personalized": ranking.personalized,
                    "offers": offers,
                },
                indent=2,
            )
        )


def _demo_members(data_dir: Path) -> list[str]:
    """The busiest buyer, a member who never bought, and a member the files do not list."""
    import pandas as pd

    purchases = pd.read_csv(data_dir / "purchases.csv", usecols=["member_id"])
    members = pd.read_csv(data_dir / "members.csv", usecols=["member_id"])
    counts = purchases["member_id"].value_counts()
    never_bought = members.loc[~members["member_id"].isin(counts.index), "member_id"]
    return [str(counts.index[0]), str(never_bought.iloc[0]), "NEW-MEMBER-1"][:SHOWN_MEMBERS]
