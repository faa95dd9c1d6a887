"""What the decision log keeps of one ranked answer: an offers response or a campaign's
decision for one member (`Decision`, one shape for both)."""

from __future__ import annotations

from perkrank.serving.domain.decisions import DecidedOffer, Decision
from perkrank.serving.domain.experiments import Assignment
from perkrank.serving.domain.ranking import NEW, PERSONALIZED
from perkrank.serving.domain.ranking_values import OfferRequest, Ranking


def logged_decision(
    request: OfferRequest,
    ranking: Ranking,
    now: float,
    model_version: str,
    assignment: Assignment | None,
) -> Decision:
    """The decision `request.decision_id` as logged: who, when, which model and arm, and the
    offers shown with rank, score and propensity."""
    offers = tuple(
        [
            NEW(DecidedOffer, (served.offer.offer_id, served.rank, served.score, served.propensity))
            for served in ranking.offers
        ]
    )
    return decision_of(request, ranking.personalized, offers, now, model_version, assignment)


def decision_of(
    request: OfferRequest,
    personalized: bool,
    offers: tuple[DecidedOffer, ...],
    now: float,
    model_version: str,
    assignment: Assignment | None,
) -> Decision:
    """`logged_decision` of offers already taken from a ranking (`campaign_rows`)."""
    return Decision(
        decision_id=request.decision_id,
        member_id=request.member_id,
        channel=request.channel,
        ts=now,
        model_version=model_version,
        experiment=None if assignment is None else assignment.experiment,
        arm=None if assignment is None else assignment.arm,
        policy=PERSONALIZED if assignment is None else assignment.policy,
        personalized=personalized,
        offers=offers,
    )
