"""What ranking hands the member-state store and what it gets back: pure, immutable types."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol

from perkrank.config import CapRule


@dataclass(frozen=True)
class Preferences:
    """What a member opted out of and consented to. The default opts out of nothing and
    consents to no sensitive category."""

    opt_out_all: bool = False
    opted_out_channels: frozenset[str] = frozenset()
    opted_out_categories: frozenset[str] = frozenset()
    opted_out_partners: frozenset[str] = frozenset()
    personalization: bool = True
    consents: frozenset[str] = frozenset()
    """Sensitive categories the member agreed to have personalized."""
    purchase_reasons: bool = True
    """False: no reason mentions the member's purchases."""


@dataclass(frozen=True)
class Candidate:
    """An eligible offer, as the store needs to know it to apply rules."""

    offer_id: str
    partner_id: str
    category: str
    budget: int | None = None
    local: bool = False
    """Its partner is local (`scope` local): counts toward the region's local floor."""

    @cached_property
    def record(self) -> str:
        """Its fields joined by \\x1f (budget empty when None, local `1` or empty), as
        RedisStateStore ships it; computed once per Candidate, when its catalog is built (which
        leaves out an offer whose record cannot be built). Raises ValueError when an id holds
        \\x1e or \\x1f, which would split it."""
        fields = (self.offer_id, self.partner_id, self.category)
        if any("\x1e" in field or "\x1f" in field for field in fields):
            raise ValueError(f"offer {self.offer_id!r}: an id holds the character \\x1e or \\x1f")
        budget = "" if self.budget is None else self.budget
        local = "1" if self.local else ""
        return f"{self.offer_id}\x1f{self.partner_id}\x1f{self.category}\x1f{budget}\x1f{local}"


@dataclass(frozen=True)
class SelectionRequest:
    """One request's candidates, best first, in two orders: personalized and fallback."""

    member_id: str
    channel: str
    now: float
    """Unix seconds; picks the cap windows."""
    limit: int
    max_per_partner: int
    personalized: Sequence[Candidate]
    fallback: Sequence[Candidate]
    """Used instead of `personalized` when the member turned personalization off."""
    rules: Sequence[CapRule] = ()
    sensitive: frozenset[str] = frozenset()
    """The catalog's sensitive category names: left out of the personalized order unless the
    member consented to the category (`Preferences.consents`)."""
    decision_id: str = ""
    """The decision this selection shows (empty: none). One the member was shown before,
    within `decision_ttl_seconds`, is a re-show (on another channel): rules counting `served`
    neither block nor count it again."""
    decision_ttl_seconds: int = 7 * 86_400
    """How long the store remembers a decision shown to the member."""
    local_slots: int = 0
    """The local floor: at least this many of the chosen offers are local candidates
    (`Candidate.local`) when that many pass the rules (else every local one that passes)."""


SUPPRESSION_REASONS = ("opt_out", "sensitive", "partner_limit", "budget", "cap")
"""Why a candidate was left out, in the order the rules are checked."""


@dataclass(frozen=True)
class Selection:
    """What `select` returned and why the rest was left out."""

    offer_ids: list[str]
    personalized: bool
    suppressed: dict[str, int] = field(default_factory=dict)
    """Candidates left out, by reason: opt_out, sensitive, partner_limit, budget, cap."""
    purchase_reasons: bool = True
    """The member lets reasons mention their purchases (`Preferences.purchase_reasons`)."""


class OfferSelector(Protocol):
    """What ranking needs of the member-state store: one atomic select-and-count call."""

    async def select(self, request: SelectionRequest) -> Selection:
        """Apply the rules to `request`'s candidates, count what is returned."""
        ...


class BatchSelector(Protocol):
    """What batch ranking needs of the store: `select` of many requests in one call."""

    async def select_many(self, requests: Sequence[SelectionRequest]) -> list[Selection]:
        """`select` of each request, in order, each counted atomically on its own."""
        ...
