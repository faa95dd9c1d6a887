"""The offer selection policy as one pure function: `select_offers`.

Both state stores decide by it: MemoryStateStore calls it under its lock, and serving/select.lua
is its step-by-step translation for Redis (atomic there). Nothing here reads a clock, does I/O
or draws random numbers: the same state and request always give the same `Choice`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Literal, NamedTuple, Protocol, TypeVar

from perkrank.config import CapRule
from perkrank.serving.domain.selection import (
    SUPPRESSION_REASONS,
    Candidate,
    Preferences,
    Selection,
    SelectionRequest,
)
from perkrank.serving.domain.windows import current_bucket

Reason = Literal["opt_out", "sensitive", "partner_limit", "budget", "cap", "limit"]
"""Why a candidate was left out: a SUPPRESSION_REASONS entry, or `limit` for a candidate the
walk never reached because `request.limit` offers were chosen already (not a suppression)."""
LIMIT_REACHED: Reason = "limit"

_Key = TypeVar("_Key", contravariant=True)


class Counts(Protocol[_Key]):
    """Read-only counts by key; a key not held counts 0. A dict is one; a store may pass a
    lazy view that looks counters up as the walk reaches them."""

    def get(self, key: _Key, default: int, /) -> int: ...


class CapCounter(NamedTuple):
    """One of the member's cap counters: a rule's count for one scope value in one bucket."""

    rule: str
    scope: str
    bucket: str
    """`current_bucket(rule.window, request.now).label`."""
    value: str
    """The offer id (member_offer, offer_total), partner id (member_partner) or channel."""


@dataclass(frozen=True)
class MemberState:
    """Everything the rules read, as of `request.now`, for the request's member."""

    preferences: Preferences
    cap_counts: Counts[CapCounter]
    """Counts so far of the member-scoped counters and of the offers' offer_total counters."""
    redeemed: Counts[str]
    """Redemptions so far by offer id; compared with `Candidate.budget`."""
    reshown: bool = False
    """`request.decision_id` was shown to the member before (within its ttl)."""


class Exclusion(NamedTuple):
    """A candidate left out: its position in the order used, and why."""

    position: int
    offer_id: str
    reason: Reason
    detail: str | None = None
    """opt_out: `all`, `channel`, `category` or `partner`; sensitive: the category;
    partner_limit: the partner id;
    cap: the name of the first rule at its limit; budget and limit: None."""


@dataclass(frozen=True)
class Increment:
    """Add `amount` to `counter`; a counter created by it expires after `ttl_seconds`."""

    counter: CapCounter
    amount: int
    ttl_seconds: int | None
    """Seconds until the counter's bucket ends; None: never (a `total` window)."""


@dataclass(frozen=True)
class Choice:
    """What `select_offers` decided."""

    positions: tuple[int, ...]
    """The chosen candidates' positions in the order used, in order."""
    offer_ids: tuple[str, ...]
    personalized: bool
    """True when `request.personalized` was walked, False for `request.fallback`."""
    left_out: tuple[Exclusion, ...]
    """Every other candidate of the order used, by position."""
    increments: tuple[Increment, ...]
    """What the store adds to the counters of rules counting `served`."""
    purchase_reasons: bool = True
    """`Preferences.purchase_reasons` of the member."""
    remember_decision: bool = False
    """The store records `request.decision_id` as shown to the member (a new decision that
    walked its candidates)."""

    @property
    def suppressed(self) -> dict[str, int]:
        """Candidates left out by SUPPRESSION_REASONS reason (nonzero only), as `Selection`."""
        counts = Counter(exclusion.reason for exclusion in self.left_out)
        return {reason: counts[reason] for reason in SUPPRESSION_REASONS if counts[reason]}

    def selection(self) -> Selection:
        """The `StateStore.select` answer."""
        return Selection(
            list(self.offer_ids), self.personalized, self.suppressed, self.purchase_reasons
        )


def select_offers(state: MemberState, request: SelectionRequest) -> Choice:
    """Walk the member's candidates best first and choose up to `request.limit` of them.

    Parameters
    ----------
    state:
        The member's preferences, cap counters and the candidates' redemptions, as of
        `request.now`, before this request.
    request:
        Member, channel, `now` (picks each rule's bucket), `limit`, `max_per_partner`,
        `local_slots`, the two candidate orders and the cap rules (names unique, as
        CapsConfig ensures).

    Returns
    -------
    Choice
        The order used is `request.personalized` unless the member turned personalization
        off (`request.fallback`). A member who opted out of everything, or of the request's
        channel, gets nothing: every candidate is left out as `opt_out`. Otherwise the walk
        takes candidates in order until `limit` are chosen (the rest are left out as
        `limit`); a candidate is left out by the first rule it breaks, checked in the order
        of SUPPRESSION_REASONS:

        1. `opt_out`: the member opted out of its category or its partner;
        2. `sensitive`: walking the personalized order, its category is one of
           `request.sensitive` and not one the member consented to (`Preferences.consents`):
           a sensitive offer is never chosen by personalization without consent;
        3. `partner_limit`: `max_per_partner` offers of its partner were chosen already;
        4. `budget`: it has a budget and was redeemed at least that often;
        5. `cap`: a rule's counter for it (its offer, partner or the channel) is at the
           rule's limit, counting what this walk chose already for rules counting `served`.

        With `request.local_slots` (the region's local floor), a first walk takes local
        candidates (`Candidate.local`) by the same rules, in order, until that many (at most
        `limit`) are chosen; the walk above then fills the rest of the list, counting them.
        So the list holds `min(local_slots, limit)` local offers whenever that many pass the
        rules, else every local one that passes; a candidate the first walk took is never
        left out, and the others' reasons are those of the second walk. The chosen positions
        are in order. Without local slots this is the one walk above.

        Each chosen candidate adds 1 to its counter of every rule counting `served`; those
        additions, summed per counter in the order first touched, are the increments. Rules
        counting events are read, never incremented here.

        A re-shown decision (`state.reshown`: its `decision_id` was shown to the member
        before, on any channel) was counted when first shown: rules counting `served` neither
        leave its candidates out nor count them again. A new decision with an id is
        remembered (`Choice.remember_decision`) unless the member gets nothing at all.
    """
    preferences = state.preferences
    personalized = preferences.personalization
    candidates = request.personalized if personalized else request.fallback
    blanket = _blanket_opt_out(preferences, request.channel)
    if blanket is not None:
        left_out = tuple(
            Exclusion(position, candidate.offer_id, "opt_out", blanket)
            for position, candidate in enumerate(candidates)
        )
        return Choice((), (), personalized, left_out, (), preferences.purchase_reasons)
    caps = [
        _Cap.of(rule, request.now)
        for rule in request.rules
        if not (state.reshown and rule.counts == "served")
    ]
    guarded = request.sensitive - preferences.consents if personalized else frozenset()
    served: dict[CapCounter, int] = {}
    taken_by_partner: Counter[str] = Counter()
    chosen: set[int] = set()

    def broken(candidate: Candidate) -> _Why | None:
        return (
            _opt_out(preferences, candidate)
            or _unconsented(candidate, guarded)
            or _partner_limit(candidate, taken_by_partner, request.max_per_partner)
            or _budget_spent(candidate, state.redeemed)
            or _capped(caps, candidate, request.channel, state.cap_counts, served)
        )

    def choose(position: int, candidate: Candidate) -> None:
        chosen.add(position)
        taken_by_partner[candidate.partner_id] += 1
        _count_served(caps, candidate, request.channel, served)

    local_slots = min(request.local_slots, request.limit)
    for position, candidate in enumerate(candidates):
        if len(chosen) >= local_slots:
            break
        if candidate.local and broken(candidate) is None:
            choose(position, candidate)
    left: list[Exclusion] = []
    for position, candidate in enumerate(candidates):
        if position in chosen:
            continue
        if len(chosen) >= request.limit:
            left.append(Exclusion(position, candidate.offer_id, LIMIT_REACHED))
            continue
        why = broken(candidate)
        if why is not None:
            left.append(Exclusion(position, candidate.offer_id, *why))
            continue
        choose(position, candidate)
    positions = sorted(chosen)
    return Choice(
        tuple(positions),
        tuple(candidates[position].offer_id for position in positions),
        personalized,
        tuple(left),
        _increments(caps, served),
        preferences.purchase_reasons,
        bool(request.decision_id) and not state.reshown,
    )


_Why = tuple[Reason, str | None]


def _blanket_opt_out(preferences: Preferences, channel: str) -> str | None:
    """`all` or `channel` when the member gets nothing at all on this channel."""
    if preferences.opt_out_all:
        return "all"
    if channel in preferences.opted_out_channels:
        return "channel"
    return None


def _opt_out(preferences: Preferences, candidate: Candidate) -> _Why | None:
    """The member opted out of the candidate's category (checked first) or partner."""
    if candidate.category in preferences.opted_out_categories:
        return "opt_out", "category"
    if candidate.partner_id in preferences.opted_out_partners:
        return "opt_out", "partner"
    return None


def _unconsented(candidate: Candidate, guarded: frozenset[str]) -> _Why | None:
    """The candidate's category is sensitive and the member did not consent to it."""
    if candidate.category in guarded:
        return "sensitive", candidate.category
    return None


def _partner_limit(candidate: Candidate, taken: Counter[str], max_per_partner: int) -> _Why | None:
    """`max_per_partner` offers of the candidate's partner are chosen already."""
    if taken[candidate.partner_id] >= max_per_partner:
        return "partner_limit", candidate.partner_id
    return None


def _budget_spent(candidate: Candidate, redeemed: Counts[str]) -> _Why | None:
    """The candidate has a budget and was redeemed at least that often."""
    if candidate.budget is not None and redeemed.get(candidate.offer_id, 0) >= candidate.budget:
        return "budget", None
    return None


def _capped(
    caps: list[_Cap],
    candidate: Candidate,
    channel: str,
    counts: Counts[CapCounter],
    served: dict[CapCounter, int],
) -> _Why | None:
    """The first rule, in order, whose counter (stored + chosen in this walk) is at its limit."""
    for cap in caps:
        counter = cap.counter(candidate, channel)
        if counts.get(counter, 0) + served.get(counter, 0) >= cap.limit:
            return "cap", cap.name
    return None


def _count_served(
    caps: list[_Cap], candidate: Candidate, channel: str, served: dict[CapCounter, int]
) -> None:
    """A chosen candidate adds 1 to its counter of every rule counting `served`."""
    for cap in caps:
        if cap.served:
            counter = cap.counter(candidate, channel)
            served[counter] = served.get(counter, 0) + 1


def _increments(caps: list[_Cap], served: dict[CapCounter, int]) -> tuple[Increment, ...]:
    """The walk's additions, with the expiry of each rule's current bucket."""
    ttl_by_rule = {cap.name: cap.ttl_seconds for cap in caps}
    return tuple(
        Increment(counter, amount, ttl_by_rule[counter.rule]) for counter, amount in served.items()
    )


class _Cap(NamedTuple):
    """A cap rule as of `request.now`: what the walk needs of it and of its current bucket."""

    name: str
    scope: str
    limit: int
    served: bool
    bucket: str
    ttl_seconds: int | None

    @classmethod
    def of(cls, rule: CapRule, now: float) -> _Cap:
        bucket = current_bucket(rule.window, now)
        served = rule.counts == "served"
        return cls(rule.name, rule.scope, rule.limit, served, bucket.label, bucket.ttl_seconds)

    def counter(self, candidate: Candidate, channel: str) -> CapCounter:
        """This rule's counter for the candidate: by its offer, its partner or the channel."""
        return CapCounter(
            self.name, self.scope, self.bucket, scope_value(self.scope, candidate, channel)
        )


def scope_value(scope: str, candidate: Candidate, channel: str) -> str:
    """What a rule of `scope` counts by: the partner id, the channel, else the offer id."""
    if scope == "member_partner":
        return candidate.partner_id
    if scope == "member_channel":
        return channel
    return candidate.offer_id
