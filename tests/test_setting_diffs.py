"""Lines describing a change of cap rules or experiments, by name."""

import pytest

from perkrank.config import CapRule
from perkrank.experiment_config import Experiment
from perkrank.setting_diffs import experiment_changes, rule_changes


def rule(name: str, limit: int = 3, window: str = "day") -> CapRule:
    return CapRule(name=name, scope="member_offer", limit=limit, window=window)


def experiment(name: str, holdout: float) -> Experiment:
    return Experiment.model_validate(
        {
            "name": name,
            "arms": [
                {"name": "holdout", "share": holdout, "policy": "popular"},
                {"name": "main", "share": 1 - holdout, "policy": "personalized"},
            ],
        }
    )


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ([], [], []),
        ([rule("a")], [rule("a")], []),
        ([], [rule("a")], ["+ a: scope member_offer, limit 3, window day, counts served"]),
        ([rule("a")], [], ["- a: scope member_offer, limit 3, window day, counts served"]),
        ([rule("a")], [rule("a", limit=5)], ["~ a: limit 3 → 5"]),
        (
            [rule("a"), rule("b")],
            [rule("b", window="week"), rule("c")],
            [
                "~ b: window day → week",
                "+ c: scope member_offer, limit 3, window day, counts served",
                "- a: scope member_offer, limit 3, window day, counts served",
            ],
        ),
    ],
)
def test_rule_changes_name_added_changed_and_removed_rules(old, new, expected):
    assert rule_changes(old, new) == expected


def test_experiment_changes_describe_arms():
    changes = experiment_changes([experiment("pilot", 0.05)], [experiment("pilot", 0.1)])

    assert changes == [
        "~ pilot: arms holdout 0.05 popular / main 0.95 personalized → "
        "holdout 0.1 popular / main 0.9 personalized"
    ]
