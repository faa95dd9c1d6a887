"""`GET`, `PUT` and `PATCH /v1/members/{member_id}/preferences`: what a member opted out of,
read and changed by the app acting for the signed-in member (app key); each change is a
consent record, listed by `GET …/preferences/history` (admin key)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from perkrank.serving.api.deps import AdminKey, AppKey, Context
from perkrank.serving.api.schemas import (
    MEMBER_ID_PATTERN,
    UNREADABLE_BODY,
    PreferencesBody,
    PreferencesPatch,
)
from perkrank.serving.domain.context import ServingContext
from perkrank.serving.domain.privacy import ConsentRecord, ConsentSource
from perkrank.serving.domain.selection import Preferences

MemberId = Annotated[
    str,
    PathParam(
        pattern=MEMBER_ID_PATTERN,
        description="The member's id: 1–64 letters, digits, `_ . : -`.",
        examples=["M000042"],
    ),
]
ConsentSourceHeader = Annotated[
    str,
    Header(
        alias="X-Consent-Source",
        pattern=r"^[a-z][a-z0-9_-]{0,31}$",
        description="Where the member made the change (kept in the consent record): app, "
        "web, store, support, …",
    ),
]
UNKNOWN_VALUES: dict[int | str, dict[str, Any]] = {
    422: {"description": "Invalid body, or categories or partners the catalog does not know."}
}


class ConsentEntry(BaseModel):
    """One change of a member's preferences: old → new, by which key, through what, when."""

    member_id: str
    at: float = Field(description="Unix seconds.")
    actor: str = Field(description="The API key's name.")
    source: str = Field(description="Where the member made the change (`X-Consent-Source`).")
    changed: list[str] = Field(description="The preference fields that changed.")
    old: PreferencesBody
    new: PreferencesBody


def consent_entry(record: ConsentRecord) -> ConsentEntry:
    """The response body of a consent record."""
    return ConsentEntry.model_validate(record.record())


def preferences_routes() -> APIRouter:
    """The preferences endpoints, under /v1."""
    router = APIRouter(prefix="/v1", tags=["preferences"])
    path = "/members/{member_id}/preferences"

    # Plain `def` handlers run in FastAPI's threadpool: a slow store call here never holds up
    # the event loop (only `select` has an async client).
    @router.get(path, response_model=PreferencesBody, summary="What a member opted out of")
    def get_preferences(member_id: MemberId, _: AppKey, context: Context) -> PreferencesBody:
        """The member's opt-outs and personalization setting (defaults if never set)."""
        return PreferencesBody.of(context.store.get_preferences(member_id))

    @router.put(
        path,
        response_model=PreferencesBody,
        summary="Replace what a member opted out of",
        responses=UNREADABLE_BODY | UNKNOWN_VALUES,
    )
    def put_preferences(
        member_id: MemberId,
        body: PreferencesBody,
        key: AppKey,
        context: Context,
        source: ConsentSourceHeader = "api",
    ) -> PreferencesBody:
        """Replace all of the member's preferences; the very next offers request obeys them."""
        _refuse_unknown(
            context,
            {
                ("opted_out_categories",): ("categories", body.opted_out_categories),
                ("opted_out_partners",): ("partners", body.opted_out_partners),
                ("consents",): ("consents", body.consents),
            },
        )
        new = body.to_preferences()
        record = _change(context, member_id, lambda _: new, key, source)
        return PreferencesBody.of(record.new)

    @router.patch(
        path,
        response_model=PreferencesBody,
        summary="Change part of what a member opted out of",
        responses=UNREADABLE_BODY | UNKNOWN_VALUES,
    )
    def patch_preferences(
        member_id: MemberId,
        body: PreferencesPatch,
        key: AppKey,
        context: Context,
        source: ConsentSourceHeader = "api",
    ) -> PreferencesBody:
        """Set the flags the body names and add or remove single opt-outs and consents,
        keeping the rest; the very next offers request obeys. Removing a value the catalog no
        longer knows is allowed; adding one is not."""
        _refuse_unknown(
            context,
            {
                ("categories", "add"): ("categories", body.categories.add),
                ("partners", "add"): ("partners", body.partners.add),
                ("consents", "add"): ("consents", body.consents.add),
            },
        )
        record = _change(context, member_id, body.applied, key, source)
        return PreferencesBody.of(record.new)

    @router.get(
        f"{path}/history",
        response_model=list[ConsentEntry],
        summary="The consent records of a member's preference changes (admin key)",
    )
    def preferences_history(
        member_id: MemberId,
        _: AdminKey,
        context: Context,
        limit: Annotated[int, Query(ge=1, le=100, description="Newest first.")] = 100,
    ) -> list[ConsentEntry]:
        """Each change of the member's preferences: old → new, key name, source, time."""
        return [consent_entry(r) for r in context.store.consent_history(member_id, limit)]

    return router


def _change(
    context: ServingContext,
    member_id: str,
    change: Callable[[Preferences], Preferences],
    key: str,
    source: str,
) -> ConsentRecord:
    """Apply `change` to the member's preferences, recording the consent."""
    consent = ConsentSource(actor=key, source=source, at=time.time())
    return context.store.change_preferences(member_id, change, consent)


def _refuse_unknown(
    context: ServingContext, values: dict[tuple[str, ...], tuple[str, list[str]]]
) -> None:
    """422 naming every category and partner the catalog in force does not know, and every
    consent to a category that is not one of its sensitive categories. `values`: by body
    location, the kind (categories, partners, consents) and the values sent."""
    ranker = context.ranker
    known = {
        "categories": {offer.category for offer in ranker.catalog.offers},
        "partners": {offer.partner_id for offer in ranker.catalog.offers},
        "consents": ranker.sensitive,
    }
    problems = []
    for location, (kind, sent) in values.items():
        unknown = sorted(set(sent) - known[kind])
        if unknown:
            what = (
                "not a sensitive category of the catalog in force"
                if kind == "consents"
                else "not in the catalog in force"
            )
            message = f"unknown {kind} ({what}): {', '.join(unknown)}"
            problems.append({"loc": ["body", *location], "msg": message, "type": "unknown_value"})
    if problems:
        raise HTTPException(422, problems)
