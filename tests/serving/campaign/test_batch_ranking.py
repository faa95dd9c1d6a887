"""`rank_many` gives every member what `OfferRanker.rank` gives them, and counts alike."""

import asyncio

import pytest

from perkrank.config import CapsConfig, LocalFloor
from perkrank.experiment_config import EpsilonExploration
from perkrank.serving.domain.batch_ranking import RankItem, rank_many
from perkrank.serving.domain.ranking import NO_OFFERS, OfferRequest
from perkrank.serving.domain.selection import Preferences
from tests.serving.campaign.world import NOW, RULES, campaign_context, counters, member_ids

POLICIES = ["personalized", "popular", NO_OFFERS]


def items() -> list[RankItem]:
    made = []
    for number, member_id in enumerate(member_ids()):
        request = OfferRequest(member_id, "email", 5, decision_id=f"{number:032x}")
        exploration = EpsilonExploration(kind="epsilon", epsilon=0.3) if number % 5 == 0 else None
        made.append(RankItem(request, POLICIES[number % 7 % 3], exploration, number))
    return made


FLOOR = CapsConfig(rules=RULES, local_floor=LocalFloor(default=0.6), max_per_partner=2)
"""Three local offers in every list of five, at most two offers per partner."""


@pytest.mark.parametrize("caps", [None, FLOOR], ids=["rules", "local-floor"])
def test_rank_many_matches_rank_member_by_member(new_store, caps):
    one_by_one, batched = (
        campaign_context(new_store(), caps=caps),
        campaign_context(new_store(), caps=caps),
    )
    for context in (one_by_one, batched):
        context.store.set_preferences("M00000003", Preferences(opted_out_channels={"email"}))
        context.store.set_preferences("M00000004", Preferences(personalization=False))

    async def each() -> list:
        ranker, store = one_by_one.ranker, one_by_one.store
        return [
            await ranker.rank(
                store, i.request, RULES, NOW, i.policy, i.exploration, i.seed, one_by_one.caps
            )
            for i in items()
        ]

    async def together() -> list:
        return await rank_many(batched.ranker, batched.store, items(), RULES, NOW, batched.caps)

    expected, got = asyncio.run(each()), asyncio.run(together())

    assert [[o.offer.offer_id for o in r.offers] for r in got] == [
        [o.offer.offer_id for o in r.offers] for r in expected
    ]
    for mine, theirs in zip(got, expected, strict=True):
        assert mine.personalized == theirs.personalized
        assert mine.suppressed == theirs.suppressed
        assert [(o.reason, o.propensity) for o in mine.offers] == [
            (o.reason, o.propensity) for o in theirs.offers
        ]
        assert [o.score for o in mine.offers] == [
            pytest.approx(o.score, rel=1e-5) for o in theirs.offers
        ]
    assert counters(batched.store) == counters(one_by_one.store)
    assert any(r.suppressed.get("cap") for r in got)  # the offer_total cap bit
    assert not got[3].offers and got[3].suppressed["opt_out"] > 0
    assert any("often" in o.reason for r in got for o in r.offers)  # the repeat term
    if caps is not None:  # the floor held in the batch too, before offer_total caps bite
        local = {o.offer_id for o in batched.ranker.catalog.offers if o.scope == "local"}
        shown = [[o.offer.offer_id for o in r.offers] for r in got if len(r.offers) == 5]
        assert [len(local.intersection(ids)) >= 3 for ids in shown[:10]] == [True] * 10
