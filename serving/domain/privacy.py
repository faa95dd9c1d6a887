"""Members' privacy records: consent records of preference changes, what forgetting a member
removed, and the exclusions training reads (pure, immutable types)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from perkrank.serving.domain.selection import Preferences

CONSENTS_KEPT = 100
"""Consent records kept per member, newest first; older ones are dropped."""
FORGOTTEN_AUDIT_KEPT = 10_000
"""Forget audit entries kept, newest first."""
ExclusionReason = Literal["forgotten", "no_personalization"]
OPT_OUT_FIELDS = ("opted_out_channels", "opted_out_categories", "opted_out_partners", "consents")
"""The set fields of Preferences (consents beside the opt-outs)."""
FLAG_FIELDS = ("opt_out_all", "personalization", "purchase_reasons")
FLAG_DEFAULTS = {"opt_out_all": False, "personalization": True, "purchase_reasons": True}


def preferences_record(preferences: Preferences) -> dict[str, Any]:
    """The preferences as JSON values (opt-out lists sorted)."""
    record: dict[str, Any] = {name: getattr(preferences, name) for name in FLAG_FIELDS}
    record |= {name: sorted(getattr(preferences, name)) for name in OPT_OUT_FIELDS}
    return record


def preferences_of_record(record: dict[str, Any]) -> Preferences:
    """The preferences `preferences_record` wrote (fields added later: their defaults)."""
    flags = {name: record.get(name, FLAG_DEFAULTS[name]) for name in FLAG_FIELDS}
    sets = {name: frozenset(record.get(name, ())) for name in OPT_OUT_FIELDS}
    return Preferences(**flags, **sets)


@dataclass(frozen=True)
class ConsentSource:
    """Who changed a member's preferences, through what, and when."""

    actor: str
    """The API key's name (never the key)."""
    source: str
    """The channel the member used (`X-Consent-Source`), e.g. app, web, store, support."""
    at: float
    """Unix seconds."""


@dataclass(frozen=True)
class ConsentRecord:
    """One change of a member's preferences: old → new, by whom, through what, when."""

    member_id: str
    consent: ConsentSource
    old: Preferences
    new: Preferences

    def changed(self) -> list[str]:
        """The names of the preference fields that changed."""
        old, new = preferences_record(self.old), preferences_record(self.new)
        return [name for name in old if old[name] != new[name]]

    def record(self) -> dict[str, Any]:
        """The record as JSON values."""
        return {
            "member_id": self.member_id,
            "at": self.consent.at,
            "actor": self.consent.actor,
            "source": self.consent.source,
            "changed": self.changed(),
            "old": preferences_record(self.old),
            "new": preferences_record(self.new),
        }

    def to_json(self) -> str:
        """The record as stores keep it."""
        return json.dumps(self.record(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ConsentRecord:
        """The record `to_json` wrote."""
        record = json.loads(text)
        consent = ConsentSource(record["actor"], record["source"], record["at"])
        old, new = (preferences_of_record(record[name]) for name in ("old", "new"))
        return cls(record["member_id"], consent, old, new)


@dataclass(frozen=True)
class Exclusion:
    """A member training must leave out, by the hash of their id (`member_hash`)."""

    member_hash: str
    reason: ExclusionReason
    at: float | None = None
    """When they were forgotten (Unix seconds); None for personalization turned off."""


@dataclass(frozen=True)
class Forgotten:
    """What forgetting one member did: the audit entry (no deleted data, the id hashed)."""

    member_hash: str
    actor: str
    at: float
    already_suppressed: bool
    """True when the member was forgotten before (this call removed what came since)."""
    removed: dict[str, int] = field(default_factory=dict)
    """How many of each were removed: keys, events, decisions, consents."""

    def to_json(self) -> str:
        """The audit entry as stores keep it."""
        return json.dumps(self.__dict__, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Forgotten:
        """The audit entry `to_json` wrote."""
        return cls(**json.loads(text))


def phase_cursor(cursor: str) -> tuple[ExclusionReason, str]:
    """An exclusions cursor as (phase, position): "0" starts with the forgotten members; the
    personalization-off members follow (`p:<position>`)."""
    if cursor.startswith("p:"):
        return "no_personalization", cursor[2:]
    return "forgotten", cursor.removeprefix("s:")


def next_phase_cursor(phase: ExclusionReason, position: str) -> str:
    """The cursor after a page of `phase` that ended at `position` ("0": its end)."""
    if phase == "forgotten":
        return "p:0" if position == "0" else f"s:{position}"
    return "0" if position == "0" else f"p:{position}"


def sensitive_categories(categories: Iterable[str], sensitive: Iterable[str]) -> frozenset[str]:
    """The names of `categories` (as the catalog spells them) that one of `sensitive` names,
    compared case-insensitively."""
    folded = {name.casefold() for name in sensitive}
    return frozenset(category for category in categories if category.casefold() in folded)
