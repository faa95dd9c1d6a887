"""`GET` and `PUT /v1/members/{member_id}/preferences`: what a member opted out of."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam

from perkrank.serving.api.deps import AdminKey, AppKey, Context
from perkrank.serving.api.schemas import MEMBER_ID_PATTERN, UNREADABLE_BODY, PreferencesBody

MemberId = Annotated[
    str,
    PathParam(
        pattern=MEMBER_ID_PATTERN,
        description="The member's id: 1–64 letters, digits, `_ . : -`.",
        examples=["M000042"],
    ),
]


def preferences_routes() -> APIRouter:
    """The preferences endpoints, under /v1."""
    router = APIRouter(prefix="/v1", tags=["preferences"])

    # Plain `def` handlers run in FastAPI's threadpool: a slow store call here never holds up
    # the event loop (only `select` has an async client).
    @router.get(
        "/members/{member_id}/preferences",
        response_model=PreferencesBody,
        summary="What a member opted out of",
    )
    def get_preferences(member_id: MemberId, _: AppKey, context: Context) -> PreferencesBody:
        """The member's opt-outs and personalization setting (defaults if never set)."""
        return PreferencesBody.of(context.store.get_preferences(member_id))

    @router.put(
        "/members/{member_id}/preferences",
        response_model=PreferencesBody,
        summary="Replace what a member opted out of (admin key)",
        responses=UNREADABLE_BODY,
    )
    def put_preferences(
        member_id: MemberId, body: PreferencesBody, _: AdminKey, context: Context
    ) -> PreferencesBody:
        """Replace all of the member's preferences; the very next offers request obeys them."""
        context.store.set_preferences(member_id, body.to_preferences())
        return body

    return router
