"""Deciding a chunk by row (`campaign_rows.decide_rows`) gives every member what `rank_many`
gives them (and so what `/v1/members/{id}/offers` gives them): the same lines byte for byte,
the same logged decisions, the same counters, on every store."""

import asyncio
from dataclasses import replace

import numpy as np
import orjson
import pytest

import perkrank.serving.campaign as campaign
from perkrank.experiment_config import (
    EpsilonExploration,
    Experiment,
    ExperimentArm,
    ExperimentsConfig,
)
from perkrank.serving.campaign import DecisionLines, decide_chunk
from perkrank.serving.campaign_rows import rounded
from perkrank.serving.domain.ranking import OfferRequest
from perkrank.serving.domain.selection import Preferences
from tests.serving.campaign.world import NOW, RULES, campaign_context, counters, member_ids

ARMS = ExperimentsConfig(
    experiments=(
        Experiment(
            name="june",
            arms=(
                ExperimentArm(name="model", share=0.5),
                ExperimentArm(name="popular", share=0.3, policy="popular"),
                ExperimentArm(name="holdout", share=0.2, policy="none"),
            ),
        ),
    )
)
EXPLORING = ExperimentsConfig(
    experiments=(
        Experiment(
            name="explore",
            arms=(
                ExperimentArm(
                    name="eps",
                    share=1.0,
                    exploration=EpsilonExploration(kind="epsilon", epsilon=0.3),
                ),
            ),
        ),
    )
)


def prepared(store, experiments):
    context = replace(campaign_context(store), experiments=experiments)
    context.store.set_preferences("M00000003", Preferences(opted_out_channels={"email"}))
    context.store.set_preferences("M00000004", Preferences(personalization=False))
    context.store.set_preferences("M00000005", Preferences(purchase_reasons=False))
    context.store.set_preferences("M00000006", Preferences(opt_out_all=True))
    return context


def decided(context, by_rows):
    """Two chunks, then the first again (a rerun: counted once), with one encoder."""
    members = member_ids()
    chunks = [members[:70], members[70:], members[:70]]
    lines = DecisionLines("june-send")

    async def run():
        found = []
        for chunk in chunks:
            found += await decide_chunk(
                context, "june-send", chunk, "email", 5, NOW, lines=lines, by_rows=by_rows
            )
        await context.store.close()
        return found

    return asyncio.run(run())


@pytest.mark.parametrize("experiments", [ExperimentsConfig(), ARMS], ids=["served", "arms"])
def test_by_row_equals_rank_many(new_store, monkeypatch, experiments):
    old_context = prepared(new_store(), experiments)
    old = decided(old_context, by_rows=False)

    def not_called(*_, **__):
        raise AssertionError("rank_many ranked a chunk that rows apply to")

    by_row_context = prepared(new_store(), experiments)
    with monkeypatch.context() as patched:
        patched.setattr(campaign, "rank_many", not_called)
        new = decided(by_row_context, by_rows=True)

    assert [line for _, line in new] == [line for _, line in old]
    assert [decision for decision, _ in new] == [decision for decision, _ in old]
    assert counters(by_row_context.store) == counters(old_context.store)
    offers = [decision.offers for decision, _ in new]
    assert any(offers) and not all(offers)  # opt-outs and caps left some lists empty
    assert b'"cap":' in b"".join(line for _, line in new)  # the offer_total cap bit
    assert any(b"often" in line for _, line in new)  # the repeat term's reason
    if experiments is ARMS:
        arms = {decision.arm: decision.personalized for decision, _ in new if decision.offers}
        assert arms.keys() == {"model", "popular"} and not arms["popular"]


def test_an_exploring_arm_is_ranked_member_by_member(new_store, monkeypatch):
    context = prepared(new_store(), EXPLORING)
    calls = []
    original = campaign.rank_many

    async def counted(*arguments, **options):
        calls.append(len(arguments[2]))
        return await original(*arguments, **options)

    monkeypatch.setattr(campaign, "rank_many", counted)
    found = decided(context, by_rows=True)
    assert calls == [len(member_ids()[:70]), len(member_ids()[70:]), len(member_ids()[:70])]
    assert any(offer.propensity < 1 for decision, _ in found for offer in decision.offers)


def test_by_row_equals_the_offers_request_member_by_member(new_store):
    """Without experiments, each member's offers, order and reasons are `OfferRanker.rank`'s
    (scores: one matrix product for many members against one per member)."""
    rows_context = prepared(new_store(), ExperimentsConfig())
    one_context = prepared(new_store(), ExperimentsConfig())
    new = decided(rows_context, by_rows=True)[: len(member_ids())]

    async def each():
        ranked = []
        for decision, _ in new:
            request = OfferRequest(decision.member_id, "email", 5, decision_id=decision.decision_id)
            ranked.append(
                await one_context.ranker.rank(
                    one_context.store, request, RULES, NOW, caps=one_context.caps
                )
            )
        return ranked

    expected = asyncio.run(each())
    assert [[o.offer_id for o in d.offers] for d, _ in new] == [
        [o.offer.offer_id for o in r.offers] for r in expected
    ]
    assert [d.personalized for d, _ in new] == [r.personalized for r in expected]
    assert [[o["reason"] for o in orjson.loads(line)["offers"]] for _, line in new] == [
        [o.reason for o in r.offers] for r in expected
    ]
    assert [[o.score for o in d.offers] for d, _ in new] == [
        [pytest.approx(o.score, rel=1e-5) for o in r.offers] for r in expected
    ]
    assert counters(one_context.store) == counters(rows_context.store)


def test_rounded_is_round_to_six_decimals_exactly():
    """Halves and their neighbours, signed zeros, the large, the tiny and the infinite."""
    rng = np.random.default_rng(9)
    scores = (rng.normal(size=20_000) * rng.choice([1e-7, 1e-3, 1.0, 1e4, 1e12], 20_000)).tolist()
    halves = [(n + 0.5) / 1e6 for n in rng.integers(-(10**8), 10**8, size=5000).tolist()]
    scores += halves + [float(np.nextafter(h, np.inf)) for h in halves]
    scores += [float(np.nextafter(h, -np.inf)) for h in halves]
    scores += [0.0, -0.0, 5e-7, -5e-7, 2.5e-6, 999.9999995, 1e300, float("inf"), float("-inf")]
    assert [repr(x) for x in rounded(scores)] == [repr(round(x, 6)) for x in scores]
