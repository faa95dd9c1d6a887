"""Names shared by training and serving: item ids and the feature names of members and offers.

An *item* is a partner × category pair (`item_id(partner_id, category)`): it is what purchases
are made of and what every offer maps onto, so an offer of next month's catalog already has
an item the models have seen, unless its partner or category is new (then its features speak).
"""

from bisect import bisect_right
from collections.abc import Iterable

ITEM_SEPARATOR = "|"

DAYS_PER_MONTH = 365.25 / 12
TENURE_LIMITS_MONTHS: tuple[float, ...] = (3.0, 12.0, 36.0)
"""Upper ends (exclusive) of the tenure buckets in `TENURE_FEATURES`; the last one is open."""
TENURE_FEATURES: tuple[str, ...] = ("tenure=0-3m", "tenure=3-12m", "tenure=1-3y", "tenure=3y+")
SPEND_FEATURES: tuple[str, ...] = ("spend=none", "spend=low", "spend=mid", "spend=high")
"""Spend over the last days before the cutoff: none, then by fixed quantile thresholds."""


def item_id(partner_id: str, category: str) -> str:
    """The item an offer or purchase belongs to."""
    return f"{partner_id}{ITEM_SEPARATOR}{category}"


def segment_id(region: str, tier: str) -> str:
    """The non-personalized segment a member falls in."""
    return f"{region}{ITEM_SEPARATOR}{tier}"


def member_feature_names(region: str, tier: str, extra: Iterable[str] = ()) -> list[str]:
    """Feature names of a member known only by region and tier (plus any `extra` names)."""
    return [f"region={region}", f"tier={tier}", f"segment={segment_id(region, tier)}", *extra]


def item_feature_names(partner_id: str, category: str, scope: str) -> list[str]:
    """Feature names of an item (or offer) from its partner, category and scope."""
    return [f"partner={partner_id}", f"category={category}", f"scope={scope}"]


def tenure_feature(months: float) -> str:
    """The tenure feature of a member `months` after signup."""
    return TENURE_FEATURES[bisect_right(TENURE_LIMITS_MONTHS, months)]


def tenure_feature_after(days: float) -> str:
    """The tenure feature of a member `days` after signup (a month is `DAYS_PER_MONTH`)."""
    return tenure_feature(days / DAYS_PER_MONTH)


def top_category_feature(category: str) -> str:
    """The feature of a category among the member's most bought ones."""
    return f"top_category={category}"


def cold_member_feature_names(region: str, tier: str, tenure_days: float = 0.0) -> list[str]:
    """Feature names of a member without purchases, `tenure_days` after signup: region, tier,
    segment, tenure and no spend (a member nobody knows: just signed up).

    Evaluation names its cold members with this, serving every member its ranker has no
    vector for, so both score such a member alike.
    """
    tenure = tenure_feature_after(tenure_days)
    return member_feature_names(region, tier, extra=[tenure, SPEND_FEATURES[0]])
