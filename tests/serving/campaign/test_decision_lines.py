"""`DecisionLines.line` writes the decision record byte for byte as `orjson.dumps` of the
record spelled out field by field; `repeat_rows` finds each member's bought offers."""

from datetime import date

import numpy as np
import orjson
import pytest

from perkrank.serving.campaign import DecisionLines, decision_records
from perkrank.serving.domain.batch_ranking import repeat_rows
from perkrank.serving.domain.catalog import Offer
from perkrank.serving.domain.decisions import Decision
from perkrank.serving.domain.ranking_values import RankedOffer, Ranking

DAY = date(2026, 1, 1)
COFFEE = Offer("O1", "P1", "Beans", "local", "coffee", 'Flat "white"', "2x", "base", DAY, DAY)
BOOKS = Offer("O2", "P2", "Pages", "national", "books", "Novel ✓", "10%", "base", DAY, DAY)


def decision(member_id: str, personalized: bool = True) -> Decision:
    return Decision(
        "d" * 32, member_id, "email", 1.5, "v7", "exp", "arm-b", "personalized", personalized, ()
    )


def spelled_out(campaign, decision, ranking, empty_reason) -> bytes:
    """The record as the file held it before `DecisionLines`: every field by name."""
    record = {
        "campaign": campaign,
        "member_id": decision.member_id,
        "decision_id": decision.decision_id,
        "channel": decision.channel,
        "model_version": decision.model_version,
        "experiment": decision.experiment,
        "arm": decision.arm,
        "personalized": decision.personalized,
        "offers": [
            {
                "offer_id": served.offer.offer_id,
                "partner_id": served.offer.partner_id,
                "title": served.offer.title,
                "reward": served.offer.reward,
                "rank": served.rank,
                "score": round(served.score, 6),
                "reason": served.reason,
            }
            for served in ranking.offers
        ],
        "empty_reason": empty_reason,
        "suppressed": {reason: count for reason, count in ranking.suppressed.items() if count},
    }
    return orjson.dumps(record) + b"\n"


CASES = {
    "two offers": (
        decision("M1"),
        Ranking(
            True,
            [
                RankedOffer(COFFEE, 1, 0.123456789, "Because you like coffee"),
                RankedOffer(BOOKS, 2, -1e-7, 'Popular "here"', 0.25),
            ],
            {"cap": 2, "opt_out": 0},
        ),
        None,
    ),
    "no offers, quiet hours": (decision("M2", False), Ranking(False, [], {}), "quiet_hours"),
    "opted out": (decision("M3"), Ranking(True, [], {"opt_out": 12, "eligibility": 3}), None),
    "large and whole scores": (
        decision("M4"),
        Ranking(True, [RankedOffer(BOOKS, 1, 12345.0, "x"), RankedOffer(COFFEE, 2, 3.0, "")], {}),
        None,
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_line_is_the_spelled_out_record(case):
    lines = DecisionLines("june ✓")
    assert lines.line(*case) == spelled_out("june ✓", *case)
    assert lines.line(*case) == spelled_out("june ✓", *case)  # again, from what it kept


def test_an_offer_of_a_new_catalog_is_encoded_again():
    lines = DecisionLines("june")
    ranking = Ranking(True, [RankedOffer(COFFEE, 1, 0.5, "r")], {})
    lines.line(decision("M1"), ranking, None)
    renamed = Offer("O1", "P1", "Beans", "local", "coffee", "Espresso", "3x", "base", DAY, DAY)
    changed = Ranking(True, [RankedOffer(renamed, 1, 0.5, "r")], {})
    assert orjson.loads(lines.line(decision("M1"), changed, None))["offers"][0]["title"] == (
        "Espresso"
    )


def test_records_are_the_lines_in_order():
    decided = list(CASES.values())
    lines = DecisionLines("c")
    assert decision_records([lines.line(*values) for values in decided]) == [
        orjson.loads(spelled_out("c", *values)) for values in decided
    ]
    assert decision_records([]) == []


@pytest.mark.parametrize(
    ("dense", "expected"),
    [
        (None, [frozenset(), frozenset()]),
        (np.zeros((2, 3)), [frozenset(), frozenset()]),
        (np.array([[0.0, 0.5, 0.0], [0.0, 0.0, 0.0]]), [frozenset({11}), frozenset()]),
        (np.array([[0.0, 0.0, 0.0], [0.1, 0.0, 0.2]]), [frozenset(), frozenset({10, 12})]),
        (np.array([[1.0, 1.0, 1.0], [0.0, 2.0, 0.0]]), [frozenset({10, 11, 12}), {11}]),
    ],
)
def test_repeat_rows_of_each_member(dense, expected):
    assert repeat_rows(dense, np.array([10, 11, 12]), 2) == expected
