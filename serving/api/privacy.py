"""Members' privacy over HTTP (admin key): forgetting a member, and reading every consent
record and the members training must leave out, page by page (cursor "0" starts; a
`next_cursor` of "0" ends)."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from perkrank.serving.api.deps import AdminKey, Context
from perkrank.serving.api.preferences import ConsentEntry, MemberId, consent_entry
from perkrank.serving.domain.privacy import ExclusionReason, Forgotten

MAX_PAGE = 10_000
Cursor = Annotated[
    str, Query(pattern=r"^[0-9]{1,20}$", description='Where to go on; "0": the start.')
]
PhaseCursor = Annotated[
    str,
    Query(pattern=r"^([sp]:)?[0-9]{1,20}$", description='Where to go on; "0": the start.'),
]
Count = Annotated[int, Query(ge=1, le=MAX_PAGE, description="About how many per page.")]


class ForgottenBody(BaseModel):
    """What forgetting a member did, as audited: the hash of their id, never their data."""

    member_hash: str = Field(description="SHA-256 of the member id (hex), on the suppression list.")
    actor: str = Field(description="The API key's name.")
    at: float = Field(description="Unix seconds.")
    already_suppressed: bool = Field(description="true: the member had been forgotten before.")
    removed: dict[str, int] = Field(description="How many keys, events, decisions, consents.")


class ConsentsPage(BaseModel):
    """Consent records of some members, each member's oldest first."""

    consents: list[ConsentEntry]
    next_cursor: str


class ExclusionEntry(BaseModel):
    """A member training leaves out, by the hash of their id."""

    member_hash: str
    reason: ExclusionReason
    at: float | None = Field(description="When they were forgotten; null: personalization off.")


class ExclusionsPage(BaseModel):
    """Members training must leave out: the forgotten, then those with personalization off."""

    exclusions: list[ExclusionEntry]
    next_cursor: str


def forgotten_body(forgotten: Forgotten) -> ForgottenBody:
    """The response body of a forget audit entry."""
    return ForgottenBody.model_validate(forgotten.__dict__)


def privacy_routes() -> APIRouter:
    """The privacy endpoints, under /v1/admin."""
    router = APIRouter(prefix="/v1/admin", tags=["privacy"])

    @router.delete(
        "/members/{member_id}",
        response_model=ForgottenBody,
        summary="Forget a member (admin key)",
    )
    def forget_member(
        member_id: MemberId, key: AdminKey, context: Context, request: Request
    ) -> ForgottenBody:
        """Remove the member's preferences, consent records, counters, events and decisions;
        put the hash of their id on the suppression list every training run reads; audit it.
        Idempotent: forgetting again removes whatever came since."""
        request.app.state.recorder.flush()  # this process's queued decisions, then forget
        return forgotten_body(context.store.forget_member(member_id, key, time.time()))

    @router.get(
        "/forgotten",
        response_model=list[ForgottenBody],
        summary="Who forgot which member (by hash), when (admin key)",
    )
    def forgotten(
        _: AdminKey,
        context: Context,
        limit: Annotated[int, Query(ge=1, le=1000, description="Newest first.")] = 100,
    ) -> list[ForgottenBody]:
        """The forget audit, newest first."""
        return [forgotten_body(entry) for entry in context.store.forgotten_audit(limit)]

    @router.get(
        "/consents", response_model=ConsentsPage, summary="Every consent record (admin key)"
    )
    def consents(
        _: AdminKey, context: Context, cursor: Cursor = "0", count: Count = 100
    ) -> ConsentsPage:
        """One page of every member's consent records."""
        records, next_cursor = context.store.read_consents(cursor, count)
        return ConsentsPage(consents=[consent_entry(r) for r in records], next_cursor=next_cursor)

    @router.get(
        "/exclusions",
        response_model=ExclusionsPage,
        summary="Members training must leave out (admin key)",
    )
    def exclusions(
        _: AdminKey, context: Context, cursor: PhaseCursor = "0", count: Count = 1000
    ) -> ExclusionsPage:
        """One page of the suppression list, then of members with personalization off."""
        rows, next_cursor = context.store.read_exclusions(cursor, count)
        entries = [ExclusionEntry.model_validate(row.__dict__) for row in rows]
        return ExclusionsPage(exclusions=entries, next_cursor=next_cursor)

    return router
