"""The program: regions, partners, the categories they sell, items and their latent factors.

Regions have Zipf-like sizes; federal partners operate everywhere, local partners in one or two
regions; every partner sells one to three categories (an *item* is a partner × category pair).
`Program.segment_item_logits` holds what shapes purchases before personal taste: popularity,
regional and tier effects, and which items a region can buy at all.
"""

from dataclasses import dataclass

import numpy as np

from perkrank.features.schema import TIERS

REGIONS: tuple[str, ...] = (
    "capital", "north", "south", "volga", "ural", "siberia", "west", "coast", "east", "far_east",
)  # fmt: skip
"""Largest first: region sizes fall off like 1 / rank."""

CATEGORY_POPULARITY: dict[str, float] = {
    "Groceries": 1.2, "Restaurants": 0.8, "Fuel": 0.7, "Coffee": 0.6, "Pharmacy": 0.5,
    "Fashion": 0.3, "Beauty": 0.3, "Telecom": 0.2, "Home": 0.2, "Kids": 0.1, "Electronics": 0.0,
    "Pets": 0.0, "Health": 0.0, "Sports": -0.1, "Cinema": -0.1, "Auto": -0.2, "Books": -0.3,
    "Travel": -0.4,
}  # fmt: skip
"""Log-scale popularity of each category."""
CATEGORIES: tuple[str, ...] = tuple(CATEGORY_POPULARITY)

TIER_CATEGORY_EFFECTS: dict[str, dict[str, float]] = {
    "base": {"Groceries": 0.2, "Pharmacy": 0.1, "Fuel": 0.1},
    "silver": {"Travel": 0.2, "Restaurants": 0.1},
    "gold": {"Travel": 0.5, "Electronics": 0.3, "Restaurants": 0.2},
    "vip": {"Travel": 1.0, "Electronics": 0.6, "Restaurants": 0.4, "Groceries": -0.3},
}

PARTNER_PREFIXES = (
    "Aurora", "Birch", "Cedar", "Delta", "Ember", "Falcon", "Granite", "Harbor", "Iris", "Juniper",
    "Kestrel", "Linden", "Maple", "Nova", "Orbit", "Pine", "Quartz", "River", "Summit", "Tundra",
    "Umber", "Vega", "Willow", "Zenith", "Amber", "Beacon", "Comet", "Dune", "Echo", "Fjord",
)  # fmt: skip
FEDERAL_PARTNERS = 45
LOCAL_PARTNERS = 110
TASTE_DIMENSIONS = 8


@dataclass(frozen=True)
class Program:
    """Partners, items and the effects that shape purchases."""

    partner_ids: list[str]
    partner_names: list[str]
    partner_is_federal: np.ndarray
    partner_regions: list[list[int]]
    partner_categories: list[list[int]]
    partner_launch_month: np.ndarray
    item_partner: np.ndarray
    item_category: np.ndarray
    item_popularity: np.ndarray
    item_factors: np.ndarray
    region_weights: np.ndarray
    segment_item_logits: np.ndarray
    """Regions × tiers × items: log-propensity before personal taste; -inf where not sold."""


def build_program(rng: np.random.Generator, months: int) -> Program:
    """Regions, partners and items; some partners launch during the `months` of history."""
    region_weights = 1.0 / np.arange(1, len(REGIONS) + 1) ** 1.1
    region_weights /= region_weights.sum()
    category_weights = np.exp(np.array(list(CATEGORY_POPULARITY.values())))
    category_weights /= category_weights.sum()

    local_counts = _local_partner_counts(region_weights)
    partner_count = FEDERAL_PARTNERS + int(local_counts.sum())
    is_federal = np.arange(partner_count) < FEDERAL_PARTNERS
    home_region = np.concatenate(
        [np.full(FEDERAL_PARTNERS, -1), np.repeat(np.arange(len(REGIONS)), local_counts)]
    )
    partner_regions = [_local_regions(rng, int(home), region_weights) for home in home_region]
    partner_categories = [_partner_categories(rng, category_weights) for _ in range(partner_count)]
    launch_month = np.where(
        rng.random(partner_count) < 0.06, rng.integers(1, months + 1, partner_count), 0
    )
    item_partner = np.repeat(np.arange(partner_count), [len(c) for c in partner_categories])
    item_category = np.concatenate([np.array(c) for c in partner_categories])
    item_popularity = _item_popularity(rng, partner_categories, is_federal)
    region_sells_item = np.array(
        [[not partner_regions[partner] or region in partner_regions[partner]
          for partner in item_partner] for region in range(len(REGIONS))]
    )  # fmt: skip
    return Program(
        partner_ids=[f"P{partner + 1:03d}" for partner in range(partner_count)],
        partner_names=_partner_names(partner_categories, home_region),
        partner_is_federal=is_federal,
        partner_regions=partner_regions,
        partner_categories=partner_categories,
        partner_launch_month=launch_month,
        item_partner=item_partner,
        item_category=item_category,
        item_popularity=item_popularity,
        item_factors=_item_factors(rng, item_partner, item_category),
        region_weights=region_weights,
        segment_item_logits=_segment_item_logits(
            rng, item_category, item_popularity, region_sells_item
        ),
    )


def _item_popularity(
    rng: np.random.Generator, partner_categories: list[list[int]], is_federal: np.ndarray
) -> np.ndarray:
    """Log-popularity of each item: its category, its partner (federal ones are bigger), noise."""
    item_partner = np.repeat(np.arange(len(is_federal)), [len(c) for c in partner_categories])
    item_category = np.concatenate([np.array(c) for c in partner_categories])
    is_main_category = np.concatenate([np.arange(len(c)) == 0 for c in partner_categories])
    partner_popularity = rng.normal(0.0, 0.6, len(is_federal)) + 0.5 * is_federal
    category_popularity = np.array(list(CATEGORY_POPULARITY.values()))
    return (
        category_popularity[item_category]
        + partner_popularity[item_partner]
        + 0.4 * is_main_category
        + rng.normal(0.0, 0.3, len(item_partner))
    )


def _item_factors(
    rng: np.random.Generator, item_partner: np.ndarray, item_category: np.ndarray
) -> np.ndarray:
    """Latent factors of each item: its category's plus a smaller part of its partner's."""
    category_factors = rng.normal(0.0, 1.0, (len(CATEGORIES), TASTE_DIMENSIONS))
    partner_factors = rng.normal(0.0, 0.6, (item_partner.max() + 1, TASTE_DIMENSIONS))
    return category_factors[item_category] + partner_factors[item_partner]


def _segment_item_logits(
    rng: np.random.Generator,
    item_category: np.ndarray,
    item_popularity: np.ndarray,
    region_sells_item: np.ndarray,
) -> np.ndarray:
    """Regions × tiers × items: popularity plus regional and tier tastes; -inf where not sold."""
    region_category_effects = rng.normal(0.0, 0.4, (len(REGIONS), len(CATEGORIES)))
    tier_category_effects = np.zeros((len(TIERS), len(CATEGORIES)))
    for tier, category_effects in TIER_CATEGORY_EFFECTS.items():
        for category, effect in category_effects.items():
            tier_category_effects[TIERS.index(tier), CATEGORIES.index(category)] = effect
    return (
        region_category_effects[:, None, item_category]
        + tier_category_effects[None, :, item_category]
        + item_popularity
        + np.where(region_sells_item, 0.0, -np.inf)[:, None, :]
    )


def _local_partner_counts(region_weights: np.ndarray) -> np.ndarray:
    """Local partners per home region: at least three, more in big regions."""
    spare = LOCAL_PARTNERS - 3 * len(REGIONS)
    return 3 + np.floor(region_weights * spare + 0.5).astype(int)


def _local_regions(
    rng: np.random.Generator, home_region: int, region_weights: np.ndarray
) -> list[int]:
    """Regions of a local partner (its home, sometimes one more); empty for a federal one."""
    if home_region < 0:
        return []
    if rng.random() < 0.7:
        return [home_region]
    others = np.delete(np.arange(len(REGIONS)), home_region)
    weights = region_weights[others] / region_weights[others].sum()
    return sorted([home_region, int(rng.choice(others, p=weights))])


def _partner_categories(rng: np.random.Generator, category_weights: np.ndarray) -> list[int]:
    """One to three distinct categories, the first being the partner's main one."""
    count = int(rng.choice([1, 2, 3], p=[0.4, 0.4, 0.2]))
    return [int(c) for c in rng.choice(len(CATEGORIES), count, replace=False, p=category_weights)]


def _partner_names(partner_categories: list[list[int]], home_region: np.ndarray) -> list[str]:
    names = []
    for partner, categories in enumerate(partner_categories):
        prefix = PARTNER_PREFIXES[partner % len(PARTNER_PREFIXES)]
        name = f"{prefix} {CATEGORIES[categories[0]]}"
        if home_region[partner] >= 0:
            name = f"{name} {REGIONS[home_region[partner]].replace('_', ' ').title()}"
        names.append(name)
    return names
