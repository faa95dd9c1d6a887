"""The uplift report on hand-made logs whose answers are worked out by hand."""

import math

import pytest

from perkrank.experiment_config import Experiment
from perkrank.serving.domain.uplift import Z_80, Z_95, markdown, uplift_report

EXPERIMENT = Experiment.model_validate(
    {
        "name": "lift",
        "arms": [
            {"name": "holdout", "share": 0.5, "policy": "popular"},
            {"name": "treat", "share": 0.5},
        ],
    }
)


def decision(decision_id: str, member_id: str, arm: str, experiment: str = "lift") -> dict:
    return {
        "decision_id": decision_id,
        "member_id": member_id,
        "experiment": experiment,
        "arm": arm,
    }


def event(kind: str, member_id: str, decision_id: str = "") -> dict:
    return {"type": kind, "member_id": member_id, "decision_id": decision_id}


DECISIONS = [
    decision("d1", "h1", "holdout"),
    decision("d2", "h2", "holdout"),
    decision("d3", "t1", "treat"),
    decision("d3", "t1", "treat"),  # a second offer shown by the same decision
    decision("d4", "t2", "treat"),
    decision("d5", "t1", "treat"),
    decision("x1", "o1", "control", experiment="other"),
]
EVENTS = [
    *[event("impression", member) for member in ("h1", "h2", "t1", "t2")],
    event("impression", "t1", "d3"),
    event("click", "t1", "d3"),
    event("redemption", "t1", "d3"),
    event("redemption", "h2"),
    event("redemption", "t2"),
    event("redemption", "t2", "d4"),
    event("redemption", "t2"),
    event("redemption", "o1", "x1"),  # another experiment's member: left out
    event("redemption", "nobody"),
]
"""Redemptions per member: holdout [0, 1] (mean 0.5, variance 0.5), treat [1, 3] (mean 2,
variance 2)."""


def test_each_arm_counts_its_members_decisions_and_events():
    report = uplift_report(EXPERIMENT, DECISIONS, EVENTS, "holdout")

    holdout, treat = report.arms
    assert (holdout.members, holdout.decisions, holdout.impressions, holdout.redemptions) == (
        2,
        2,
        2,
        1,
    )
    assert (treat.members, treat.decisions, treat.impressions, treat.clicks) == (2, 3, 3, 1)
    assert treat.redemptions == 4
    assert treat.click_rate == pytest.approx(1 / 3)
    assert treat.redemption_rate == pytest.approx(4 / 3)
    assert (holdout.redemptions_per_member, treat.redemptions_per_member) == (0.5, 2.0)
    assert report.srm_p_value == 1.0


def test_the_lift_its_intervals_and_the_mde_are_welch_and_delta_method():
    treat = uplift_report(EXPERIMENT, DECISIONS, EVENTS, "holdout").arms[1]

    se = math.sqrt(2 / 2 + 0.5 / 2)
    relative_se = math.sqrt(2 / 2 / 0.5**2 + 2**2 * 0.5 / 2 / 0.5**4)
    assert treat.lift == pytest.approx(1.5)
    assert treat.lift_ci == pytest.approx((1.5 - Z_95 * se, 1.5 + Z_95 * se))
    assert treat.mde == pytest.approx((Z_95 + Z_80) * se)
    assert treat.relative_lift == pytest.approx(3.0)
    assert treat.relative_lift_ci == pytest.approx((3 - Z_95 * relative_se, 3 + Z_95 * relative_se))


def test_a_lopsided_split_is_a_sample_ratio_mismatch():
    decisions = [decision(f"d{n}", f"m{n}", "treat" if n % 10 else "holdout") for n in range(400)]

    report = uplift_report(EXPERIMENT, decisions, [], "holdout")

    assert [arm.members for arm in report.arms] == [40, 360]
    assert report.srm_p_value < 1e-6
    assert "a sample ratio mismatch" in markdown(report)
