"""A simulated pilot: members' daily visits through the real service, in-process.

`simulate` builds the app by the composition root (`create_app(settings, data_dir=...)`, which
runs `serving.bootstrap`), puts the experiment in force with `PUT /v1/experiments`, and for
each of `days` days lets every member visit with their planted daily probability: a visit is
`GET /v1/members/{id}/offers` through httpx's ASGI transport (the HTTP code path, no socket,
one event loop: the app's lifespan runs as under uvicorn).
Clicks and redemptions are drawn from the response model for the offers shown at their
positions and sent back with `POST /v1/events` naming the decision (impression, click,
redemption). At the end it reads the decision log and the events back from the admin
endpoints, as `perkrank decisions export` and `perkrank events export` do, and computes each
arm's truth by ranking every member under the arm with an empty store (`truth.policy_truth`).

Simulated days are compressed into the run's wall clock (the service stamps decisions and
events with it), so the simulation runs without frequency caps: their windows would never
reset. The rows it returns and writes carry simulated time instead: noon UTC of the visit's
day, day 0 being the catalog date served (so training can place them after the history).
Offer budgets still apply (the truth ignores them: a budget that runs out makes the served
lists differ a little from the truth's).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import tempfile
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from perkrank.config import ServeConfig
from perkrank.experiment_config import ExperimentsConfig
from perkrank.export import DECISION_COLUMNS, EVENT_COLUMNS, decision_rows, write_table
from perkrank.features.synthetic.response import ResponseModel
from perkrank.simulation.truth import PolicyTruth, mean_truth, policy_truth

if TYPE_CHECKING:
    from perkrank.serving.domain.experiments import Assignment
    from perkrank.serving.domain.ranking import OfferRanker

APP_KEY = "simulator-app-key-000001"
ADMIN_KEY = "simulator-admin-key-00001"
CHANNEL = "app"
SERVED = "served"
"""The truth's key for the served policy when no experiment runs."""
EXPLORATION_DRAWS = 8
"""Sampled lists per member whose mean is an exploring arm's truth."""
PAGE = 5000


@dataclass(frozen=True)
class SimulationResult:
    """What a simulated pilot wrote: the decision log, the events and the truth per arm."""

    decisions: list[dict[str, Any]]
    """One row per offer shown, in the columns of `perkrank decisions export`."""
    events: list[dict[str, Any]]
    """One row per event, in the columns of `perkrank events export`."""
    truth: dict[str, PolicyTruth]
    """Each arm's (or `served`'s) TRUE expected rates under the response model."""
    visits: int

    def write(self, out_dir: Path) -> dict[str, Path]:
        """decisions.parquet, events.parquet and truth.json in `out_dir` (each written whole or
        not at all); their paths."""
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = {name: out_dir / name for name in ("decisions.parquet", "events.parquet")}
        write_table([self.decisions], paths["decisions.parquet"], DECISION_COLUMNS)
        write_table([self.events], paths["events.parquet"], EVENT_COLUMNS)
        truth = {arm: asdict(value) for arm, value in self.truth.items()}
        paths["truth.json"] = out_dir / "truth.json"
        partial = out_dir / ".truth.json.partial"
        partial.write_text(json.dumps(truth, indent=2, sort_keys=True) + "\n")
        os.replace(partial, paths["truth.json"])
        return paths


def simulate(
    data_dir: Path,
    *,
    days: int,
    seed: int,
    model_uri: str,
    experiments: ExperimentsConfig | None = None,
    redis_url: str | None = None,
    limit: int = 5,
    catalog_date: date | None = None,
    with_truth: bool = True,
    key_prefix: str | None = None,
) -> SimulationResult:
    """Run `days` days of visits of every member of `data_dir` (a `perkrank generate`
    directory) through the service serving `model_uri`; see the module docstring.
    `with_truth=False` skips the truth (ranking every member once per arm). With `redis_url`,
    the pilot's state lives under `key_prefix` (None: a new random one) and stays there."""
    from perkrank.serving.api.app import create_app

    response = ResponseModel.load(data_dir)
    with tempfile.TemporaryDirectory(prefix="perkrank-simulate-") as scratch:
        caps = Path(scratch) / "caps.yaml"
        caps.write_text("rules: []\n")
        settings = ServeConfig(
            model_uri=model_uri,
            redis_url=redis_url,
            key_prefix=key_prefix or f"sim-{secrets.token_hex(6)}",
            caps_path=caps,
            catalog_date=catalog_date or response.catalog_date,
            app_api_keys=f"simulator:{APP_KEY}",
            admin_api_keys=f"simulator:{ADMIN_KEY}",
            model_poll_seconds=86_400,
        )
        app = create_app(settings, data_dir=Path(data_dir))
        pilot = _pilot(app, response, np.random.default_rng(seed), days, limit, experiments)
        decisions, events, visits = asyncio.run(pilot)
        context = app.state.holder.current
        truth = _truth(context, response, days, limit, seed) if with_truth else {}
    flat = [row for decision in decisions for row in decision_rows(decision)]
    return SimulationResult(flat, events, truth, visits)


async def _pilot(
    app: Any,
    response: ResponseModel,
    rng: np.random.Generator,
    days: int,
    limit: int,
    experiments: ExperimentsConfig | None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """The app started (its lifespan), the visits, and what the admin endpoints kept."""
    import httpx

    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://simulator") as client,
    ):
        if experiments is not None:
            await _put_experiments(client, experiments)
        day_of = await _run_days(client, response, rng, days, limit)
        app.state.recorder.flush()
        decisions = [row async for page in _pages(client, "decisions") for row in page]
        events = [row async for page in _pages(client, "events") for row in page]
    for row in decisions + events:
        row["ts"] = _simulated_time(response.catalog_date, day_of[row["decision_id"]])
    return decisions, events, len(day_of)


async def _put_experiments(client: Any, experiments: ExperimentsConfig) -> None:
    answer = await client.put(
        "/v1/experiments",
        json=experiments.model_dump(mode="json"),
        headers={"X-API-Key": ADMIN_KEY},
    )
    if answer.status_code != 200:
        raise RuntimeError(f"PUT /v1/experiments answered {answer.status_code}: {answer.text}")


async def _run_days(
    client: Any, response: ResponseModel, rng: np.random.Generator, days: int, limit: int
) -> int:
    """Every day's visits and the events they draw; the day of each visit's decision."""
    members = list(response.member_rows)
    headers = {"X-API-Key": APP_KEY}
    day_of: dict[str, int] = {}
    for day in range(days):
        visiting = np.flatnonzero(rng.random(len(members)) < response.visit_probability)
        events: list[dict[str, Any]] = []
        for row in rng.permutation(visiting):
            member = members[row]
            answer = await client.get(
                f"/v1/members/{member}/offers",
                params={"channel": CHANNEL, "limit": limit},
                headers=headers,
            )
            answer.raise_for_status()
            body = answer.json()
            events += _responses(response, rng, member, body)
            day_of[body["decision_id"]] = day
        for start in range(0, len(events), 500):
            sent = await client.post(
                "/v1/events", json={"events": events[start : start + 500]}, headers=headers
            )
            sent.raise_for_status()
    return day_of


def _simulated_time(first_day: date, day: int) -> str:
    """Noon UTC of the simulated `day` (0: the catalog date), as ISO text."""
    return datetime.combine(first_day + timedelta(days=day), time(12), UTC).isoformat()


def _responses(
    response: ResponseModel, rng: np.random.Generator, member: str, body: dict[str, Any]
) -> list[dict[str, Any]]:
    """The impression, click and redemption events of one shown list, drawn."""
    offers = [offer["offer_id"] for offer in body["offers"]]
    click, redeem = response.probabilities(member, offers)
    clicked = rng.random(len(offers)) < click
    redeemed = clicked & (rng.random(len(offers)) < redeem)
    now = datetime.now(UTC).isoformat()
    events = []
    for offer, was_clicked, was_redeemed in zip(offers, clicked, redeemed, strict=True):
        kinds = ["impression"] + ["click"] * int(was_clicked) + ["redemption"] * int(was_redeemed)
        events += [
            {
                "type": kind,
                "member_id": member,
                "offer_id": offer,
                "channel": CHANNEL,
                "ts": now,
                "event_id": os.urandom(12).hex(),
                "decision_id": body["decision_id"],
            }
            for kind in kinds
        ]
    return events


async def _pages(client: Any, kind: str) -> AsyncIterator[list[dict[str, Any]]]:
    """Every kept decision or event, page by page, as the export commands read them."""
    after = "0-0"
    while True:
        answer = await client.get(
            f"/v1/admin/{kind}",
            params={"after": after, "count": PAGE},
            headers={"X-API-Key": ADMIN_KEY},
        )
        answer.raise_for_status()
        body = answer.json()
        rows = body[kind]
        if not rows:
            return
        yield rows
        after = body["next_after"]


def _truth(
    context: Any, response: ResponseModel, days: int, limit: int, seed: int
) -> dict[str, PolicyTruth]:
    """Each arm's truth (or the served policy's): every member ranked by it, no state."""
    from perkrank.serving.domain.experiments import Assignment
    from perkrank.serving.domain.ranking import PERSONALIZED

    plan = context.experiment_plan
    arms = [Assignment("", SERVED, PERSONALIZED)] if plan is None else list(plan.assignments)
    truth = {}
    for arm in arms:
        ranker, _ = context.model_for(arm)
        draws = 1 if arm.exploration is None else EXPLORATION_DRAWS
        truths = [
            policy_truth(
                response,
                shown_lists(ranker, list(response.member_rows), limit, arm, seed + draw),
                days,
            )
            for draw in range(draws)
        ]
        truth[arm.arm] = mean_truth(truths)
    return truth


def shown_lists(
    ranker: OfferRanker, members: list[str], limit: int, arm: Assignment, seed: int = 0
) -> dict[str, list[str]]:
    """The list `ranker` shows each member under `arm`'s policy and exploration on a visit
    with nothing stored (no caps, budgets full), by the code that answers a request."""
    from perkrank.serving.domain.ranking import OfferRequest
    from perkrank.serving.state.memory import MemoryStateStore

    async def rank_all() -> dict[str, list[str]]:
        store = MemoryStateStore()
        rng = np.random.default_rng(seed)
        shown = {}
        for member in members:
            ranking = await ranker.rank(
                store,
                OfferRequest(member, CHANNEL, limit),
                (),
                None,
                arm.policy,
                arm.exploration,
                int(rng.integers(1 << 62)),
            )
            shown[member] = [served.offer.offer_id for served in ranking.offers]
        return shown

    return asyncio.run(rank_all())
