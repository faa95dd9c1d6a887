"""How perkrank's values are written into Redis: preference hash fields and event stream
entries (the layout is in docs/redis_keys.md)."""

from __future__ import annotations

from typing import Any

from perkrank.serving.domain.events import OfferEvent
from perkrank.serving.domain.selection import Preferences

OPT_OUT_KINDS = ("channel", "category", "partner", "consent")
"""Set fields of the preferences hash, `kind:value` (consent: a sensitive category agreed to)."""


def fields_from_preferences(preferences: Preferences) -> dict[str, str]:
    """The member's preferences hash: flags, and one `kind:value` field per opt-out or
    consent."""
    fields = {
        "opt_out_all": "1" if preferences.opt_out_all else "0",
        "personalization": "1" if preferences.personalization else "0",
        "purchase_reasons": "1" if preferences.purchase_reasons else "0",
    }
    for kind, values in zip(
        OPT_OUT_KINDS,
        (
            preferences.opted_out_channels,
            preferences.opted_out_categories,
            preferences.opted_out_partners,
            preferences.consents,
        ),
        strict=True,
    ):
        fields.update((f"{kind}:{value}", "1") for value in values)
    return fields


def preferences_from_fields(fields: dict[str, str]) -> Preferences:
    """The preferences `fields_from_preferences` wrote (defaults for an empty hash)."""
    opted_out: dict[str, set[str]] = {kind: set() for kind in OPT_OUT_KINDS}
    for field in fields:
        kind, separator, value = field.partition(":")
        if separator:
            opted_out[kind].add(value)
    return Preferences(
        opt_out_all=fields.get("opt_out_all") == "1",
        opted_out_channels=frozenset(opted_out["channel"]),
        opted_out_categories=frozenset(opted_out["category"]),
        opted_out_partners=frozenset(opted_out["partner"]),
        personalization=fields.get("personalization") != "0",
        consents=frozenset(opted_out["consent"]),
        purchase_reasons=fields.get("purchase_reasons") != "0",
    )


ENTRY_FIELDS = ("type", "member_id", "offer_id", "partner_id", "category", "channel")


def stream_entry(event: OfferEvent) -> list[str]:
    """The event as stream entry field, value pairs (see docs/redis_keys.md)."""
    entry = []
    for name in ENTRY_FIELDS:
        entry += (name, getattr(event, name))
    ids = ["event_id", event.event_id or "", "decision_id", event.decision_id or ""]
    return [*entry, "ts", repr(event.ts), *ids]


def event_of_entry(fields: dict[str, str]) -> OfferEvent:
    """The event `stream_entry` wrote."""
    values: dict[str, Any] = {name: fields[name] for name in ENTRY_FIELDS}
    return OfferEvent(
        **values,
        ts=float(fields["ts"]),
        event_id=fields["event_id"] or None,
        decision_id=fields.get("decision_id") or None,
    )
