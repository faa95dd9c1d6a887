"""Experiment assignment by salted hash: stable (across processes too), uniform over the
buckets, independent across salts; arm shares; the chi-square p-value and the sample ratio
mismatch check."""

import json
import math
import os
import subprocess
import sys
from collections import Counter

import pytest

from perkrank.experiment_config import Experiment, ExperimentArm, ExperimentsConfig
from perkrank.serving.domain.experiments import (
    BUCKETS,
    Assignment,
    arm_bounds,
    assign,
    bucket,
    chi_square_survival,
    plan,
    sample_ratio_mismatch,
    srm_p_value,
)

IDS = [f"member-{n}" for n in range(100_000)]
HOLDOUT = Experiment(
    name="lift",
    arms=(
        ExperimentArm(name="holdout", share=0.05, policy="popular"),
        ExperimentArm(name="personalized", share=0.95),
    ),
)


@pytest.mark.parametrize(
    ("salt", "unit_id", "expected"),
    [("lift", "alice", 5786), ("lift", "bob", 1871), ("other", "alice", 4878), ("lift", "", 8095)],
)
def test_a_unit_keeps_its_bucket_for_good(salt, unit_id, expected):
    # Pinned: a change to the hash would move every member to another arm mid-experiment.
    assert bucket(salt, unit_id) == expected


def test_assignment_is_the_same_in_a_fresh_process_with_another_hash_seed():
    program = (
        "import json\n"
        "from perkrank.serving.domain.experiments import bucket\n"
        "print(json.dumps([bucket('lift', f'member-{n}') for n in range(2000)]))\n"
    )
    environment = os.environ | {"PYTHONHASHSEED": "12345"}
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, env=environment
    )
    assert json.loads(result.stdout) == [bucket("lift", member) for member in IDS[:2000]]


def chi_square(observed: list[int], expected: float) -> float:
    return sum((count - expected) ** 2 / expected for count in observed)


def test_buckets_are_uniform_over_100k_ids():
    counts = Counter(bucket("lift", member) for member in IDS)
    observed = [counts[b] for b in range(BUCKETS)]

    statistic = chi_square(observed, len(IDS) / BUCKETS)

    assert chi_square_survival(statistic, BUCKETS - 1) > 0.001


def test_buckets_of_two_salts_are_independent():
    deciles = Counter(
        (bucket("lift", m) * 10 // BUCKETS, bucket("lift-2", m) * 10 // BUCKETS) for m in IDS
    )
    observed = [deciles[a, b] for a in range(10) for b in range(10)]

    statistic = chi_square(observed, len(IDS) / 100)

    assert chi_square_survival(statistic, 81) > 0.001  # (10 - 1) × (10 - 1) degrees of freedom
    assert sum(deciles[a, a] for a in range(10)) < 0.12 * len(IDS)  # not the same order


@pytest.mark.parametrize(
    ("shares", "bounds"),
    [
        ((1.0,), [10_000]),
        ((0.05, 0.95), [500, 10_000]),
        ((0.5, 0.5), [5_000, 10_000]),
        ((0.1, 0.2, 0.7), [1_000, 3_000, 10_000]),
        ((1 / 3, 1 / 3, 1 / 3), [3_333, 6_667, 10_000]),
    ],
)
def test_arms_own_consecutive_bucket_ranges_as_large_as_their_shares(shares, bounds):
    arms = [ExperimentArm(name=f"a{n}", share=share) for n, share in enumerate(shares)]
    assert arm_bounds(arms) == bounds


def test_arms_get_their_share_of_members():
    counts = Counter(assign(HOLDOUT, member).name for member in IDS)

    assert counts["holdout"] / len(IDS) == pytest.approx(0.05, abs=0.003)
    assert not sample_ratio_mismatch(counts, {"holdout": 0.05, "personalized": 0.95})


def test_region_unit_puts_every_member_of_a_region_in_one_arm():
    by_region = Experiment(name="regions", unit="region", arms=HOLDOUT.arms)
    regions = plan(ExperimentsConfig(experiments=(by_region,)))
    north = assign(by_region, "north")

    arms = {regions.assign(member, "north") for member in IDS[:500]}

    assert arms == {Assignment("regions", north.name, north.policy)}
    assert plan(ExperimentsConfig()) is None


def test_the_plan_serving_uses_assigns_as_the_experiment_does():
    holdout = plan(ExperimentsConfig(experiments=(HOLDOUT,)))

    for member in IDS[:2000]:
        arm = assign(HOLDOUT, member)
        assert holdout.assign(member, "any region") == Assignment("lift", arm.name, arm.policy)


def test_the_salt_defaults_to_the_name_and_a_new_salt_reshuffles():
    salted = Experiment(name="lift", salt="lift", arms=HOLDOUT.arms)
    resalted = Experiment(name="lift", salt="lift-v2", arms=HOLDOUT.arms)

    assert [assign(salted, m) for m in IDS[:1000]] == [assign(HOLDOUT, m) for m in IDS[:1000]]
    assert [assign(resalted, m) for m in IDS[:1000]] != [assign(HOLDOUT, m) for m in IDS[:1000]]


@pytest.mark.parametrize(
    ("statistic", "degrees", "p_value"),
    [
        (3.841458820694124, 1, 0.05),
        (5.991464547107979, 2, 0.05),
        (18.307038053275146, 10, 0.05),
        (6.634896601021214, 1, 0.01),
        (0.5, 3, 0.9188914116546758),
        (100.0, 3, 1.554159431389603e-21),
        (50.0, 40, 0.1335748340856504),
        (9999.0, 9999, 0.4981192719272),
        (0.0, 4, 1.0),
    ],
)
def test_chi_square_survival_matches_the_tables(statistic, degrees, p_value):
    assert chi_square_survival(statistic, degrees) == pytest.approx(p_value, rel=1e-9)


def test_one_degree_of_freedom_is_the_normal_tail():
    for z in (0.1, 1.0, 2.5, 4.0):
        assert chi_square_survival(z * z, 1) == pytest.approx(math.erfc(z / math.sqrt(2)))


@pytest.mark.parametrize(
    ("counts", "shares", "mismatch"),
    [
        ({"a": 5000, "b": 5000}, {"a": 0.5, "b": 0.5}, False),
        ({"a": 5080, "b": 4920}, {"a": 0.5, "b": 0.5}, False),  # p ≈ 0.11
        ({"a": 5200, "b": 4800}, {"a": 0.5, "b": 0.5}, True),  # p ≈ 6e-5
        ({"holdout": 500, "personalized": 9500}, {"holdout": 0.05, "personalized": 0.95}, False),
        ({"holdout": 420, "personalized": 9580}, {"holdout": 0.05, "personalized": 0.95}, True),
        ({"a": 0, "b": 10000}, {"a": 0.5, "b": 0.5}, True),
        ({"b": 10000}, {"a": 0.5, "b": 0.5}, True),  # an arm that never answered
        ({}, {"a": 0.5, "b": 0.5}, False),
    ],
)
def test_sample_ratio_mismatch_flags_a_broken_split(counts, shares, mismatch):
    assert sample_ratio_mismatch(counts, shares) is mismatch


def test_a_deliberately_broken_assignment_is_flagged():
    # The bug: holdout members whose bucket is odd get the personalized arm anyway.
    counts = Counter(
        "personalized"
        if assign(HOLDOUT, m).name == "holdout" and bucket("lift", m) % 2
        else assign(HOLDOUT, m).name
        for m in IDS
    )
    shares = {"holdout": 0.05, "personalized": 0.95}

    assert srm_p_value(counts, shares) < 1e-50
    assert sample_ratio_mismatch(counts, shares)
