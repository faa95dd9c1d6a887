"""Members' privacy settings: how training treats members who turned personalization off,
sensitive categories, reason texts per language and how long records are kept."""

from __future__ import annotations

from string import Formatter
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DAY_SECONDS = 86_400
MAX_RETENTION_DAYS = 36_600
REASON_FIELDS = {"repeat": {"category", "partner"}, "tier": {"tier"}, "exclusive": {"tier"}}
"""The placeholders each reason template may use (the others take none)."""


OPTIONAL_REASONS = ("birthday", "welcome", "winback", "tier_upgrade", "exclusive")
"""Reason texts a language may leave out (added with the program mechanics)."""


class PrivacySection(BaseModel):
    """A nested block of a config file; unknown keys are errors (as `config.Section`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class TrainingPrivacy(PrivacySection):
    """`privacy` in configs/train.yaml."""

    opted_out: Literal["exclude", "aggregate_only"] = "exclude"
    """Members with personalization off: `exclude` leaves them out of training entirely;
    `aggregate_only` counts their purchases only in the anonymous aggregates (popularity,
    regional popularity) and gives them no row in any other matrix, no vector."""


class ReasonTexts(PrivacySection):
    """The reason texts of one language; `{category}`, `{partner}`, `{tier}` are filled in."""

    repeat: str
    """An offer of a partner and category the member buys often (never a sensitive one)."""
    picked: str
    """A personalized offer, and the neutral reason when purchase reasons are off."""
    popular: str
    """A non-personalized offer."""
    tier: str
    """An offer for members of a tier above base."""
    birthday: str | None = None
    welcome: str | None = None
    winback: str | None = None
    tier_upgrade: str | None = None
    """Occasion offers (mechanics); None: the language's default text (else English)."""
    exclusive: str | None = None
    """An offer exclusive to the member's tier and above; None: the default text."""

    @model_validator(mode="after")
    def _known_placeholders(self) -> ReasonTexts:
        for name in type(self).model_fields:
            text = getattr(self, name)
            if text is None:
                continue
            names = {field for _, field, _, _ in Formatter().parse(text) if field}
            unknown = names - REASON_FIELDS.get(name, set())
            if unknown:
                raise ValueError(f"{name}: unknown placeholders {sorted(unknown)}")
        return self


DEFAULT_REASONS = {
    "en": ReasonTexts(
        repeat="you often buy {category} at {partner}",
        picked="picked for you",
        popular="popular in your region",
        tier="{tier} offer",
        birthday="for your birthday",
        welcome="welcome to the program",
        winback="we miss you",
        tier_upgrade="closer to your next tier",
        exclusive="exclusive for {tier} members",
    ),
    "ru": ReasonTexts(
        repeat="вы часто покупаете {category} в {partner}",
        picked="подобрано для вас",
        popular="популярно в вашем регионе",
        tier="предложение уровня {tier}",
        birthday="к вашему дню рождения",
        welcome="добро пожаловать в программу",
        winback="мы по вам скучаем",
        tier_upgrade="ближе к следующему уровню",
        exclusive="только для уровня {tier} и выше",
    ),
}


class Retention(PrivacySection):
    """How long records are kept, in days (consent records longest)."""

    events_days: int = Field(400, gt=0, le=MAX_RETENTION_DAYS)
    decisions_days: int = Field(400, gt=0, le=MAX_RETENTION_DAYS)
    consents_days: int = Field(1827, gt=0, le=MAX_RETENTION_DAYS)

    @model_validator(mode="after")
    def _consents_longest(self) -> Retention:
        if self.consents_days < max(self.events_days, self.decisions_days):
            raise ValueError("consents_days must be at least events_days and decisions_days")
        return self


Language = Annotated[str, Field(pattern=r"^[a-z]{2,3}$")]


class ServingPrivacy(PrivacySection):
    """`privacy` in configs/serve.yaml."""

    sensitive_categories: tuple[str, ...] = (
        "Pharmacy",
        "Alcohol",
        "Tobacco",
        "Gambling",
        "Loans",
        "Adult",
    )
    """Never personalized without the member's consent; compared case-insensitively."""
    default_language: Language = "en"
    reasons: dict[Language, ReasonTexts] = Field(default_factory=lambda: dict(DEFAULT_REASONS))
    retention: Retention = Retention()

    @field_validator("reasons")
    @classmethod
    def _some_language(cls, reasons: dict[str, ReasonTexts]) -> dict[str, ReasonTexts]:
        if not reasons:
            raise ValueError("at least one language")
        return reasons

    @model_validator(mode="after")
    def _default_known(self) -> ServingPrivacy:
        if self.default_language not in self.reasons:
            raise ValueError(f"default_language {self.default_language!r} has no reasons")
        return self

    @field_validator("reasons")
    @classmethod
    def _texts_filled(cls, reasons: dict[str, ReasonTexts]) -> dict[str, ReasonTexts]:
        """Optional texts a language leaves out come from its default (else English)."""
        filled = {}
        for language, texts in reasons.items():
            default = DEFAULT_REASONS.get(language, DEFAULT_REASONS["en"])
            missing = {
                name: getattr(default, name)
                for name in OPTIONAL_REASONS
                if getattr(texts, name) is None
            }
            filled[language] = texts.model_copy(update=missing) if missing else texts
        return filled
