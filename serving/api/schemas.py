"""The JSON bodies of the HTTP API, with the examples the OpenAPI page shows."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Request
from fastapi.openapi.constants import REF_PREFIX
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    create_model,
    model_validator,
)

from perkrank.features.schema import CHANNELS
from perkrank.mechanics_config import ChannelName
from perkrank.serving.domain.selection import Preferences

MEMBER_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
Channel = ChannelName
"""store, app, web, push, sms, email (`schema.CHANNELS`)."""
CHANNEL_COUNT = len(CHANNELS)
Tier = Literal["base", "silver", "gold", "vip"]
Name = Annotated[str, StringConstraints(min_length=1, max_length=64)]
"""A category, partner id or region as the data files spell it."""
MAX_OPT_OUTS = 200


def offers_parameters(default_limit: int, max_limit: int) -> type[BaseModel]:
    """The offers endpoint's parameters (member_id from the path, the rest from the query),
    with the configured list lengths."""
    return create_model(
        "OffersParameters",
        member_id=(
            str,
            Field(
                pattern=MEMBER_ID_PATTERN,
                description="The member's id: 1–64 letters, digits, `_ . : -`.",
                examples=["M000042"],
            ),
        ),
        channel=(Channel, Field("app", description="Where the offers are shown.")),
        limit=(
            int,
            Field(default_limit, ge=1, le=max_limit, description="How many offers to return."),
        ),
        region=(
            str | None,
            Field(
                None,
                min_length=1,
                max_length=64,
                description="Rank for this region instead of the member's home region "
                "(travellers).",
                examples=["north"],
            ),
        ),
        tier=(Tier | None, Field(None, description="Rank for this tier instead of the member's.")),
        decision_id=(
            str | None,
            Field(
                None,
                pattern=r"^[0-9a-f]{32}$",
                description="Re-show this decision (shown on another channel): its offers "
                "are not counted again against caps counting served offers.",
                examples=["4b0e8f5c2d7a4e19a3c6b1d8f0e2a7c5"],
            ),
        ),
        lang=(
            str | None,
            Field(
                None,
                pattern=r"^[A-Za-z]{2,3}$",
                description="The reasons' language (else `Accept-Language`, else the default).",
                examples=["ru"],
            ),
        ),
    )


def openapi_parameters(model: type[BaseModel], in_path: set[str]) -> list[dict[str, Any]]:
    """OpenAPI `parameters` for a model's fields: those named in `in_path` in the path, the
    others in the query."""
    schema = model.model_json_schema()
    required = set(schema.get("required", ()))
    parameters = []
    for name, field in schema["properties"].items():
        field = dict(field)
        description = field.pop("description", None)
        examples = field.pop("examples", None)
        parameter: dict[str, Any] = {
            "name": name,
            "in": "path" if name in in_path else "query",
            "required": name in required,
            "schema": field,
        }
        if description:
            parameter["description"] = description
        if examples:
            parameter["example"] = examples[0]
        parameters.append(parameter)
    return parameters


class ServedOffer(BaseModel):
    """One offer in a member's list."""

    offer_id: str
    partner_id: str
    category: str
    title: str
    reward: str
    rank: int = Field(description="1 = show first.")
    score: float = Field(description="Model score of the order used; comparable within a list.")
    reason: str = Field(description="Why the member sees it, short enough for a badge.")
    exclusive: bool = Field(
        False, description="true: exclusive to the member's tier and above (`exclusive_tier`)."
    )
    occasion: str | None = Field(
        None,
        description="The occasion it was chosen for: birthday, welcome, winback, "
        "tier_upgrade; null: none.",
    )


class OffersResponse(BaseModel):
    """A member's offers for one screen view; every offer returned counts against its caps."""

    member_id: str
    channel: Channel
    personalized: bool = Field(
        description="false when the member turned personalization off or the arm serves the "
        "popular (or no) policy: regional popularity order."
    )
    model_version: str
    request_id: str
    decision_id: str = Field(
        description="This response's id in the decision log (also `X-Decision-Id`); send it "
        "back with the events it leads to."
    )
    experiment: str | None = Field(description="The experiment that answered; null: none ran.")
    arm: str | None = Field(description="The experiment's arm that answered; null: none ran.")
    offers: list[ServedOffer]
    empty_reason: str | None = Field(
        None,
        description="Why the list is empty on purpose: `quiet_hours` (push or SMS in "
        "the member's local quiet hours); null otherwise.",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "member_id": "M000042",
                    "channel": "app",
                    "personalized": True,
                    "model_version": "perkrank-offers/7",
                    "request_id": "9f1c2b7e4a5d6c8b",
                    "decision_id": "4b0e8f5c2d7a4e19a3c6b1d8f0e2a7c5",
                    "experiment": "lift_2026q3",
                    "arm": "personalized",
                    "offers": [
                        {
                            "offer_id": "O2026-11-0117",
                            "partner_id": "P0031",
                            "category": "Beauty",
                            "title": "10% back on skincare",
                            "reward": "10% cashback",
                            "rank": 1,
                            "score": 2.4183,
                            "reason": "you often buy Beauty at Glow",
                        },
                        {
                            "offer_id": "O2026-11-0008",
                            "partner_id": "P0002",
                            "category": "Grocery",
                            "title": "Double points on groceries",
                            "reward": "2x points",
                            "rank": 2,
                            "score": 1.9027,
                            "reason": "picked for you",
                        },
                    ],
                }
            ]
        }
    )


class PreferencesBody(BaseModel):
    """What a member opted out of; PUT replaces all of it."""

    opt_out_all: bool = False
    opted_out_channels: list[Channel] = Field(default_factory=list, max_length=CHANNEL_COUNT)
    opted_out_categories: list[Name] = Field(default_factory=list, max_length=MAX_OPT_OUTS)
    opted_out_partners: list[Name] = Field(default_factory=list, max_length=MAX_OPT_OUTS)
    personalization: bool = Field(
        True, description="false: offers in regional popularity order, not from their history."
    )
    consents: list[Name] = Field(
        default_factory=list,
        max_length=MAX_OPT_OUTS,
        description="Sensitive categories the member agreed to have personalized.",
    )
    purchase_reasons: bool = Field(
        True, description="false: reasons never mention the member's purchases."
    )

    model_config = ConfigDict(
        extra="forbid",
        strict=True,  # JSON types as they are: no "yes" for true, no "1" for a number
        json_schema_extra={
            "examples": [
                {
                    "opt_out_all": False,
                    "opted_out_channels": ["web"],
                    "opted_out_categories": ["Alcohol"],
                    "opted_out_partners": ["P0007"],
                    "personalization": True,
                    "consents": ["Pharmacy"],
                    "purchase_reasons": True,
                }
            ]
        },
    )

    @classmethod
    def of(cls, preferences: Preferences) -> PreferencesBody:
        """The body of stored preferences (lists sorted)."""
        return cls(
            opt_out_all=preferences.opt_out_all,
            opted_out_channels=sorted(preferences.opted_out_channels),
            opted_out_categories=sorted(preferences.opted_out_categories),
            opted_out_partners=sorted(preferences.opted_out_partners),
            personalization=preferences.personalization,
            consents=sorted(preferences.consents),
            purchase_reasons=preferences.purchase_reasons,
        )

    def to_preferences(self) -> Preferences:
        """The preferences to store."""
        return Preferences(
            opt_out_all=self.opt_out_all,
            opted_out_channels=frozenset(self.opted_out_channels),
            opted_out_categories=frozenset(self.opted_out_categories),
            opted_out_partners=frozenset(self.opted_out_partners),
            personalization=self.personalization,
            consents=frozenset(self.consents),
            purchase_reasons=self.purchase_reasons,
        )


class _Changes(BaseModel):
    """Opt-outs to add and to remove; one value may not be in both."""

    add: list[str] = Field(default_factory=list)
    remove: list[str] = Field(default_factory=list)

    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="after")
    def _disjoint(self) -> _Changes:
        both = sorted(set(self.add) & set(self.remove))
        if both:
            raise ValueError(f"both added and removed: {', '.join(both)}")
        return self

    def applied(self, values: frozenset[str]) -> frozenset[str]:
        """`values` with `add` added and `remove` removed."""
        return (values | set(self.add)) - set(self.remove)


class ChannelChanges(_Changes):
    """Channel opt-outs to add and to remove."""

    add: list[Channel] = Field(default_factory=list, max_length=CHANNEL_COUNT)
    remove: list[Channel] = Field(default_factory=list, max_length=CHANNEL_COUNT)


class NameChanges(_Changes):
    """Category or partner opt-outs to add and to remove."""

    add: list[Name] = Field(default_factory=list, max_length=MAX_OPT_OUTS)
    remove: list[Name] = Field(default_factory=list, max_length=MAX_OPT_OUTS)


class PreferencesPatch(BaseModel):
    """A partial change: flags to set, and opt-outs to add or remove per kind; whatever the
    body leaves out stays as it is."""

    opt_out_all: bool | None = None
    personalization: bool | None = None
    purchase_reasons: bool | None = None
    channels: ChannelChanges = ChannelChanges()
    categories: NameChanges = NameChanges()
    partners: NameChanges = NameChanges()
    consents: NameChanges = NameChanges()

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [{"categories": {"add": ["Alcohol"], "remove": ["Dining"]}}]
        },
    )

    def applied(self, old: Preferences) -> Preferences:
        """`old` with this change applied."""
        return Preferences(
            opt_out_all=old.opt_out_all if self.opt_out_all is None else self.opt_out_all,
            opted_out_channels=self.channels.applied(old.opted_out_channels),
            opted_out_categories=self.categories.applied(old.opted_out_categories),
            opted_out_partners=self.partners.applied(old.opted_out_partners),
            personalization=(
                old.personalization if self.personalization is None else self.personalization
            ),
            consents=self.consents.applied(old.consents),
            purchase_reasons=(
                old.purchase_reasons if self.purchase_reasons is None else self.purchase_reasons
            ),
        )


class ErrorBody(BaseModel):
    """Why a request failed."""

    detail: str = Field(examples=["missing API key: send a valid key in X-API-Key"])


class Health(BaseModel):
    """The process answers."""

    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    """Whether this process can serve offers: model loaded and state store reachable."""

    status: Literal["ready", "unavailable"]
    model_version: str
    detail: str | None = None


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing or unknown API key."},
    403: {"model": ErrorBody, "description": "The API key's role may not do this."},
    503: {"model": ErrorBody, "description": "State store unavailable; retry after Retry-After."},
}
"""The errors every keyed route may answer, as OpenAPI documents them."""
UNREADABLE_BODY: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The body is not text FastAPI can read (UTF-8)."}
}
"""What FastAPI answers itself when a JSON body it parses is no text at all."""
VALIDATION_ERROR = {
    "description": "A parameter is invalid; `detail` names each one.",
    "content": {"application/json": {"schema": {"$ref": REF_PREFIX + "HTTPValidationError"}}},
}
"""The 422 FastAPI documents for routes whose parameters it validates itself."""


def problems_or_validation_error(problems: type[BaseModel], description: str) -> dict[str, Any]:
    """The 422 of a route that checks its body itself (answering `problems`, a model some
    route's `responses` registers) and lets FastAPI check its query parameters."""
    refs = [{"$ref": REF_PREFIX + problems.__name__}, {"$ref": REF_PREFIX + "HTTPValidationError"}]
    return {
        "description": description,
        "content": {"application/json": {"schema": {"anyOf": refs}}},
    }


def json_request_body(model: type[BaseModel], example: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI `requestBody` of a route that reads its JSON body itself (to name fields in its
    422s): `model`'s schema, its components referenced by `$ref`, and `example`."""
    schema = model.model_json_schema(ref_template=REF_PREFIX + "{model}")
    schema.pop("$defs", None)
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema, "example": example}},
        }
    }


async def json_object(request: Request) -> dict[str, Any] | None:
    """The request's body as a JSON object; None when it is not one (or not JSON at all)."""
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
