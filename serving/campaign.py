"""Campaign sends: one decision per member of a list, as `/v1/offers` would make it.

A campaign's members are decided a chunk at a time (`decide_chunk`): each member's experiment
arm, model and policy come from the serving context as for an offers request, quiet hours of
the channel in the member's time zone give an empty decision, and the rest are decided
together by catalog row (`campaign_rows.decide_rows`: a score matrix per segment, one store
call, output encoded per offer once) or, where an arm explores, a second or coupon stage
scores or a local floor applies, ranked by `batch_ranking.rank_many` (the ranker's own steps,
one store call for the chunk): the same decisions either way. Each member's decision comes
with its output line (`DecisionLines`). The callers keep every decision in the decision log.

The decision id is derived from the campaign id and the member (`campaign_decision_id`), not
drawn: deciding a member of a campaign again (a rerun after an interruption) shows the same
decision again, which the store counts once (the re-show key `{m:<id>}:shown:<decision_id>`,
kept `MechanicsConfig.decision_ttl_seconds`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any, NamedTuple

import orjson

from perkrank.serving.campaign_rows import OfferPieces, RowDecision, decide_rows, rows_apply
from perkrank.serving.domain.batch_ranking import RankItem, rank_many
from perkrank.serving.domain.catalog import Offer
from perkrank.serving.domain.channels import QUIET_HOURS, in_quiet_hours, list_size
from perkrank.serving.domain.context import ServingContext
from perkrank.serving.domain.decisions import Decision
from perkrank.serving.domain.experiments import Assignment
from perkrank.serving.domain.logged_decision import decision_of, logged_decision
from perkrank.serving.domain.ranking import NO_OFFERS, PERSONALIZED, OfferRanker
from perkrank.serving.domain.ranking_values import OfferRequest, Ranking
from perkrank.serving.domain.selection import BatchSelector

MEMBER_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
"""A member id as the offers endpoint accepts it."""
CAMPAIGN_ID = re.compile(r"[!-~]{1,200}")
"""A campaign id: 1–200 visible ASCII characters."""


def campaign_decision_id(campaign: str, member_id: str) -> str:
    """The member's decision id in `campaign`: 32 hex digits, the same on every run."""
    digest = hashlib.blake2b(f"{campaign}\x1f{member_id}".encode(), digest_size=16)
    return digest.hexdigest()


class Decided(NamedTuple):
    """One member's decision as the decision log keeps it, and its line (`DecisionLines`)."""

    decision: Decision
    line: bytes


async def decide_chunk(
    context: ServingContext,
    campaign: str,
    member_ids: Sequence[str],
    channel: str,
    limit: int,
    now: float,
    store: BatchSelector | None = None,
    lines: DecisionLines | None = None,
    by_rows: bool = True,
) -> list[Decided]:
    """Each member's decision and line, in order, counted against the caps by `store`
    (None: the context's; the caller keeps the decisions in the decision log). `lines`: the
    campaign's encoder, kept between chunks (None: a new one). The members of a ranker that
    `rows_apply` to are decided together by row (`decide_rows`) unless `by_rows` is False;
    the others by `rank_many`: the same decisions either way."""
    settings = context.ranker.settings
    mechanics = settings.mechanics
    channel_settings = mechanics.channels.get(channel)
    limit = list_size(limit, channel_settings)
    lines = lines or DecisionLines(campaign)
    planned: list[tuple[OfferRequest, Assignment | None, str, str | None]] = []
    by_ranker: dict[int, tuple[OfferRanker, list[int]]] = {}
    items: dict[int, RankItem] = {}
    quiet_in: dict[str, bool] = {}  # by region: `now` is the chunk's
    for index, member_id in enumerate(member_ids):
        decision_id = campaign_decision_id(campaign, member_id)
        request = OfferRequest(member_id, channel, limit, decision_id=decision_id)
        assignment = context.assignment(request)
        ranker, model_version = context.model_for(assignment)
        profile = ranker.profile(request)
        quiet = quiet_in.get(profile[0])
        if quiet is None:
            zone = mechanics.time_zone(profile[0])
            quiet = quiet_in[profile[0]] = in_quiet_hours(now, zone, channel_settings)
        planned.append((request, assignment, model_version, QUIET_HOURS if quiet else None))
        policy, exploration = (
            (PERSONALIZED, None)
            if assignment is None
            else (assignment.policy, assignment.exploration)
        )
        if quiet or policy == NO_OFFERS:  # an empty decision; the store is not called
            continue
        items[index] = RankItem(request, policy, exploration, int(decision_id, 16), profile)
        by_ranker.setdefault(id(ranker), (ranker, []))[1].append(index)
    decided: dict[int, Decided] = {}
    for ranker, indexes in by_ranker.values():
        chunk = [items[i] for i in indexes]
        selector = store or context.store
        if by_rows and rows_apply(ranker, context.caps, chunk):
            rows = await decide_rows(
                ranker, selector, chunk, context.rules(), now, context.caps, lines.pieces
            )
            for index, row in zip(indexes, rows, strict=True):
                request, assignment, model_version, _ = planned[index]
                decision = decision_of(
                    request, row.personalized, row.offers, now, model_version, assignment
                )
                decided[index] = Decided(decision, lines.rows_line(decision, row))
            continue
        ranked = await rank_many(ranker, selector, chunk, context.rules(), now, context.caps)
        for index, ranking in zip(indexes, ranked, strict=True):
            request, assignment, model_version, empty = planned[index]
            decision = logged_decision(request, ranking, now, model_version, assignment)
            decided[index] = Decided(decision, lines.line(decision, ranking, empty))
    for index, (request, assignment, model_version, empty) in enumerate(planned):
        if index not in decided:
            ranking = Ranking(False, [], {})
            decision = logged_decision(request, ranking, now, model_version, assignment)
            decided[index] = Decided(decision, lines.line(decision, ranking, empty))
    return [decided[index] for index in range(len(planned))]


class DecisionLines:
    """A campaign's decisions as the output file and the batch endpoint write them: one JSON
    object a line (`line`). What does not change between members is encoded once: each
    offer's own fields and each reason."""

    def __init__(self, campaign: str) -> None:
        self._campaign = campaign
        self._offers: dict[str, tuple[Offer, bytes]] = {}
        """By offer id: the offer encoded (a catalog change may bring another offer of the id)
        and its object's head (`_head`)."""
        self._reasons: dict[str, bytes] = {}
        self.pieces = OfferPieces()
        """The offers of members decided by row, encoded (`decide_rows`)."""

    def line(self, decision: Decision, ranking: Ranking, empty_reason: str | None) -> bytes:
        """One member's decision, newline-terminated: campaign, member, decision id, channel,
        model version, experiment and arm, whether personalized, the offers (id, partner,
        title, reward, rank, score to 6 decimals, reason), the empty reason and the non-zero
        suppression counts."""
        served, heads, reasons = ranking.offers, self._offers, self._reasons
        scores = [round(offer.score, 6) for offer in served]
        encoded = orjson.dumps(scores)[1:-1].split(b",") if scores else []
        parts: list[bytes] = []
        for shown, score in zip(served, encoded, strict=True):
            head = heads.get(shown.offer.offer_id)
            if head is None or head[0] is not shown.offer:
                head = self._head(shown.offer)
            reason = reasons.get(shown.reason) or self._reason(shown.reason)
            parts += (b",", head[1], b"%d" % shown.rank, b',"score":', score, b',"reason":')
            parts += (reason, b"}")
        suppressed = {reason: count for reason, count in ranking.suppressed.items() if count}
        offers = b"[%b]" % b"".join(parts[1:])
        return self._record(decision, offers, empty_reason, suppressed)

    def rows_line(self, decision: Decision, row: RowDecision) -> bytes:
        """`line` of a member decided by row (`decide_rows`: no empty reason)."""
        return self._record(decision, row.offers_json, None, row.suppressed)

    def _record(
        self,
        decision: Decision,
        offers: bytes,
        empty_reason: str | None,
        suppressed: dict[str, int],
    ) -> bytes:
        record = {
            "campaign": self._campaign,
            "member_id": decision.member_id,
            "decision_id": decision.decision_id,
            "channel": decision.channel,
            "model_version": decision.model_version,
            "experiment": decision.experiment,
            "arm": decision.arm,
            "personalized": decision.personalized,
            "offers": orjson.Fragment(offers),
            "empty_reason": empty_reason,
            "suppressed": suppressed,
        }
        return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)

    def _head(self, offer: Offer) -> tuple[Offer, bytes]:
        """The offer and its object up to its rank's value (its own fields, then `"rank":`),
        encoded and kept by offer id."""
        fields = {
            "offer_id": offer.offer_id,
            "partner_id": offer.partner_id,
            "title": offer.title,
            "reward": offer.reward,
        }
        head = self._offers[offer.offer_id] = (offer, orjson.dumps(fields)[:-1] + b',"rank":')
        return head

    def _reason(self, reason: str) -> bytes:
        encoded = self._reasons[reason] = orjson.dumps(reason)
        return encoded


def decision_records(lines: Sequence[bytes]) -> list[dict[str, Any]]:
    """Decision lines (`DecisionLines`) as JSON objects, in order."""
    return orjson.loads(b"[%b]" % b",".join(lines))
