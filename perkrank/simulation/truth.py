"""The TRUE redemption rates of a policy: what the response model expects of the lists it shows.

A policy is, for this purpose, the list of offers it shows each member on a visit. A member
visits on each of `days` days with their planted probability p, so they visit μ = days · p times
on average and at least once with probability 1 − (1 − p)^days. With e the expected redemptions
of one visit (`ResponseModel.expected_redemptions`), the policy's truth over the members is

    per impression  Σ μ · e / Σ μ · |list|
    per member      Σ μ · e / Σ (1 − (1 − p)^days)

the second being what an uplift report estimates: redemptions per member among the members
who came at least once (the members it sees).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from perkrank.features.synthetic.response import ResponseModel


@dataclass(frozen=True)
class PolicyTruth:
    """A policy's expected rates under the response model."""

    members: int
    """Members the truth averages over."""
    offers_per_visit: float
    redemption_rate: float
    """Expected redemptions per impression."""
    redemptions_per_member: float
    """Expected redemptions per member who visits at least once."""


def policy_truth(
    response: ResponseModel, shown: Mapping[str, Sequence[str]], days: int
) -> PolicyTruth:
    """The truth of showing each member of `shown` its list (best first) on every visit over
    `days` days."""
    members = list(shown)
    rows = np.array([response.member_rows[member] for member in members], dtype=np.int64)
    visit = response.visit_probability[rows]
    mean_visits = days * visit
    came = 1.0 - (1.0 - visit) ** days
    per_visit = np.array([response.expected_redemptions(m, list(shown[m])) for m in members])
    sizes = np.array([len(shown[member]) for member in members], dtype=float)
    impressions = float(np.sum(mean_visits * sizes))
    redemptions = float(np.sum(mean_visits * per_visit))
    return PolicyTruth(
        members=len(members),
        offers_per_visit=float(np.sum(mean_visits * sizes) / max(np.sum(mean_visits), 1e-12)),
        redemption_rate=redemptions / impressions if impressions else 0.0,
        redemptions_per_member=redemptions / float(np.sum(came)) if len(members) else 0.0,
    )


def mean_truth(truths: Sequence[PolicyTruth]) -> PolicyTruth:
    """The average of truths of one policy's draws (an exploring arm's sampled lists)."""
    return PolicyTruth(
        members=truths[0].members,
        offers_per_visit=float(np.mean([truth.offers_per_visit for truth in truths])),
        redemption_rate=float(np.mean([truth.redemption_rate for truth in truths])),
        redemptions_per_member=float(np.mean([truth.redemptions_per_member for truth in truths])),
    )
