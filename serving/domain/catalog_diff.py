"""What publishing a catalog would change: offers added, removed and changed, and how many are
valid today per region and tier (pure: a catalog dry run, and the none-valid guard)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import date, timedelta

from perkrank.features.eligibility import EPOCH
from perkrank.features.schema import TIERS
from perkrank.serving.domain.catalog import Offer
from perkrank.serving.domain.explain import ineligibility


@dataclass(frozen=True)
class ChangedOffer:
    """An offer in both catalogs whose fields differ: each field's old and new value."""

    offer_id: str
    fields: dict[str, tuple[str, str]]


@dataclass(frozen=True)
class CatalogDiff:
    """The dry run of publishing `new` over `old`."""

    added: list[str]
    removed: list[str]
    changed: list[ChangedOffer]
    unchanged: int
    valid_today: int
    """Offers of the new catalog valid today (anywhere, for any tier)."""
    valid_by_region_tier: dict[str, dict[str, int]]
    """region → tier → offers a member there of that tier could be shown today."""


def catalog_diff(
    old: Sequence[Offer], new: Sequence[Offer], regions: Iterable[str], today: date
) -> CatalogDiff:
    """Compare catalogs by offer id; count the new one's offers valid `today` per region (the
    given ones and those the offers name) and tier."""
    before = {offer.offer_id: offer for offer in old}
    after = {offer.offer_id: offer for offer in new}
    changed = []
    for offer_id, offer in after.items():
        previous = before.get(offer_id)
        if previous is not None and previous != offer:
            changed.append(ChangedOffer(offer_id, _changed_fields(previous, offer)))
    all_regions = set(regions)
    for offer in new:
        all_regions.update(offer.regions or ())
    return CatalogDiff(
        added=[offer_id for offer_id in after if offer_id not in before],
        removed=[offer_id for offer_id in before if offer_id not in after],
        changed=changed,
        unchanged=sum(before.get(offer_id) == offer for offer_id, offer in after.items()),
        valid_today=sum(offer.valid_from <= today <= offer.valid_to for offer in new),
        valid_by_region_tier={
            region: {
                tier: sum(not ineligibility(offer, region, tier, today) for offer in new)
                for tier in TIERS
            }
            for region in sorted(all_regions)
        },
    )


def any_valid(offers: Sequence[Offer], today: date) -> bool:
    """Whether some offer is valid `today` (a catalog with none would serve nobody)."""
    return any(offer.valid_from <= today <= offer.valid_to for offer in offers)


def none_valid_message(today: date) -> str:
    """Why a catalog with no offer valid today is refused, and how to publish it anyway."""
    return (
        f"no offer of the file is valid today ({today}): every member would get no offers; "
        "confirm with allow_none_valid=true (CLI: --allow-none-valid) to publish it anyway"
    )


def day_date(day: int) -> date:
    """The date of a day number (days since 1970-01-01)."""
    return EPOCH + timedelta(days=day)


def _changed_fields(old: Offer, new: Offer) -> dict[str, tuple[str, str]]:
    before, after = asdict(old), asdict(new)
    return {
        name: (_text(before[name]), _text(after[name]))
        for name in before
        if before[name] != after[name]
    }


def _text(value: object) -> str:
    if isinstance(value, frozenset):
        return ",".join(sorted(value))
    return "" if value is None else str(value)
