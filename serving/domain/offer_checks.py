"""What an offer needs to be served: the data contract's rules, checked again on `Offer`s.

Published catalogs and data directories are checked by the loader before they get here; this
is the last line, for offers read back from the store (which an older release, or another
writer, may have stored unchecked). Catalog building leaves out an offer that fails it, so one
bad offer never fails every request.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from perkrank.features.schema import ID_MAX_LENGTH, OCCASIONS, SCOPES, TIERS, text_problem
from perkrank.features.vocabulary import ITEM_SEPARATOR

if TYPE_CHECKING:
    from perkrank.serving.domain.catalog import Offer

TEXT_FIELDS: dict[str, int | None] = {
    "offer_id": ID_MAX_LENGTH,
    "partner_id": ID_MAX_LENGTH,
    "partner_name": None,
    "category": ID_MAX_LENGTH,
    "title": None,
    "reward": None,
}
"""An offer's text fields and the longest each may be (None: any length)."""


def offer_problem(offer: Offer) -> tuple[str, str] | None:
    """The first field of `offer` that cannot be served and why; None when it can be."""
    for field, max_length in TEXT_FIELDS.items():
        value = getattr(offer, field)
        if not isinstance(value, str) or not value:
            return field, "is empty or not text"
        problem = text_problem(value, max_length)
        if problem is not None:
            return field, problem
    for field in ("partner_id", "category"):
        if ITEM_SEPARATOR in getattr(offer, field):
            return field, f"contains {ITEM_SEPARATOR!r}, which joins item ids"
    for region in offer.regions or ():
        problem = text_problem(region, ID_MAX_LENGTH) if isinstance(region, str) else "not text"
        if problem is not None:
            return "regions", f"{region!r} {problem}"
    if offer.min_tier not in TIERS:
        return "min_tier", f"{offer.min_tier!r} is not one of {', '.join(TIERS)}"
    if offer.exclusive_tier is not None and offer.exclusive_tier not in TIERS:
        return "exclusive_tier", f"{offer.exclusive_tier!r} is not one of {', '.join(TIERS)}"
    if offer.occasion is not None and offer.occasion not in OCCASIONS:
        return "occasion", f"{offer.occasion!r} is not one of {', '.join(OCCASIONS)}"
    if offer.scope not in SCOPES:
        return "scope", f"{offer.scope!r} is not one of {', '.join(SCOPES)}"
    if not (isinstance(offer.valid_from, date) and isinstance(offer.valid_to, date)):
        return "valid_from", "valid_from and valid_to must be dates"
    if offer.valid_to < offer.valid_from:
        return "valid_to", f"{offer.valid_to} is before valid_from {offer.valid_from}"
    budget = offer.budget
    if budget is not None and (not isinstance(budget, int) or isinstance(budget, bool)):
        return "budget", f"{budget!r} is not a whole number"
    if budget is not None and budget < 0:
        return "budget", f"{budget} is below 0"
    for field in ("reward_cost", "partner_funding"):
        amount = getattr(offer, field)
        if not isinstance(amount, int | float) or isinstance(amount, bool):
            return field, f"{amount!r} is not a number"
        if not 0 <= amount < float("inf"):
            return field, f"{amount} is not a finite number ≥ 0"
    return None


def describe(offer_id: object, field: str, problem: str) -> str:
    """One left-out offer as logs and readiness name it."""
    return f"offer {offer_id!r}, field {field}: {problem}"
