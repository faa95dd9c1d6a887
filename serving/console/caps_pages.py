"""The caps page: edit the rules (YAML, validated as `PUT /v1/caps` validates them), preview
what they would do, save them as a new audited version, roll back to an earlier one."""

from __future__ import annotations

import json
from typing import Any

import yaml
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from perkrank.config import CapsConfig
from perkrank.serving.api.admin import cap_problems
from perkrank.serving.api.caps_console import MAX_PREVIEW_DAYS, PreviewRequest
from perkrank.serving.api.deps import context_of
from perkrank.serving.caps_preview import preview_caps
from perkrank.serving.console.charts import bar_chart
from perkrank.serving.console.pages import posted_form, redirect, render, signed_in
from perkrank.serving.console.session import Session

HISTORY = 20
DEFAULT_DAYS = 7


def rules_text(caps: CapsConfig) -> str:
    """The rules (and the list rules, when set: `local_floor`, `max_per_partner`) as the YAML
    the form edits: saving it keeps them."""
    return yaml.safe_dump(caps.model_dump(mode="json", exclude_none=True), sort_keys=False)


def parse_rules(text: str) -> tuple[CapsConfig | None, list[str]]:
    """The rule set a form's YAML holds, or the problems (each naming rule and field)."""
    try:
        body = yaml.safe_load(text)
    except yaml.YAMLError as error:
        return None, [f"not YAML: {error}"]
    if not isinstance(body, dict):
        return None, ["write a mapping with `rules:` (a list of rules; `rules: []` removes all)"]
    try:
        return CapsConfig.model_validate_json(json.dumps(body), strict=True), []
    except ValidationError as error:
        return None, [problem["message"] for problem in cap_problems(error, body)]


def parse_costs(text: str) -> tuple[dict[str, float] | None, list[str]]:
    """Each offer's cost per redemption from `offer_id: cost` lines (empty: none known)."""
    try:
        body = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as error:
        return None, [f"costs: not YAML: {error}"]
    try:
        request = PreviewRequest.model_validate({"rules": (), "reward_costs": body})
    except ValidationError as error:
        return None, [
            f"costs: {'.'.join(str(part) for part in item['loc'][1:])}: {item['msg']}"
            for item in error.errors(include_url=False)
        ]
    return dict(request.reward_costs), []


def caps_pages() -> APIRouter:
    """GET /console/caps and its posts: preview, save, rollback."""
    router = APIRouter()

    @router.get("/caps")
    async def caps_page(request: Request, saved: str = "") -> HTMLResponse:
        session = signed_in(request)
        text = rules_text(context_of(request).caps)
        notice = f"Saved: caps version {saved} is in force." if saved else ""
        return _page(request, session, text, DEFAULT_DAYS, notice=notice)

    @router.post("/caps/preview")
    async def preview(request: Request) -> HTMLResponse:
        session = signed_in(request)
        form = await posted_form(request, session)
        text, days = str(form.get("rules", "")), _days(form.get("days"))
        costs_text = str(form.get("costs", ""))
        caps, problems = parse_rules(text)
        costs, cost_problems = parse_costs(costs_text)
        if caps is None or costs is None:
            return _page(
                request,
                session,
                text,
                days,
                problems=problems,
                cost_problems=cost_problems,
                costs_text=costs_text,
                status_code=422,
            )
        await run_in_threadpool(request.app.state.recorder.flush)  # the log up to now
        context = context_of(request)
        result = await run_in_threadpool(preview_caps, context, caps.rules, days, costs)
        return _page(request, session, text, days, preview=result, costs_text=costs_text)

    @router.post("/caps/save")
    async def save(request: Request) -> HTMLResponse:
        session = signed_in(request)
        form = await posted_form(request, session)
        text, days = str(form.get("rules", "")), _days(form.get("days"))
        caps, problems = parse_rules(text)
        if caps is None:
            return _page(request, session, text, days, problems=problems, status_code=422)
        live = request.app.state.live
        stored = await run_in_threadpool(live.put_caps, caps, session.actor)
        return redirect("/caps", saved=stored.version)

    @router.post("/caps/rollback")
    async def rollback(request: Request) -> HTMLResponse:
        session = signed_in(request)
        form = await posted_form(request, session)
        live = request.app.state.live
        try:
            version = int(str(form.get("version", "")))
            stored = await run_in_threadpool(live.rollback_caps, version, session.actor)
        except (ValueError, LookupError) as error:
            text = rules_text(context_of(request).caps)
            return _page(
                request, session, text, DEFAULT_DAYS, problems=[str(error)], status_code=404
            )
        return redirect("/caps", saved=stored.version)

    return router


def _days(value: Any) -> int:
    try:
        return min(max(int(str(value)), 1), MAX_PREVIEW_DAYS)
    except ValueError:
        return DEFAULT_DAYS


def _page(
    request: Request,
    session: Session,
    text: str,
    days: int,
    status_code: int = 200,
    **values: Any,
) -> HTMLResponse:
    context = context_of(request)
    history = context.store.caps_history(HISTORY)
    preview = values.get("preview")
    chart = None
    if preview is not None and preview.by_offer:
        offers = sorted(preview.by_offer)
        chart = bar_chart(
            "Offers shown per offer, replayed",
            offers,
            {
                "in force": [preview.by_offer[name].current.shown for name in offers],
                "proposed": [preview.by_offer[name].proposed.shown for name in offers],
            },
        )
    return render(
        request,
        "caps.html",
        session,
        "caps",
        status_code=status_code,
        rules_text=text,
        days=days,
        max_days=MAX_PREVIEW_DAYS,
        history=history,
        version=context.caps_version,
        chart=chart,
        **{"problems": [], "cost_problems": [], "notice": "", "preview": None, "costs_text": ""}
        | values,
    )
