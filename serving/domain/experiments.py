"""Experiments: which arm answers a member, by a salted hash of the unit id, and the
sample-ratio-mismatch check of a split. Pure functions: no clock, no I/O, no randomness.

A unit id (the member id, or the member's region) is hashed with the experiment's salt into one
of `BUCKETS` buckets; the arms own consecutive bucket ranges in the order listed, each as many
buckets as its share. The same salt and unit id give the same bucket in every process and after
every restart (BLAKE2b, not Python's per-process `hash`); another salt reshuffles every unit
independently.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from perkrank.experiment_config import Experiment, ExperimentArm, ExperimentsConfig, Exploration

BUCKETS = 10_000
"""Buckets units are hashed into: shares are resolved to 1/10,000."""
SRM_P_VALUE = 0.001
"""Below this p-value a split counts as a sample ratio mismatch (the usual, strict threshold)."""


@dataclass(frozen=True)
class Assignment:
    """The experiment and arm that answer one request, and the policy the arm serves."""

    experiment: str
    arm: str
    policy: str
    """`personalized`, `popular` (the non-personalized regional popularity order) or `none`."""
    model: str | None = None
    """The registry alias whose model ranks for the arm; None: the served model."""
    exploration: Exploration | None = None
    """How the arm samples the shown order; None: as ranked."""


def bucket(salt: str, unit_id: str) -> int:
    """The bucket (0 … BUCKETS - 1) of `unit_id` under `salt`."""
    digest = hashlib.blake2b(f"{salt}\x1f{unit_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def arm_bounds(arms: Sequence[ExperimentArm]) -> list[int]:
    """Each arm's exclusive upper bucket, in order: its cumulative share of BUCKETS."""
    bounds, total = [], 0.0
    for arm in arms:
        total += arm.share
        bounds.append(round(total * BUCKETS))
    bounds[-1] = BUCKETS
    return bounds


@dataclass(frozen=True)
class Plan:
    """An experiment ready to assign requests: its salt, unit, and arms by bucket bound."""

    salt: str
    by_region: bool
    bounds: tuple[int, ...]
    assignments: tuple[Assignment, ...]
    """What each arm answers, in the order of `bounds`."""

    @classmethod
    def of(cls, experiment: Experiment) -> Plan:
        """The plan of `experiment` (made once per stored version, not per request)."""
        return cls(
            salt=experiment.salt or experiment.name,
            by_region=experiment.unit == "region",
            bounds=tuple(arm_bounds(experiment.arms)),
            assignments=tuple(
                Assignment(experiment.name, arm.name, arm.policy, arm.model, arm.exploration)
                for arm in experiment.arms
            ),
        )

    def assign(self, member_id: str, region: str) -> Assignment:
        """The arm answering `member_id` (of `region`)."""
        unit_id = region if self.by_region else member_id
        return self.assignments[bisect.bisect_right(self.bounds, bucket(self.salt, unit_id))]


def plan(experiments: ExperimentsConfig) -> Plan | None:
    """The plan of the experiment in force; None when none runs."""
    return Plan.of(experiments.experiments[0]) if experiments.experiments else None


def assign(experiment: Experiment, unit_id: str) -> ExperimentArm:
    """The arm of `experiment` that `unit_id` falls in."""
    position = bucket(experiment.salt or experiment.name, unit_id)
    return experiment.arms[bisect.bisect_right(arm_bounds(experiment.arms), position)]


def srm_p_value(counts: Mapping[str, int], shares: Mapping[str, float]) -> float:
    """The chi-square goodness-of-fit p-value of the units counted per arm against the arms'
    intended shares: small when the split is not what was configured (a sample ratio
    mismatch). 1.0 when nothing was counted."""
    total = sum(counts.get(arm, 0) for arm in shares)
    if total == 0:
        return 1.0
    statistic = 0.0
    for arm, share in shares.items():
        expected = share * total
        statistic += (counts.get(arm, 0) - expected) ** 2 / expected
    return chi_square_survival(statistic, len(shares) - 1)


def sample_ratio_mismatch(
    counts: Mapping[str, int], shares: Mapping[str, float], threshold: float = SRM_P_VALUE
) -> bool:
    """Whether the split of `counts` is a sample ratio mismatch at `threshold`."""
    return srm_p_value(counts, shares) < threshold


def chi_square_survival(statistic: float, degrees: int) -> float:
    """P(X ≥ statistic) for X chi-square with `degrees` degrees of freedom."""
    if degrees < 1:
        raise ValueError("a chi-square test needs at least one degree of freedom")
    if statistic <= 0:
        return 1.0
    return _upper_gamma(degrees / 2, statistic / 2)


_EPSILON = 1e-15
_MAX_TERMS = 100_000


def _upper_gamma(a: float, x: float) -> float:
    """The regularized upper incomplete gamma function Q(a, x), a > 0, x > 0: a power series
    for x < a + 1, else a continued fraction (Lentz), as in Numerical Recipes §6.2."""
    log_prefix = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1:
        term = total = 1.0 / a
        denominator = a
        for _ in range(_MAX_TERMS):
            denominator += 1
            term *= x / denominator
            total += term
            if abs(term) < abs(total) * _EPSILON:
                break
        return max(0.0, 1.0 - total * math.exp(log_prefix))
    tiny = 1e-300
    b = x + 1 - a
    c = 1 / tiny
    d = 1 / b
    fraction = d
    for step in range(1, _MAX_TERMS):
        an = -step * (step - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        fraction *= delta
        if abs(delta - 1) < _EPSILON:
            break
    return min(1.0, math.exp(log_prefix) * fraction)
