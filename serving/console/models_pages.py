"""The models page: the model in force, the registered versions with their aliases, evaluation
(a chart of NDCG@10 beside the baselines each run logged) and data lineage, the moves of the
`champion` alias; promote a version, roll back, check the registry now.

The registry is the `ModelRegistry` the composition root wired in (`app.state.model_registry`;
None when serving a bundle directory: the page shows the model in force only). Its calls block
(MLflow; a promotion re-scores both versions), so they run in a worker thread. A promotion
passes the gates of `perkrank promote` (the same code: same-window comparison with a CI, a
candidate trained on other data refused unless forced). After the champion moves, every process
re-checks the registry (`LiveRefresher.check_model`; this one before the page answers).
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from perkrank.config import ServeConfig
from perkrank.serving.api.deps import context_of
from perkrank.serving.console.charts import Chart, bar_chart
from perkrank.serving.console.pages import posted_form, redirect, render, signed_in
from perkrank.serving.console.session import Session
from perkrank.serving.model_registry import (
    ModelRegistry,
    ModelRegistryError,
    RegisteredVersion,
)

CHART_METRIC = "ndcg@10"
SERVED_SERIES = "served model"


def models_pages(settings: ServeConfig) -> APIRouter:
    """GET /console/models and its posts: promote, roll back, check the registry now."""
    router = APIRouter()

    @router.get("/models")
    async def models_page(
        request: Request, checked: str = "", promoted: str = "", refused: str = "", moved: str = ""
    ) -> HTMLResponse:
        session = signed_in(request)
        notice = ""
        if re.fullmatch(r"\d{1,9}", promoted):
            notice = f"Promoted: v{promoted} is the champion."
        elif re.fullmatch(r"\d{1,9}", refused):
            notice = f"Refused: v{refused} stays a candidate (the reason is in its row)."
        elif re.fullmatch(r"\d{1,9}", moved):
            notice = f"Rolled back: v{moved} is the champion."
        elif checked:
            notice = "Checked the registry."
        if notice:
            notice += f" Serving {context_of(request).model_version}."
        return await _page(request, session, settings, notice=notice)

    @router.post("/models/promote")
    async def promote(request: Request) -> HTMLResponse:
        session = signed_in(request)
        form = await posted_form(request, session)
        registry = _registry(request)
        version = str(form.get("version", ""))
        if registry is None or not re.fullmatch(r"\d{1,9}", version):
            return await _page(request, session, settings, 422, problem="Choose a version.")
        force = form.get("force") == "on"
        try:
            change = await run_in_threadpool(registry.promote, version, force, session.actor)
        except ModelRegistryError as error:
            return await _page(request, session, settings, 409, problem=str(error))
        if not change.moved:
            return redirect("/models", refused=version)
        await _swap(request)
        return redirect("/models", promoted=version)

    @router.post("/models/rollback")
    async def roll_back(request: Request) -> HTMLResponse:
        session = signed_in(request)
        await posted_form(request, session)
        registry = _registry(request)
        if registry is None:
            return await _page(request, session, settings, 409, problem="No registry.")
        try:
            change = await run_in_threadpool(registry.roll_back, session.actor)
        except ModelRegistryError as error:
            return await _page(request, session, settings, 409, problem=str(error))
        await _swap(request)
        return redirect("/models", moved=change.champion or "")

    @router.post("/models/reload")
    async def reload(request: Request) -> HTMLResponse:
        session = signed_in(request)
        await posted_form(request, session)
        await _swap(request)
        return redirect("/models", checked="1")

    return router


async def _swap(request: Request) -> None:
    """Every process re-checks the registry; this one now (a new champion swapped in)."""
    live = request.app.state.live
    await run_in_threadpool(live.context.store.request_reload)
    await run_in_threadpool(live.refresh_settings)
    await run_in_threadpool(live.check_model)


def _registry(request: Request) -> ModelRegistry | None:
    return request.app.state.model_registry


async def _page(
    request: Request,
    session: Session,
    settings: ServeConfig,
    status_code: int = 200,
    notice: str = "",
    problem: str = "",
) -> HTMLResponse:
    context = context_of(request)
    registry = _registry(request)
    versions, changes = [], []
    if registry is not None:
        try:
            versions = await run_in_threadpool(registry.versions)
            changes = await run_in_threadpool(registry.alias_changes)
        except ModelRegistryError as error:
            problem = problem or f"The registry cannot answer: {error}"
    champion = next((v for v in versions if "champion" in v.aliases), None)
    return render(
        request,
        "models.html",
        session,
        "models",
        status_code,
        model_version=context.model_version,
        model_uri=settings.model_uri,
        arm_models={alias: served.version for alias, served in context.arm_models.items()},
        registry_name=registry.name if registry is not None else None,
        versions=versions,
        changes=changes,
        champion=champion,
        chart=evaluation_chart(versions),
        notice=notice,
        problem=problem,
    )


def evaluation_chart(versions: list[RegisteredVersion]) -> Chart | None:
    """NDCG@10 of each version's served model and of the baselines its run logged, oldest
    version first (None: no version logged it)."""
    shown = [version for version in reversed(versions) if CHART_METRIC in version.metrics]
    if not shown:
        return None
    models = sorted(
        {
            name.removesuffix(f".{CHART_METRIC}")
            for version in shown
            for name in version.metrics
            if name.endswith(f".{CHART_METRIC}")
        }
    )
    series = {SERVED_SERIES: [version.metrics[CHART_METRIC] for version in shown]}
    for model in models:
        key = f"{model}.{CHART_METRIC}"
        series[model] = [version.metrics.get(key, 0.0) for version in shown]
    groups = [f"v{version.version}" for version in shown]
    return bar_chart("NDCG@10 on each version's test window", groups, series)
