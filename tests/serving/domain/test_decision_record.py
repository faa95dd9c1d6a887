"""`Decision.record_json` is `record()` as JSON, and `from_record` reads it back."""

import json

import pytest

from perkrank.serving.domain.decisions import DecidedOffer, Decision

CASES = {
    "offers": Decision(
        "d1",
        "M1",
        "email",
        1.5,
        "v3",
        "exp",
        "b",
        "personalized",
        True,
        (DecidedOffer("O1", 1, 0.25, 1.0), DecidedOffer("O9", 2, -3e-07, 0.125)),
    ),
    "no experiment, no offers": Decision(
        "d2", "M2", "app", 1e9, "v3", None, None, "popular", False, ()
    ),
}


@pytest.mark.parametrize("decision", CASES.values(), ids=CASES.keys())
def test_record_json_is_the_record(decision):
    written = decision.record_json()
    assert json.loads(written) == decision.record()
    assert list(json.loads(written)) == list(decision.record())  # field order kept
    assert Decision.from_record(json.loads(written)) == decision
