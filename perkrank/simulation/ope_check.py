"""Does off-policy evaluation find a new policy's TRUE redemption rate? Logs with known truth.

`ope_trial` generates a program, serves a logging model (planted tastes blurred by
`logger_noise`) with softmax exploration, so every shown offer has a logged propensity, and
draws redemptions from the response model until `decisions` decisions are logged. Then it
estimates a NEW model (tastes blurred by `target_noise`) by the code of
`perkrank evaluate-offline` (`training.offline_evaluation.evaluate_offline`) and sets the
estimates beside that model's truth.

Visits are sampled directly (each member visits Binomial(days, p) times, p their planted
daily visit probability) and ranked by `OfferRanker.rank` with a fresh memory store each
(no caps, budgets full, the per-partner limit at the list length: the store skips nothing),
which is the code an offers request runs, without HTTP: 100,000 decisions in a minute or two.

**One estimand.** `evaluate-offline` estimates the expected redemptions of the candidate's
list per logged decision, its list cut to the logged length, and per impression that divided
by the mean logged length. The truth is `truth.policy_truth` of the same lists (the
candidate's order for each member, `offline_evaluation.target_lists`, at the logged length):
per impression Σ μ·e / Σ μ·|list| over the members, μ their expected visits, which is what
the per-decision mean over visits converges to. `sample_truth` is the same over the logged
decisions themselves (the expected redemptions of each logged visit's member under the
candidate), free of the members' sampling noise.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

from perkrank.config import ServeConfig
from perkrank.experiment_config import SoftmaxExploration
from perkrank.features.loader import load_dataset
from perkrank.features.synthetic import generate
from perkrank.features.synthetic.response import ResponseModel
from perkrank.models.bundle import Bundle
from perkrank.serving.domain.catalog import catalog_from_dataset
from perkrank.serving.domain.decisions import DecidedOffer, Decision
from perkrank.serving.domain.events import OfferEvent
from perkrank.serving.domain.ranking import PERSONALIZED, OfferRanker, OfferRequest
from perkrank.serving.state.memory import MemoryStateStore
from perkrank.simulation.bundles import taste_bundle
from perkrank.simulation.pilot import CHANNEL
from perkrank.simulation.truth import policy_truth
from perkrank.training.offline_evaluation import OfflineEvaluation, evaluate_offline, target_lists

SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class OpeSetting:
    """The program, the two models and the logging policy of one trial."""

    members: int = 1500
    months: int = 2
    decisions: int = 100_000
    limit: int = 3
    pool: int = 1000
    """Candidates the logger samples its list from (`candidate_pool_margin`, multiplier 1):
    every eligible offer, so every offer the new policy shows has a positive propensity."""
    temperature: float = 1.0
    logger_noise: float = 2.0
    target_noise: float = 1.0
    program_seed: int = 21


@dataclass(frozen=True)
class OpeTrial:
    """The estimates of the new model's redemptions beside its truth."""

    evaluation: OfflineEvaluation
    true_per_impression: float
    """`policy_truth` of the candidate's lists: redemptions per impression."""
    true_per_decision: float
    sample_true_per_decision: float
    """The candidate's expected redemptions per logged decision, over the logged decisions."""
    logged_per_decision: float
    """Redemptions per decision the logging policy earned (drawn)."""


def ope_trial(work_dir: Path, setting: OpeSetting, seed: int) -> OpeTrial:
    """Generate the program under `work_dir`, log `setting.decisions` decisions drawn with
    `seed` and evaluate the new model on them (see the module docstring)."""
    data_dir = work_dir / "data"
    if not (data_dir / "generator.json").is_file():
        generate(data_dir, members=setting.members, months=setting.months,
                 seed=setting.program_seed, start=date(2025, 1, 1))  # fmt: skip
    dataset = load_dataset(data_dir)
    response = ResponseModel.load(data_dir)
    settings = ServeConfig(
        catalog_date=response.catalog_date,
        max_offers_per_partner=setting.limit,
        candidate_pool_multiplier=1,
        candidate_pool_margin=setting.pool - setting.limit,
    )

    def ranker_of(noise: float) -> OfferRanker:
        bundle: Bundle = taste_bundle(data_dir, dataset, noise)
        return OfferRanker(bundle, catalog_from_dataset(dataset, bundle), settings)

    rng = np.random.default_rng(seed)
    logger = ranker_of(setting.logger_noise)
    exploration = SoftmaxExploration(kind="softmax", temperature=setting.temperature)
    days = _days_for(response, setting.decisions)
    decisions, events = asyncio.run(_log(logger, response, rng, days, setting, exploration))
    candidate = ranker_of(setting.target_noise)
    evaluation = evaluate_offline(candidate, f"tastes+noise{setting.target_noise:g}",
                                  decisions, events)  # fmt: skip
    lists = target_lists(candidate, decisions)
    by_member = dict(zip((decision.member_id for decision in decisions), lists, strict=True))
    truth = policy_truth(response, by_member, days)
    expected = {member: response.expected_redemptions(member, shown)
                for member, shown in by_member.items()}  # fmt: skip
    redeemed = sum(event.type == "redemption" for event in events)
    return OpeTrial(
        evaluation=evaluation,
        true_per_impression=truth.redemption_rate,
        true_per_decision=truth.redemption_rate * truth.offers_per_visit,
        sample_true_per_decision=float(np.mean([expected[d.member_id] for d in decisions])),
        logged_per_decision=redeemed / len(decisions),
    )


def _days_for(response: ResponseModel, decisions: int) -> int:
    """Days of visits whose expected count is `decisions`."""
    return max(1, round(decisions / float(response.visit_probability.sum())))


async def _log(
    logger: OfferRanker,
    response: ResponseModel,
    rng: np.random.Generator,
    days: int,
    setting: OpeSetting,
    exploration: SoftmaxExploration,
) -> tuple[list[Decision], list[OfferEvent]]:
    """Each member's visits over `days`, ranked by the logger with exploration, and the
    redemptions drawn from the response model; stops at `setting.decisions` decisions."""
    members = list(response.member_rows)
    visits = np.repeat(np.arange(len(members)), rng.binomial(days, response.visit_probability))
    visits = rng.permutation(visits)[: setting.decisions]
    start = float(np.datetime64(response.catalog_date, "s").astype(np.int64))
    decisions: list[Decision] = []
    events: list[OfferEvent] = []
    for number, row in enumerate(visits.tolist()):
        member = members[row]
        now = start + SECONDS_PER_DAY * number / len(visits) * days
        ranking = await logger.rank(
            MemoryStateStore(),
            OfferRequest(member, CHANNEL, setting.limit),
            (),
            now,
            PERSONALIZED,
            exploration,
            int(rng.integers(1 << 62)),
        )
        decision = Decision(
            decision_id=f"d{number}",
            member_id=member,
            channel=CHANNEL,
            ts=now,
            model_version="logger",
            experiment=None,
            arm=None,
            policy=PERSONALIZED,
            personalized=ranking.personalized,
            offers=tuple(
                DecidedOffer(s.offer.offer_id, s.rank, s.score, s.propensity)
                for s in ranking.offers
            ),
        )
        decisions.append(decision)
        shown = [offer.offer_id for offer in decision.offers]
        click, redeem = response.probabilities(member, shown)
        clicked = rng.random(len(shown)) < click
        redeemed = clicked & (rng.random(len(shown)) < redeem)
        events += [
            OfferEvent(kind, member, offer, "", "", CHANNEL, now, None, decision.decision_id)
            for kind, hits in (("click", clicked), ("redemption", redeemed))
            for offer, hit in zip(shown, hits, strict=True)
            if hit
        ]
    return decisions, events
