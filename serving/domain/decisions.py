"""The decision log's records: what one offers response showed a member, and under which policy.

Every offers response is one `Decision`: which model, experiment and arm answered, and each
offer shown with its rank, score and propensity (the probability that the answering policy
shows that offer at that rank: 1.0 for the deterministic policies of today). Decisions are
what lift analysis joins events to (`perkrank.serving.domain.attribution`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

DETERMINISTIC = 1.0
"""The propensity of every offer a deterministic policy shows."""


class DecidedOffer(NamedTuple):
    """One offer a decision showed: its 1-based rank, score and propensity."""

    offer_id: str
    rank: int
    score: float
    propensity: float


@dataclass(frozen=True)
class Decision:
    """One offers response as the decision log keeps it."""

    decision_id: str
    member_id: str
    channel: str
    ts: float
    """Unix seconds: when it was decided."""
    model_version: str
    experiment: str | None
    """None when no experiment ran."""
    arm: str | None
    policy: str
    """`personalized`, `popular` or `none`: what the arm (or, without one, serving) asked for."""
    personalized: bool
    """Whether the offers follow the personalized order (False for a member who turned
    personalization off, and for the popular and none policies)."""
    offers: tuple[DecidedOffer, ...]

    def record(self) -> dict[str, Any]:
        """The decision as JSON values (stores keep it so; `from_record` reads it back)."""
        fields = self.__dict__ | {"offers": [list(offer) for offer in self.offers]}
        return dict(fields)

    def record_json(self) -> bytes:
        """`record()` as JSON (orjson writes the fields in order, each offer as a list)."""
        return orjson.dumps(self, default=list)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Decision:
        """The decision `record` wrote."""
        offers = tuple(DecidedOffer(*offer) for offer in record["offers"])
        return cls(**(record | {"offers": offers}))


@dataclass(frozen=True)
class StoredDecision:
    """A kept decision and its position in the decision stream (`<ms>-<seq>`)."""

    stream_id: str
    decision: Decision
