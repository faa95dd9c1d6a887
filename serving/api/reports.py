"""An experiment's uplift report over HTTP: `GET /v1/admin/experiments/{name}/report` (admin
key) computes `serving.domain.uplift` from the experiment in force and every decision and event
the store keeps (the whole streams: a report reads them all, once per call)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool

from perkrank.experiment_config import Experiment
from perkrank.serving.api.deps import AdminKey, Context
from perkrank.serving.api.events import MAX_PAGE
from perkrank.serving.api.schemas import ErrorBody
from perkrank.serving.domain.uplift import UpliftReport, uplift_report
from perkrank.serving.state.ports import StateStore


def report_routes() -> APIRouter:
    """The report endpoint, under /v1."""
    router = APIRouter(prefix="/v1", tags=["experiments"])

    @router.get(
        "/admin/experiments/{name}/report",
        response_model=UpliftReport,
        summary="Each arm's uplift over the holdout, from the kept decisions and events",
        responses={
            404: {"model": ErrorBody, "description": "No experiment of that name in force."},
            422: {"model": ErrorBody, "description": "The experiment has no arm `holdout`."},
        },
    )
    async def experiment_report(
        name: str,
        request: Request,
        _: AdminKey,
        context: Context,
        holdout: str = Query("holdout", description="The arm the others are compared with."),
    ) -> UpliftReport:
        """Per arm: members, decisions, impressions, click and redemption rates, redemptions
        per member, the lift over `holdout` with its 95 % interval and MDE, and the split's
        SRM p-value (as `perkrank experiments report` computes from exports)."""
        stored = await run_in_threadpool(context.store.get_experiments)
        configured = () if stored is None else stored.experiments.experiments
        experiment = next((item for item in configured if item.name == name), None)
        if experiment is None:
            raise HTTPException(404, f"no experiment {name!r} in force")
        if holdout not in {arm.name for arm in experiment.arms}:
            raise HTTPException(422, f"holdout: experiment {name!r} has no arm {holdout!r}")
        await run_in_threadpool(request.app.state.recorder.flush)
        return await run_in_threadpool(store_report, context.store, experiment, holdout)

    return router


def store_report(store: StateStore, experiment: Experiment, holdout: str) -> UpliftReport:
    """The report of `experiment` from every decision and event `store` keeps."""
    decisions = (
        {
            "decision_id": kept.decision.decision_id,
            "member_id": kept.decision.member_id,
            "experiment": kept.decision.experiment,
            "arm": kept.decision.arm,
        }
        for kept in _every(store.read_decisions)
    )
    events = (
        {
            "type": kept.event.type,
            "member_id": kept.event.member_id,
            "decision_id": kept.event.decision_id,
        }
        for kept in _every(store.read_events)
    )
    return uplift_report(experiment, decisions, events, holdout)


def _every(read: Callable[[str, int], list[Any]]) -> Iterator[Any]:
    """Every item of a stream `read(after, count)` pages through, oldest first."""
    after = "0-0"
    while True:
        page = read(after, MAX_PAGE)
        yield from page
        if len(page) < MAX_PAGE:
            return
        after = page[-1].stream_id
