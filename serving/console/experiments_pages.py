"""The experiments page: each experiment in force with its arms, sizes, lift with 95 %
intervals and the SRM check (`serving.domain.uplift`, as the report endpoint computes it);
start one (store an experiments YAML) or stop them all."""

from __future__ import annotations

import json
from typing import Any

import yaml
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from perkrank.experiment_config import ExperimentsConfig
from perkrank.serving.api.deps import context_of
from perkrank.serving.api.experiments import experiment_problems
from perkrank.serving.api.reports import store_report
from perkrank.serving.arm_models import ModelRejectedError
from perkrank.serving.console.charts import bar_chart
from perkrank.serving.console.pages import posted_form, redirect, render, signed_in
from perkrank.serving.console.session import Session

HOLDOUT = "holdout"
STARTER = {
    "experiments": [
        {
            "name": "lift_pilot",
            "unit": "member",
            "arms": [
                {"name": HOLDOUT, "share": 0.1, "policy": "popular"},
                {"name": "champion", "share": 0.9, "policy": "personalized"},
            ],
        }
    ]
}
"""What the start form offers first: the served model against a popular-offers holdout (an
arm may also name a registered model alias, `model: challenger`, as `PUT /v1/experiments`)."""


def experiments_pages() -> APIRouter:
    """GET /console/experiments and its posts: start (store), stop (store none)."""
    router = APIRouter()

    @router.get("/experiments")
    async def experiments_page(request: Request, saved: str = "") -> HTMLResponse:
        session = signed_in(request)
        notice = f"Saved: experiments version {saved} is in force." if saved else ""
        return await _page(request, session, notice=notice)

    @router.post("/experiments/start")
    async def start(request: Request) -> HTMLResponse:
        session = signed_in(request)
        form = await posted_form(request, session)
        text = str(form.get("experiments", ""))
        try:
            body = yaml.safe_load(text)
            experiments = ExperimentsConfig.model_validate_json(json.dumps(body), strict=True)
        except yaml.YAMLError as error:
            return await _page(request, session, 422, text=text, problems=[f"not YAML: {error}"])
        except ValidationError as error:
            problems = [problem["message"] for problem in experiment_problems(error)]
            return await _page(request, session, 422, text=text, problems=problems)
        return await _store(request, session, experiments, text)

    @router.post("/experiments/stop")
    async def stop(request: Request) -> HTMLResponse:
        session = signed_in(request)
        await posted_form(request, session)
        return await _store(request, session, ExperimentsConfig(), "")

    return router


async def _store(
    request: Request, session: Session, experiments: ExperimentsConfig, text: str
) -> HTMLResponse:
    live = request.app.state.live
    try:
        stored = await run_in_threadpool(live.put_experiments, experiments, session.actor)
    except ModelRejectedError as error:
        problems = [f"an arm's model cannot serve: {error}"]
        return await _page(request, session, 422, text=text, problems=problems)
    return redirect("/experiments", saved=stored.version)


async def _page(
    request: Request, session: Session, status_code: int = 200, **values: Any
) -> HTMLResponse:
    context = context_of(request)
    await run_in_threadpool(request.app.state.recorder.flush)
    reports = []
    for experiment in context.experiments.experiments:
        if HOLDOUT not in {arm.name for arm in experiment.arms}:
            reports.append((experiment, None, None))
            continue
        report = await run_in_threadpool(store_report, context.store, experiment, HOLDOUT)
        arms = [arm.arm for arm in report.arms]
        chart = bar_chart(
            "Redemptions per member, by arm",
            arms,
            {"redemptions per member": [arm.redemptions_per_member for arm in report.arms]},
        )
        reports.append((experiment, report, chart))
    example = yaml.safe_dump(STARTER, sort_keys=False)
    defaults = {"problems": [], "notice": "", "text": example}
    return render(
        request,
        "experiments.html",
        session,
        "experiments",
        status_code=status_code,
        reports=reports,
        version=context.experiments_version,
        **defaults | values,
    )
