import pytest

from perkrank.training.decision_log import (
    decisions_from_rows,
    events_from_rows,
    logged_lists,
    rewarded_offers,
)


def decision_row(decision_id, member, offer, rank, propensity, ts="2026-07-01T10:00:00+00:00"):
    return {
        "decision_id": decision_id,
        "ts": ts,
        "member_id": member,
        "channel": "app",
        "model_version": "m/1",
        "experiment": "lift",
        "arm": "treat",
        "policy": "personalized",
        "personalized": "True",
        "offer_id": offer,
        "rank": str(rank),
        "score": "0.5",
        "propensity": str(propensity),
    }


def event_row(kind, member, offer, decision_id="", ts="2026-07-01T11:00:00+00:00"):
    return {
        "type": kind,
        "member_id": member,
        "offer_id": offer,
        "ts": ts,
        "decision_id": decision_id,
    }


DECISIONS = [
    decision_row("d1", "m1", "b", 2, 0.5),  # rows of a decision in any order
    decision_row("d1", "m1", "a", 1, 0.25),
    decision_row("d2", "m2", "a", 1, 1.0),
    decision_row("d3", "m3", "", "", ""),  # a decision that showed nothing
]


def test_rows_become_decisions_with_offers_by_rank():
    decisions = decisions_from_rows(DECISIONS)

    assert [decision.decision_id for decision in decisions] == ["d1", "d2", "d3"]
    assert [offer.offer_id for offer in decisions[0].offers] == ["a", "b"]
    assert [offer.propensity for offer in decisions[0].offers] == [0.25, 0.5]
    assert decisions[0].personalized is True
    assert decisions[2].offers == ()


def test_rewards_follow_attribution_by_id_then_by_member_and_offer():
    decisions = decisions_from_rows(DECISIONS)
    events = events_from_rows(
        [
            event_row("click", "m1", "b", decision_id="d1"),
            event_row("click", "m2", "a"),  # no id: m2's latest decision that showed a
            event_row("click", "m2", "a", ts="2026-06-30T00:00:00+00:00"),  # before any
            event_row("redemption", "m1", "a", decision_id="d1"),
            event_row("click", "m1", "zzz", decision_id="d1"),  # not shown by d1
        ]
    )

    clicks = rewarded_offers(decisions, events, "click")
    assert clicks == {("d1", "b"), ("d2", "a")}
    logged = logged_lists(decisions[:2], clicks)
    assert logged.rewards.tolist() == [[0.0, 1.0], [1.0, 0.0]]
    assert logged.propensities.tolist() == [[0.25, 0.5], [1.0, 1.0]]
    assert rewarded_offers(decisions, events, "redemption") == {("d1", "a")}


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        (decision_row("", "m1", "a", 1, 1.0), "row 1, field 'decision_id': missing"),
        (decision_row("d", "m1", "a", "first", 1.0), "row 1, field 'rank': not a number"),
        (decision_row("d", "m1", "a", 1, 1.0, ts="yesterday"), "row 1, field 'ts'"),
    ],
)
def test_bad_rows_name_the_row_and_field(row, problem):
    with pytest.raises(ValueError, match=problem):
        decisions_from_rows([row])
