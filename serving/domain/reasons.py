"""Short, human reasons shown next to each served offer."""

from __future__ import annotations

from perkrank.serving.domain.catalog import Offer

PICKED_FOR_YOU = "picked for you"
POPULAR_IN_REGION = "popular in your region"
TIER_OFFERS = {"silver": "Silver offer", "gold": "Gold offer", "vip": "VIP offer"}


def offer_reason(offer: Offer, *, personalized: bool, known_member: bool, repeated: bool) -> str:
    """Why the member sees `offer`: a habit, a tier perk, the region's taste, or the model."""
    if personalized and repeated:
        return f"you often buy {offer.category} at {offer.partner_name}"
    tier_reason = TIER_OFFERS.get(offer.min_tier)
    if tier_reason is not None:
        return tier_reason
    if personalized and known_member:
        return PICKED_FOR_YOU
    return POPULAR_IN_REGION
