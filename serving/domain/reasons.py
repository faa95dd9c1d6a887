"""Short, human reasons shown next to each served offer, from the configured templates of the
member's language (`privacy_config.ServingPrivacy.reasons`). Pure: no I/O, no clock.

A reason mentions the member's purchases (the `repeat` template) only when the offer was
personalized, the member bought its partner and category before, the member lets reasons
mention purchases (`Preferences.purchase_reasons`) and its category is not sensitive;
otherwise a personalized offer of a known member gets the neutral `picked` reason.

An occasion offer says its occasion ("for your birthday") and a tier-exclusive offer says so
("exclusive for VIP members"); both come before any other reason, joined by ` · `."""

from __future__ import annotations

from collections.abc import Mapping

from perkrank.privacy_config import DEFAULT_REASONS, ReasonTexts
from perkrank.serving.domain.catalog import Offer

TIER_NAMES = {"silver": "Silver", "gold": "Gold", "vip": "VIP"}
"""Tiers whose offers say so, by the name the `tier` template shows."""


def offer_reason(
    offer: Offer,
    *,
    personalized: bool,
    known_member: bool,
    repeated: bool,
    texts: ReasonTexts = DEFAULT_REASONS["en"],
    sensitive: bool = False,
    purchase_reasons: bool = True,
) -> str:
    """Why the member sees `offer`: its occasion or tier exclusivity, a habit, a tier perk,
    the model, or the region's taste.

    `sensitive`: the offer's category is sensitive (its purchases are never mentioned);
    `purchase_reasons`: the member lets reasons mention their purchases."""
    marks = []
    if offer.occasion is not None:
        marks.append(getattr(texts, offer.occasion) or "")
    if is_exclusive(offer):
        exclusive = texts.exclusive or ""
        marks.append(exclusive.format(tier=TIER_NAMES[offer.exclusive_tier or ""]))
    if any(marks):
        return " · ".join(mark for mark in marks if mark)
    if personalized and repeated and purchase_reasons and not sensitive:
        return texts.repeat.format(category=offer.category, partner=offer.partner_name)
    tier = TIER_NAMES.get(offer.min_tier)
    if tier is not None:
        return texts.tier.format(tier=tier)
    if personalized and (known_member or repeated):
        return texts.picked
    return texts.popular


def is_exclusive(offer: Offer) -> bool:
    """The offer is exclusive to a tier above base (`exclusive: true` in the response)."""
    return offer.exclusive_tier is not None and offer.exclusive_tier in TIER_NAMES


def reason_language(
    requested: str | None, accept_language: str | None, known: Mapping[str, object], default: str
) -> str:
    """The language of the reasons: `requested` (the `lang` query) if known, else the first
    known language of `Accept-Language` by preference (q), else `default`."""
    if requested is not None and requested.lower() in known:
        return requested.lower()
    for language in _accepted(accept_language or ""):
        if language in known:
            return language
    return default


def _accepted(header: str) -> list[str]:
    """The primary language tags of an Accept-Language header, most preferred first
    (`ru-RU;q=0.8` counts as `ru`); a malformed weight counts 0."""
    weighted = []
    for position, part in enumerate(header.split(",")):
        tag, _, parameters = part.strip().partition(";")
        weight = 1.0
        name, _, value = parameters.strip().partition("=")
        if name.strip() == "q":
            try:
                weight = float(value)
            except ValueError:
                weight = 0.0
        language = tag.strip().split("-")[0].lower()
        if language and language != "*" and weight > 0:
            weighted.append((-weight, position, language))
    return [language for _, _, language in sorted(weighted)]
