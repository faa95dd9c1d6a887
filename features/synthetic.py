"""A synthetic loyalty program with structure a model can find: regions, partners, tastes, tiers.

The program: regions of Zipf-like sizes; federal partners operate everywhere, local partners in
one or two regions; every partner sells one to three categories (an *item* is a partner ×
category pair). Members have latent tastes; a new purchase picks an item by a softmax over
taste · item factors + regional, tier, seasonal and popularity effects, restricted to items sold
in the member's region. Most purchases repeat an item the member already bought. Activity per
member is lognormal (many light members, few heavy ones); some members churn, some sign up
during the history, some never buy. The offer catalog rotates monthly, one catalog per month of
history plus one for the month after it.

The same arguments always give byte-identical files.
"""

import calendar
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from perkrank.features.columns import Columns
from perkrank.features.schema import (
    CHANNELS,
    LIST_SEPARATOR,
    MEMBERS,
    OFFERS,
    PARTNERS,
    PURCHASES,
    TIERS,
)
from perkrank.progress import report, step

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

TIER_SHARES = (0.60, 0.25, 0.11, 0.04)
"""Share of members per tier, in `TIERS` order."""
TIER_CATEGORY_EFFECTS: dict[str, dict[str, float]] = {
    "base": {"Groceries": 0.2, "Pharmacy": 0.1, "Fuel": 0.1},
    "silver": {"Travel": 0.2, "Restaurants": 0.1},
    "gold": {"Travel": 0.5, "Electronics": 0.3, "Restaurants": 0.2},
    "vip": {"Travel": 1.0, "Electronics": 0.6, "Restaurants": 0.4, "Groceries": -0.3},
}
TIER_SPEND = (1.0, 1.1, 1.3, 1.6)
"""Multiplier on purchase amounts per tier."""

CATEGORY_SEASONS: dict[str, dict[int, float]] = {
    "Travel": {6: 0.8, 7: 0.9, 8: 0.8, 12: 0.3},
    "Kids": {8: 0.5, 9: 0.5, 12: 0.5},
    "Electronics": {11: 0.4, 12: 0.6},
    "Fashion": {3: 0.3, 9: 0.3, 12: 0.3},
    "Books": {9: 0.4, 12: 0.3},
    "Sports": {1: 0.3, 5: 0.3, 6: 0.3},
    "Home": {4: 0.3, 5: 0.3},
    "Fuel": {7: 0.2, 8: 0.2},
}
"""Log-scale boost of a category in a calendar month."""
MONTH_ACTIVITY = (0.85, 0.88, 0.95, 0.97, 1.0, 1.02, 1.05, 1.03, 0.98, 1.0, 1.08, 1.35)
"""Purchase activity per calendar month (December peak)."""

MEDIAN_AMOUNT: dict[str, float] = {
    "Groceries": 35, "Restaurants": 30, "Fuel": 45, "Coffee": 6, "Pharmacy": 20, "Fashion": 70,
    "Beauty": 30, "Telecom": 25, "Home": 60, "Kids": 40, "Electronics": 250, "Pets": 30,
    "Health": 50, "Sports": 60, "Cinema": 15, "Auto": 120, "Books": 20, "Travel": 400,
}  # fmt: skip
CHANNEL_AFFINITY: dict[str, tuple[float, float, float]] = {
    "Groceries": (1.5, 1.0, 0.6), "Fuel": (3.0, 0.6, 0.1), "Travel": (0.3, 1.5, 3.0),
    "Electronics": (0.8, 1.2, 2.0), "Telecom": (0.6, 2.0, 1.5), "Cinema": (0.6, 2.0, 1.2),
    "Books": (0.8, 1.0, 1.8), "Fashion": (1.0, 1.2, 1.4),
}  # fmt: skip
"""Multipliers on a member's (store, app, web) preference per category; 1 when not listed."""
HOUR_WEIGHTS = (1, 0.5, 0.3, 0.2, 0.2, 0.4, 1, 2, 3, 4, 5, 6, 7, 6, 6, 6, 7, 8, 9, 8, 7, 5, 3, 2)

PARTNER_PREFIXES = (
    "Aurora", "Birch", "Cedar", "Delta", "Ember", "Falcon", "Granite", "Harbor", "Iris", "Juniper",
    "Kestrel", "Linden", "Maple", "Nova", "Orbit", "Pine", "Quartz", "River", "Summit", "Tundra",
    "Umber", "Vega", "Willow", "Zenith", "Amber", "Beacon", "Comet", "Dune", "Echo", "Fjord",
)  # fmt: skip
REWARDS = (
    "5% cashback", "10% cashback", "15% cashback", "200 bonus points", "500 bonus points",
    "1000 bonus points", "double points", "triple points", "gift with purchase",
)  # fmt: skip
BUDGETS = (100, 250, 500, 1000, 2500, 5000)
OFFER_TIER_SHARES = (0.72, 0.12, 0.10, 0.06)
OFFER_TYPES = {
    Columns.valid_from: pa.date32(),
    Columns.valid_to: pa.date32(),
    Columns.budget: pa.int64(),
}
"""Column types of the offers table that are not text."""

FEDERAL_PARTNERS = 45
LOCAL_PARTNERS = 110
TASTE_DIMENSIONS = 8
TASTE_STRENGTH = 1.2
REPEAT_SHARE = (6.0, 3.5)
"""Beta parameters of each member's chance that a purchase repeats an item they bought."""
PRE_HISTORY_SIGNUP_YEARS = 6
SIGNUP_DURING_HISTORY_SHARE = 0.18
DORMANT_SHARE = 0.05
CHURN_SHARE = 0.12
MEMBER_CHUNK = 10_000
SECONDS_PER_DAY = 86_400
DAYS_PER_MONTH = 30.44


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


@dataclass(frozen=True)
class Purchases:
    """Generated purchases as arrays, in no particular order."""

    member_row: np.ndarray
    item_idx: np.ndarray
    second: np.ndarray
    amount_cents: np.ndarray
    channel_idx: np.ndarray


def generate(out_dir: Path, *, members: int, months: int, seed: int, start: date) -> dict[str, int]:
    """Write members, purchases, partners and offers CSV files; return rows per table.

    Parameters
    ----------
    out_dir: directory to write into (created if missing); the four files appear together or
             not at all.
    members: number of members.
    months:  months of purchase history, starting at `start`.
    seed:    the same seed (and other arguments) gives byte-identical files.
    start:   first day of the history.

    Returns
    -------
    Row counts per table, in contract order.
    """
    rng = np.random.Generator(np.random.PCG64(seed))
    # History months, then the catalog month after them, then one more to end its long offers.
    period_days = _period_days(start, months + 2)
    with step("partners and members"):
        program = _build_program(rng, months)
        member_table = _build_members(rng, program, members, period_days[0], period_days[months])
        report(f"{len(program.partner_ids)} partners, {len(program.item_partner)} items")
    with step(f"purchases over {months} months"):
        purchases = _simulate_purchases(rng, program, member_table, period_days[: months + 1])
        report(f"{len(purchases.item_idx)} purchases")
    with step("offer catalog"):
        offers = _offers_table(rng, program, members, period_days)
        report(f"{offers.num_rows} offers in {months + 1} monthly catalogs")
    tables = {
        MEMBERS.name: _members_table(member_table),
        PURCHASES.name: _purchases_table(purchases, program, member_table),
        PARTNERS.name: _partners_table(program),
        OFFERS.name: offers,
    }
    with step(f"writing {out_dir}"):
        _write_tables(Path(out_dir), tables)
    return {name: table.num_rows for name, table in tables.items()}


def _period_days(start: date, count: int) -> np.ndarray:
    """Start day (days since 1970-01-01) of `count` monthly periods and the end of the last."""
    epoch = date(1970, 1, 1).toordinal()
    return np.array([_add_months(start, month).toordinal() - epoch for month in range(count + 1)])


def _add_months(day: date, months: int) -> date:
    year, month_index = divmod(day.month - 1 + months, 12)
    month = month_index + 1
    last_day = calendar.monthrange(day.year + year, month)[1]
    return date(day.year + year, month, min(day.day, last_day))


def _calendar_month(day: int) -> int:
    return int(np.datetime64(int(day), "D").astype(object).month)


def _build_program(rng: np.random.Generator, months: int) -> Program:
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


def _build_members(
    rng: np.random.Generator, program: Program, count: int, first_day: int, end_day: int
) -> Members:
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


def _simulate_purchases(
    rng: np.random.Generator, program: Program, members: Members, period_days: np.ndarray
) -> Purchases:
    month_item_weights = _month_item_weights(program, period_days)
    chunks = []
    for first in range(0, len(members.member_ids), MEMBER_CHUNK):
        rows = np.arange(first, min(first + MEMBER_CHUNK, len(members.member_ids)))
        chunks.append(_simulate_chunk(rng, program, members, rows, period_days, month_item_weights))
    member_row, item_idx, day = (np.concatenate(parts) for parts in zip(*chunks, strict=True))
    return Purchases(
        member_row=member_row,
        item_idx=item_idx,
        second=day * SECONDS_PER_DAY + _seconds_of_day(rng, len(day)),
        amount_cents=_amount_cents(rng, program, members, member_row, item_idx),
        channel_idx=_channels(rng, program, members, member_row, item_idx),
    )


def _month_item_weights(program: Program, period_days: np.ndarray) -> np.ndarray:
    """Per history month and item: seasonal boost, or 0 before the partner launches."""
    months = len(period_days) - 1
    effects = np.zeros((months, len(program.item_partner)))
    for month in range(months):
        calendar_month = _calendar_month(period_days[month])
        for category, boosts in CATEGORY_SEASONS.items():
            in_category = program.item_category == CATEGORIES.index(category)
            effects[month, in_category] = boosts.get(calendar_month, 0.0)
        not_launched = program.partner_launch_month[program.item_partner] > month
        effects[month, not_launched] = -np.inf
    return np.exp(effects)


def _simulate_chunk(
    rng: np.random.Generator,
    program: Program,
    members: Members,
    rows: np.ndarray,
    period_days: np.ndarray,
    month_item_weights: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Purchases of some members, month by month: member rows, items and days."""
    taste_weights = _taste_weights(program, members, rows)
    history_member = np.zeros(0, dtype=np.int64)
    history_item = np.zeros(0, dtype=np.int64)
    history_day = np.zeros(0, dtype=np.int64)
    for month in range(len(period_days) - 1):
        month_start, month_end = period_days[month], period_days[month + 1]
        active_from = np.maximum(members.active_from_day[rows], month_start)
        active_until = np.minimum(members.active_until_day[rows], month_end)
        active_days = np.maximum(active_until - active_from, 0)
        activity = MONTH_ACTIVITY[_calendar_month(month_start) - 1]
        expected = members.monthly_purchases[rows] * activity * active_days / DAYS_PER_MONTH
        member = np.repeat(np.arange(len(rows)), rng.poisson(expected))
        item = _pick_items(
            rng, taste_weights * month_item_weights[month], members.repeat_share[rows],
            member, history_member, history_item,
        )  # fmt: skip
        day = active_from[member] + np.floor(rng.random(len(member)) * active_days[member])
        order = np.argsort(np.concatenate([history_member, member]), kind="stable")
        history_member = np.concatenate([history_member, member])[order]
        history_item = np.concatenate([history_item, item])[order]
        history_day = np.concatenate([history_day, day.astype(np.int64)])[order]
    return rows[history_member], history_item, history_day


def _taste_weights(program: Program, members: Members, rows: np.ndarray) -> np.ndarray:
    """Propensity (up to a factor) of each member in `rows` for each item, before seasons."""
    taste = members.tastes[rows] @ program.item_factors.T / np.sqrt(TASTE_DIMENSIONS)
    segment = program.segment_item_logits[members.region[rows], members.tier[rows]]
    logits = TASTE_STRENGTH * taste + segment
    return np.exp(logits - logits.max(axis=1, keepdims=True))


def _pick_items(
    rng: np.random.Generator,
    weights: np.ndarray,
    repeat_share: np.ndarray,
    member: np.ndarray,
    history_member: np.ndarray,
    history_item: np.ndarray,
) -> np.ndarray:
    """Item of each purchase: a past purchase of the member's again, or a draw by taste."""
    history_count = np.bincount(history_member, minlength=len(weights))
    history_offset = np.cumsum(history_count) - history_count
    repeats = (rng.random(len(member)) < repeat_share[member]) & (history_count[member] > 0)
    item = np.empty(len(member), dtype=np.int64)
    repeater = member[repeats]
    past = history_offset[repeater] + np.floor(rng.random(len(repeater)) * history_count[repeater])
    item[repeats] = history_item[past.astype(np.int64)]
    item[~repeats] = _sample_by_weights(rng, weights, member[~repeats])
    return item


def _sample_by_weights(
    rng: np.random.Generator, weights: np.ndarray, rows: np.ndarray
) -> np.ndarray:
    """One column per entry of `rows`, drawn in proportion to that row of `weights`."""
    cumulative = np.cumsum(weights, axis=1)
    cumulative /= cumulative[:, -1:]
    flat = (cumulative + np.arange(len(weights))[:, None]).ravel()
    position = np.searchsorted(flat, rng.random(len(rows)) + rows, side="right")
    return position - rows * weights.shape[1]


def _seconds_of_day(rng: np.random.Generator, count: int) -> np.ndarray:
    hour_cumulative = np.cumsum(HOUR_WEIGHTS) / np.sum(HOUR_WEIGHTS)
    hour = np.searchsorted(hour_cumulative, rng.random(count), side="right")
    return hour * 3600 + rng.integers(0, 3600, count)


def _amount_cents(
    rng: np.random.Generator,
    program: Program,
    members: Members,
    member_row: np.ndarray,
    item_idx: np.ndarray,
) -> np.ndarray:
    median = np.array(list(MEDIAN_AMOUNT.values()))[program.item_category[item_idx]]
    tier_spend = np.array(TIER_SPEND)[members.tier[member_row]]
    amount = median * tier_spend * np.exp(rng.normal(0.0, 0.55, len(item_idx)))
    return np.maximum(np.round(amount * 100), 50).astype(np.int64)


def _channels(
    rng: np.random.Generator,
    program: Program,
    members: Members,
    member_row: np.ndarray,
    item_idx: np.ndarray,
) -> np.ndarray:
    """Channel of each purchase: the member's habits, tilted by the category."""
    affinity = np.array(
        [CHANNEL_AFFINITY.get(category, (1.0, 1.0, 1.0)) for category in CATEGORIES]
    )
    weights = members.channel_preference[member_row] * affinity[program.item_category[item_idx]]
    cumulative = np.cumsum(weights, axis=1) / weights.sum(axis=1, keepdims=True)
    draw = rng.random(len(item_idx))[:, None]
    return (draw > cumulative[:, :-1]).sum(axis=1)


def _offers_table(
    rng: np.random.Generator, program: Program, member_count: int, period_days: np.ndarray
) -> pa.Table:
    """One catalog per period but the last (which only ends two-month offers), in id order."""
    per_month = int(np.clip(round(20 * np.sqrt(member_count / 1000)), 40, 300))
    offers = []
    for month in range(len(period_days) - 2):
        offers += _catalog(rng, program, month, per_month, period_days[month : month + 3])
    types = [(name, OFFER_TYPES.get(name, pa.string())) for name in OFFERS.column_names]
    return pa.Table.from_pylist(offers, schema=pa.schema(types))


def _catalog(
    rng: np.random.Generator,
    program: Program,
    month: int,
    size: int,
    period_days: np.ndarray,
) -> list[dict[str, object]]:
    """One month's offers: new ids on popular items of launched partners (new partners first)."""
    launch_month = program.partner_launch_month[program.item_partner]
    open_items = np.flatnonzero(launch_month <= month)
    keys = program.item_popularity[open_items] + rng.gumbel(size=len(open_items))
    keys += 10.0 * (launch_month[open_items] == month)
    items = np.sort(open_items[np.argsort(-keys, kind="stable")[:size]])
    valid_from, valid_to = _validity(rng, len(items), period_days)
    min_tier = rng.choice(len(TIERS), len(items), p=OFFER_TIER_SHARES)
    budget = np.where(rng.random(len(items)) < 0.3, rng.choice(BUDGETS, len(items)), 0)
    reward = rng.choice(len(REWARDS), len(items))
    month_code = np.datetime64(int(period_days[0]), "D").astype(object).strftime("%Y%m")
    offers = []
    for number, item in enumerate(items):
        partner = program.item_partner[item]
        category = CATEGORIES[program.item_category[item]]
        offers.append(
            {
                Columns.offer_id: f"O{month_code}-{number + 1:03d}",
                Columns.partner_id: program.partner_ids[partner],
                Columns.category: category,
                Columns.title: f"{category} at {program.partner_names[partner]}: "
                f"{REWARDS[reward[number]]}",
                Columns.regions: _offer_regions(rng, program, partner),
                Columns.min_tier: TIERS[min_tier[number]],
                Columns.valid_from: valid_from[number],
                Columns.valid_to: valid_to[number],
                Columns.budget: int(budget[number]) or None,
                Columns.reward: REWARDS[reward[number]],
            }
        )
    return offers


def _validity(
    rng: np.random.Generator, count: int, period_days: np.ndarray
) -> tuple[list[int], list[int]]:
    """First and last valid day: the whole month, sometimes two months, sometimes 1–2 weeks."""
    month_start, next_start, after_next_start = (int(day) for day in period_days)
    kind = rng.random(count)
    short_start = month_start + rng.integers(0, next_start - month_start - 13, count)
    short_end = short_start + rng.integers(6, 14, count)
    valid_from = np.where(kind < 0.15, short_start, month_start)
    valid_to = np.where(kind < 0.15, short_end, next_start - 1)
    valid_to = np.where(kind > 0.85, after_next_start - 1, valid_to)
    return valid_from.tolist(), valid_to.tolist()


def _offer_regions(rng: np.random.Generator, program: Program, partner: int) -> str:
    """Empty (wherever the partner operates) or a subset of the partner's regions."""
    if program.partner_is_federal[partner]:
        if rng.random() >= 0.15:
            return ""
        size = int(rng.integers(1, 4))
        regions = rng.choice(len(REGIONS), size, replace=False, p=program.region_weights)
    else:
        if rng.random() >= 0.35:
            return ""
        regions = rng.choice(program.partner_regions[partner], 1)
    return _join_names(REGIONS, regions)


def _join_names(names: tuple[str, ...], indices: list[int] | np.ndarray) -> str:
    return LIST_SEPARATOR.join(sorted(names[index] for index in indices))


def _members_table(members: Members) -> pa.Table:
    return pa.table(
        {
            Columns.member_id: pa.array(members.member_ids, pa.string()),
            Columns.region: pa.array(np.array(REGIONS)[members.region], pa.string()),
            Columns.tier: pa.array(np.array(TIERS)[members.tier], pa.string()),
            Columns.birth_date: _dates(members.birth_day, missing=members.birth_day_unknown),
            Columns.signup_date: _dates(members.signup_day),
        }
    ).select(list(MEMBERS.column_names))


def _dates(days: np.ndarray, missing: np.ndarray | None = None) -> pa.Array:
    """Days since 1970-01-01 as a date column (`missing` ones empty)."""
    return pa.array(days.astype(np.int32), pa.date32(), mask=missing)


def _partners_table(program: Program) -> pa.Table:
    return pa.table(
        {
            Columns.partner_id: pa.array(program.partner_ids, pa.string()),
            Columns.name: pa.array(program.partner_names, pa.string()),
            Columns.scope: [
                "federal" if federal else "local" for federal in program.partner_is_federal
            ],
            Columns.regions: [_join_names(REGIONS, regions) for regions in program.partner_regions],
            Columns.categories: [
                _join_names(CATEGORIES, categories) for categories in program.partner_categories
            ],
        }
    ).select(list(PARTNERS.column_names))


def _purchases_table(purchases: Purchases, program: Program, members: Members) -> pa.Table:
    """Purchases ordered by time, then member, then item."""
    order = np.lexsort((purchases.item_idx, purchases.member_row, purchases.second))
    item = purchases.item_idx[order]
    return pa.table(
        {
            Columns.member_id: _strings(members.member_ids, purchases.member_row[order]),
            Columns.ts: pa.array(purchases.second[order], pa.timestamp("s")),
            Columns.partner_id: _strings(program.partner_ids, program.item_partner[item]),
            Columns.category: _strings(CATEGORIES, program.item_category[item]),
            Columns.amount: _decimal_strings(purchases.amount_cents[order]),
            Columns.channel: _strings(CHANNELS, purchases.channel_idx[order]),
        }
    ).select(list(PURCHASES.column_names))


def _decimal_strings(cents: np.ndarray) -> pa.Array:
    """Amounts in cents as text with two decimals, e.g. 1205 → "12.05"."""
    units = pc.cast(pa.array(cents // 100), pa.string())
    hundredths = pc.utf8_lpad(pc.cast(pa.array(cents % 100), pa.string()), 2, "0")
    return pc.binary_join_element_wise(units, hundredths, ".")


def _strings(names: list[str] | tuple[str, ...], indices: np.ndarray) -> pa.Array:
    """The names at `indices`, as a plain string column."""
    return pa.array(names, pa.string()).take(pa.array(indices.astype(np.int64)))


def _write_tables(out_dir: Path, tables: dict[str, pa.Table]) -> None:
    """Write every table into a staging directory, then move them all into `out_dir`."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for name, table in tables.items():
            _write_csv(table, staging / f"{name}.csv")
        out_dir.mkdir(exist_ok=True)
        for name in tables:
            os.replace(staging / f"{name}.csv", out_dir / f"{name}.csv")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write_csv(table: pa.Table, path: Path) -> None:
    """Plain CSV: unquoted header and cells, empty cells for missing values."""
    with path.open("wb") as file:
        file.write((",".join(table.column_names) + "\n").encode())
        options = pa_csv.WriteOptions(include_header=False, quoting_style="none")
        pa_csv.write_csv(table, file, options)
