"""What a change of cap rules would do, before it is saved: diff, warnings and a what-if replay.

The replay walks the logged decisions of the last days in time order, with the logged events
(impressions, clicks, redemptions) counted from when the store recorded them (their stream id),
in the buckets of their own time, as the store counted them. Its headline figures (`replay`)
keep each logged showing, best first, that the rules would still allow given what the log
holds before it: every logged showing counts against the rules counting `served` whether or not
the rules replayed keep it. So the replayed showings are a subset of the logged ones, the rules
in force reproduce the log exactly (counters start at 0 and only count what the log holds,
never more than the store did), and lowering any limit (or adding a rule) can only hide more
showings: in total, per offer, per partner and per member, a lowered cap never shows more
offers. Offers never shown cannot appear, so a looser rule set previews no gain.

A second figure (`replay_freeing_room`) lets a showing the rules hide free its room: it counts
only the showings they keep, so a later logged showing another rule blocked in the log may come
back. That is closer to what the service would do, but not monotone: with two more rules
counting showings, a lowered cap can show more offers in total (tests/serving/domain/
test_cap_preview.py has the counterexample). Neither refills from offers the log never showed.
Expected redemptions use each offer's observed redemption rate among its showings; a reward
cost needs a cost per redemption (`reward_costs`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from perkrank.config import CapRule
from perkrank.serving.domain.decisions import Decision
from perkrank.serving.domain.events import OfferEvent, StoredEvent
from perkrank.serving.domain.rules import CapCounter, MemberState, scope_value, select_offers
from perkrank.serving.domain.selection import Candidate, Preferences, SelectionRequest
from perkrank.serving.domain.windows import current_bucket
from perkrank.setting_diffs import rule_changes

MEMBER_SCOPES = ("member_offer", "member_partner", "member_channel")


@dataclass(frozen=True)
class Outcome:
    """Who saw what under one rule set: per member, offer and partner."""

    shown: Counter[str] = field(default_factory=Counter)
    """Showings by offer id."""
    members: frozenset[str] = frozenset()
    """Members shown at least one offer."""
    shown_by_decision: tuple[tuple[str, ...], ...] = ()
    """Each replayed decision's shown offers, in the log's order."""
    counts: Mapping[tuple[str, CapCounter], int] = field(default_factory=dict)
    """The replay's counters at its end: (member id, "" for offer_total) × counter."""


@dataclass(frozen=True)
class OfferFigures:
    """One offer's (or partner's) figures under one rule set."""

    shown: int
    expected_redemptions: float
    reward_cost: float | None
    """None: no cost per redemption known for some offer counted here."""


@dataclass(frozen=True)
class SideBySide:
    """An offer's or partner's figures under the rules in force and the proposed ones."""

    current: OfferFigures
    proposed: OfferFigures


@dataclass(frozen=True)
class Preview:
    """What saving the proposed rules would do."""

    changes: list[str]
    warnings: list[str]
    decisions: int
    """Logged decisions replayed."""
    members_reached: tuple[int, int]
    """(current, proposed)."""
    offers_shown: tuple[int, int]
    """Logged showings each rule set keeps (`replay`): proposed ≤ in force when only lowered."""
    offers_shown_freeing_room: tuple[int, int]
    """The same when hidden showings free room for later logged ones (`replay_freeing_room`)."""
    expected_redemptions: tuple[float, float]
    reward_cost: tuple[float | None, float | None]
    by_offer: dict[str, SideBySide]
    by_partner: dict[str, SideBySide]


def replay(
    rules: Sequence[CapRule],
    decisions: Sequence[Decision],
    events: Sequence[StoredEvent],
    candidates: Mapping[str, Candidate],
) -> Outcome:
    """The logged showings `rules` keep, each checked by `select_offers` against the counters
    of everything logged before it (its decision's better-ranked showings included), kept or
    not: the headline replay (see the module docstring).

    `decisions` count at their time and `events` at the time their stream id was made, merged
    in time order, a decision first on a tie, with fresh counters. `candidates` gives each
    offer's partner, category and budget (an offer missing there counts as its own partner and
    category).
    """
    return _replay(rules, decisions, events, candidates, freeing_room=False)


def replay_freeing_room(
    rules: Sequence[CapRule],
    decisions: Sequence[Decision],
    events: Sequence[StoredEvent],
    candidates: Mapping[str, Candidate],
) -> Outcome:
    """Like `replay`, but only the showings `rules` keep count against them: one walk of
    `select_offers` per decision over its logged showings (not monotone in the limits)."""
    return _replay(rules, decisions, events, candidates, freeing_room=True)


def _replay(
    rules: Sequence[CapRule],
    decisions: Sequence[Decision],
    events: Sequence[StoredEvent],
    candidates: Mapping[str, Candidate],
    freeing_room: bool,
) -> Outcome:
    counts: dict[tuple[str, CapCounter], int] = defaultdict(int)
    redeemed: Counter[str] = Counter()
    shown: Counter[str] = Counter()
    members: set[str] = set()
    by_decision: list[tuple[str, ...]] = [()] * len(decisions)
    timeline = sorted(
        [(decision.ts, 0, index) for index, decision in enumerate(decisions)]
        + [(recorded_at(stored.stream_id), 1, index) for index, stored in enumerate(events)]
    )
    for ts, kind, index in timeline:
        if kind == 1:
            event = events[index].event
            _count_event(rules, event, counts)
            if event.type == "redemption":
                redeemed[event.offer_id] += 1
            continue
        decision = decisions[index]
        ordered = sorted(decision.offers, key=lambda offer: offer.rank)
        walk = [_candidate(candidates, offer.offer_id) for offer in ordered]
        state = MemberState(Preferences(), _MemberCounts(counts, decision.member_id), redeemed)
        if freeing_room:
            kept = _select(state, decision, ts, walk, rules)
            _add(counts, decision.member_id, _served_counters(rules, kept, decision.channel, ts))
        else:
            kept = []
            for candidate in walk:
                kept += _select(state, decision, ts, [candidate], rules)
                served = _served_counters(rules, [candidate], decision.channel, ts)
                _add(counts, decision.member_id, served)
        offer_ids = tuple(candidate.offer_id for candidate in kept)
        shown.update(offer_ids)
        if offer_ids:
            members.add(decision.member_id)
        by_decision[index] = offer_ids
    return Outcome(shown, frozenset(members), tuple(by_decision), dict(counts))


def _select(
    state: MemberState,
    decision: Decision,
    ts: float,
    walk: list[Candidate],
    rules: Sequence[CapRule],
) -> list[Candidate]:
    """The candidates of `walk` (best first) `select_offers` keeps, none left out by a limit."""
    choice = select_offers(
        state,
        SelectionRequest(
            member_id=decision.member_id,
            channel=decision.channel,
            now=ts,
            limit=len(walk),
            max_per_partner=len(walk),
            personalized=walk,
            fallback=walk,
            rules=rules,
        ),
    )
    return [walk[position] for position in choice.positions]


def _served_counters(
    rules: Sequence[CapRule], shown: Sequence[Candidate], channel: str, ts: float
) -> list[CapCounter]:
    """The counter of every rule counting `served` that each of `shown` adds 1 to."""
    return [
        CapCounter(
            rule.name,
            rule.scope,
            current_bucket(rule.window, ts).label,
            scope_value(rule.scope, candidate, channel),
        )
        for candidate in shown
        for rule in rules
        if rule.counts == "served"
    ]


def _add(
    counts: dict[tuple[str, CapCounter], int], member_id: str, counters: Sequence[CapCounter]
) -> None:
    for counter in counters:
        counts[_owner(counter, member_id), counter] += 1


def preview(
    current: Sequence[CapRule],
    proposed: Sequence[CapRule],
    decisions: Sequence[Decision],
    events: Sequence[StoredEvent],
    candidates: Mapping[str, Candidate],
    now: float,
    reward_costs: Mapping[str, float] | None = None,
) -> Preview:
    """Diff, warnings and both replays of `decisions` and `events` (the last days' log)."""
    before = replay(current, decisions, events, candidates)
    after = replay(proposed, decisions, events, candidates)
    logged_shown = Counter(offer.offer_id for d in decisions for offer in d.offers)
    redeemed = Counter(e.event.offer_id for e in events if e.event.type == "redemption")
    rates = {
        offer_id: min(1.0, redeemed[offer_id] / count) for offer_id, count in logged_shown.items()
    }
    costs = reward_costs or {}
    offer_ids = sorted(set(before.shown) | set(after.shown) | set(logged_shown))
    by_offer = {
        offer_id: SideBySide(
            _figures([offer_id], before, rates, costs), _figures([offer_id], after, rates, costs)
        )
        for offer_id in offer_ids
    }
    partners: dict[str, list[str]] = defaultdict(list)
    for offer_id in offer_ids:
        partners[_candidate(candidates, offer_id).partner_id].append(offer_id)
    by_partner = {
        partner: SideBySide(_figures(ids, before, rates, costs), _figures(ids, after, rates, costs))
        for partner, ids in sorted(partners.items())
    }
    total_before = _figures(offer_ids, before, rates, costs)
    total_after = _figures(offer_ids, after, rates, costs)
    freeing_room = tuple(
        sum(replay_freeing_room(rules, decisions, events, candidates).shown.values())
        for rules in (current, proposed)
    )
    return Preview(
        changes=rule_changes(current, proposed),
        warnings=warnings(current, proposed, before, now),
        decisions=len(decisions),
        members_reached=(len(before.members), len(after.members)),
        offers_shown=(total_before.shown, total_after.shown),
        offers_shown_freeing_room=(freeing_room[0], freeing_room[1]),
        expected_redemptions=(total_before.expected_redemptions, total_after.expected_redemptions),
        reward_cost=(total_before.reward_cost, total_after.reward_cost),
        by_offer=by_offer,
        by_partner=by_partner,
    )


def warnings(
    current: Sequence[CapRule], proposed: Sequence[CapRule], replayed: Outcome, now: float
) -> list[str]:
    """Renamed rules (their counters start again from 0), every cap removed, and limits lowered
    below the counts of the current window (from the replay of the rules in force)."""
    lines = []
    old = {rule.name: rule for rule in current}
    new = {rule.name: rule for rule in proposed}
    removed = [rule for name, rule in old.items() if name not in new]
    added = [rule for name, rule in new.items() if name not in old]
    for gone in removed:
        for rule in added:
            if (rule.scope, rule.window, rule.counts) == (gone.scope, gone.window, gone.counts):
                lines.append(
                    f"rule {gone.name} renamed to {rule.name}: its counters start again from 0"
                )
    if current and not proposed:
        lines.append("every cap is removed: members may be shown any offer any number of times")
    for name, rule in new.items():
        before = old.get(name)
        if before is None or rule.limit >= before.limit or rule.window != before.window:
            continue
        label = current_bucket(rule.window, now).label
        over = [
            (member_id, counter.value)
            for (member_id, counter), count in replayed.counts.items()
            if counter.rule == name and counter.bucket == label and count >= rule.limit
        ]
        if over:
            scope = "offers" if rule.scope == "offer_total" else "members"
            reached = (
                len({value for _, value in over})
                if scope == "offers"
                else len({member for member, _ in over})
            )
            lines.append(
                f"rule {name}: limit {before.limit} → {rule.limit} is already reached by "
                f"{reached} {scope} ({len(over)} counters) in the current window"
            )
    return lines


def _figures(
    offer_ids: Sequence[str],
    outcome: Outcome,
    rates: Mapping[str, float],
    costs: Mapping[str, float],
) -> OfferFigures:
    shown = sum(outcome.shown[offer_id] for offer_id in offer_ids)
    expected = {o: outcome.shown[o] * rates.get(o, 0.0) for o in offer_ids}
    known = all(o in costs for o in offer_ids if expected[o])
    cost = sum(expected[o] * costs.get(o, 0.0) for o in offer_ids) if known else None
    return OfferFigures(shown, round(sum(expected.values()), 6), cost)


def _candidate(candidates: Mapping[str, Candidate], offer_id: str) -> Candidate:
    return candidates.get(offer_id) or Candidate(offer_id, offer_id, offer_id)


def _owner(counter: CapCounter, member_id: str) -> str:
    """Whose counter it is: the member's, or "" for an offer_total counter (every member's)."""
    return member_id if counter.scope in MEMBER_SCOPES else ""


def recorded_at(stream_id: str) -> float:
    """Unix seconds of a stream id `<ms>-<seq>`: when the store recorded the entry."""
    return int(stream_id.partition("-")[0]) / 1000


def _count_event(
    rules: Sequence[CapRule], event: OfferEvent, counts: dict[tuple[str, CapCounter], int]
) -> None:
    """Add 1 to the counter of every rule counting `event.type`, in the bucket of its time."""
    for rule in rules:
        if rule.counts != event.type:
            continue
        label = current_bucket(rule.window, event.ts).label
        candidate = Candidate(event.offer_id, event.partner_id, event.category)
        value = scope_value(rule.scope, candidate, event.channel)
        counter = CapCounter(rule.name, rule.scope, label, value)
        counts[_owner(counter, event.member_id), counter] += 1


class _MemberCounts:
    """The replay's counters as one member's `select_offers` reads them."""

    def __init__(self, counts: Mapping[tuple[str, CapCounter], int], member_id: str) -> None:
        self._counts, self._member_id = counts, member_id

    def get(self, counter: CapCounter, default: int, /) -> int:
        return self._counts.get((_owner(counter, self._member_id), counter), default)
