"""Members: region, tier, birth and signup dates, and the hidden traits behind their purchases.

Activity per member is lognormal (many light members, few heavy ones); some members churn, some
sign up during the history, some never buy; busier, longer-standing members rank in higher tiers.
"""

from dataclasses import dataclass

import numpy as np

from perkrank.features.synthetic.program import REGIONS, TASTE_DIMENSIONS, Program

TIER_SHARES = (0.60, 0.25, 0.11, 0.04)
"""Share of members per tier, in `TIERS` order."""
REPEAT_SHARE = (6.0, 3.5)
"""Beta parameters of each member's chance that a purchase repeats an item they bought."""
PRE_HISTORY_SIGNUP_YEARS = 6
SIGNUP_DURING_HISTORY_SHARE = 0.18
DORMANT_SHARE = 0.05
CHURN_SHARE = 0.12


@dataclass(frozen=True)
class Members:
    """Members' attributes and the hidden traits that drive their purchases."""

    member_ids: list[str]
    region: np.ndarray
    tier: np.ndarray
    birth_day: np.ndarray
    birth_day_unknown: np.ndarray
    signup_day: np.ndarray
    active_from_day: np.ndarray
    active_until_day: np.ndarray
    monthly_purchases: np.ndarray
    repeat_share: np.ndarray
    channel_preference: np.ndarray
    tastes: np.ndarray


def build_members(
    rng: np.random.Generator, program: Program, count: int, first_day: int, end_day: int
) -> Members:
    """`count` members; the history runs from `first_day` to `end_day` (days since 1970)."""
    history_days = end_day - first_day
    joins_during_history = rng.random(count) < SIGNUP_DURING_HISTORY_SHARE
    days_before_start = 1 + np.floor(
        PRE_HISTORY_SIGNUP_YEARS * 365 * rng.random(count) ** 1.5
    ).astype(np.int64)
    signup_day = np.where(
        joins_during_history,
        first_day + rng.integers(0, history_days, count),
        first_day - days_before_start,
    )
    first_purchase_delay = np.where(
        joins_during_history, np.floor(rng.exponential(25.0, count)).astype(np.int64), 0
    )
    active_from_day = np.maximum(signup_day + first_purchase_delay, first_day)
    churns = rng.random(count) < CHURN_SHARE
    active_until_day = np.where(
        churns, first_day + rng.integers(0, history_days, count), np.iinfo(np.int64).max
    )
    active_until_day[rng.random(count) < DORMANT_SHARE] = first_day

    monthly_purchases = rng.lognormal(np.log(1.5), 1.1, count)
    tenure_years = (first_day - signup_day) / 365.0
    age_years = np.clip(rng.normal(41.0, 13.0, count), 18.0, 85.0)
    birth_day = first_day - np.floor(age_years * 365.25).astype(np.int64)
    width = max(6, len(str(count)))

    return Members(
        member_ids=[f"M{member + 1:0{width}d}" for member in range(count)],
        region=rng.choice(len(REGIONS), count, p=program.region_weights),
        tier=_tiers(rng, monthly_purchases, tenure_years),
        birth_day=birth_day,
        birth_day_unknown=rng.random(count) < 0.06,
        signup_day=signup_day,
        active_from_day=active_from_day,
        active_until_day=active_until_day,
        monthly_purchases=monthly_purchases,
        repeat_share=rng.beta(*REPEAT_SHARE, count),
        channel_preference=rng.dirichlet((2.4, 1.2, 0.5), count),
        tastes=rng.normal(0.0, 1.0, (count, TASTE_DIMENSIONS)),
    )


def _tiers(
    rng: np.random.Generator, monthly_purchases: np.ndarray, tenure_years: np.ndarray
) -> np.ndarray:
    """Tier of each member (index into TIERS): busier, longer-standing members rank higher."""
    score = np.log(monthly_purchases) + 0.3 * tenure_years + rng.normal(0.0, 0.7, len(tenure_years))
    score -= 3.0 * (tenure_years < 0)  # members joining during the history mostly start at base
    thresholds = np.quantile(score, np.cumsum(TIER_SHARES)[:-1])
    return np.searchsorted(thresholds, score)
