"""The decision log and events as exported (`perkrank decisions export`, `perkrank events
export`), read back for off-policy evaluation: decisions, events, and each shown offer's reward.

Rows are what `read_rows` gives for a .csv or .parquet export (CSV cells are text). A shown
offer is rewarded with a click (or a redemption) when an event of that type for that offer is
attributed to its decision (`serving.domain.attribution`: by `decision_id`, else the member's
latest decision that showed the offer within 7 days). Bad rows raise `ValueError` naming the
row (1-based, after the header) and the field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from perkrank.serving.domain.attribution import DecisionIndex
from perkrank.serving.domain.decisions import DecidedOffer, Decision
from perkrank.serving.domain.events import OfferEvent
from perkrank.training.off_policy import LoggedLists

REWARDS = ("click", "redemption")
"""Event types off-policy evaluation estimates a rate of."""


def decisions_from_rows(rows: Iterable[Mapping[str, Any]]) -> list[Decision]:
    """Decisions of export rows (a row per offer shown), in the order their ids first come,
    each decision's offers by rank."""
    fields: dict[str, dict[str, Any]] = {}
    offers: dict[str, list[DecidedOffer]] = {}
    for number, row in enumerate(rows, start=1):
        decision_id = _text(row, "decision_id", number)
        if decision_id not in fields:
            fields[decision_id] = {
                "decision_id": decision_id,
                "member_id": _text(row, "member_id", number),
                "channel": str(row.get("channel") or ""),
                "ts": _seconds(row, number),
                "model_version": str(row.get("model_version") or ""),
                "experiment": row.get("experiment") or None,
                "arm": row.get("arm") or None,
                "policy": str(row.get("policy") or ""),
                "personalized": _flag(row.get("personalized")),
            }
            offers[decision_id] = []
        if row.get("offer_id"):
            offers[decision_id].append(
                DecidedOffer(
                    str(row["offer_id"]),
                    int(_number(row, "rank", number)),
                    _number(row, "score", number),
                    _number(row, "propensity", number),
                )
            )
    return [
        Decision(**fields[key], offers=tuple(sorted(offers[key], key=lambda offer: offer.rank)))
        for key in fields
    ]


def events_from_rows(rows: Iterable[Mapping[str, Any]]) -> list[OfferEvent]:
    """Events of export rows."""
    return [
        OfferEvent(
            type=_text(row, "type", number),
            member_id=_text(row, "member_id", number),
            offer_id=_text(row, "offer_id", number),
            partner_id=str(row.get("partner_id") or ""),
            category=str(row.get("category") or ""),
            channel=str(row.get("channel") or ""),
            ts=_seconds(row, number),
            event_id=row.get("event_id") or None,
            decision_id=row.get("decision_id") or None,
        )
        for number, row in enumerate(rows, start=1)
    ]


def rewarded_offers(
    decisions: Sequence[Decision], events: Iterable[OfferEvent], kind: str
) -> set[tuple[str, str]]:
    """(decision id, offer id) of every shown offer an event of type `kind` is attributed to."""
    index = DecisionIndex(decisions)
    rewarded = set()
    for event in events:
        if event.type != kind:
            continue
        decision = index.attribute(event)
        if decision is not None and any(o.offer_id == event.offer_id for o in decision.offers):
            rewarded.add((decision.decision_id, event.offer_id))
    return rewarded


def logged_lists(decisions: Sequence[Decision], rewarded: set[tuple[str, str]]) -> LoggedLists:
    """The decisions' shown offers, propensities and 0/1 rewards as estimator arrays."""
    return LoggedLists.build(
        [[offer.offer_id for offer in decision.offers] for decision in decisions],
        [[offer.propensity for offer in decision.offers] for decision in decisions],
        [
            [float((decision.decision_id, offer.offer_id) in rewarded) for offer in decision.offers]
            for decision in decisions
        ],
    )


def _text(row: Mapping[str, Any], field: str, number: int) -> str:
    value = row.get(field)
    if value is None or value == "":
        raise ValueError(f"row {number}, field {field!r}: missing")
    return str(value)


def _number(row: Mapping[str, Any], field: str, number: int) -> float:
    try:
        return float(row[field])
    except (KeyError, TypeError, ValueError):
        raise ValueError(
            f"row {number}, field {field!r}: not a number: {row.get(field)!r}"
        ) from None


def _seconds(row: Mapping[str, Any], number: int) -> float:
    """The row's `ts` as Unix seconds (a datetime from Parquet, ISO 8601 text from CSV)."""
    value = row.get("ts")
    if isinstance(value, datetime):
        return value.timestamp()
    try:
        return datetime.fromisoformat(str(value).lstrip("'")).timestamp()
    except ValueError:
        raise ValueError(f"row {number}, field 'ts': not an ISO 8601 time: {value!r}") from None


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1")
