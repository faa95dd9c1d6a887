"""The offer catalog: one catalog per month of history plus one for the month after it.

Each month brings new offer ids on popular items of launched partners (new partners first), with
validity periods, minimum tiers, budgets, rewards and regions within the partner's own; some
target an occasion (birthday, welcome, win-back, tier upgrade) and some above base are
exclusive to their tier. Each offer's reward costs the program (`REWARD_COSTS`), and some are
co-funded by their partner (`COFUNDED_SHARE`), a few beyond their cost.
"""

import numpy as np
import pyarrow as pa

from perkrank.features.columns import Columns
from perkrank.features.schema import OCCASIONS, OFFERS, TIERS
from perkrank.features.synthetic.program import CATEGORIES, REGIONS, Program
from perkrank.features.synthetic.tables import join_names

REWARDS = (
    "5% cashback", "10% cashback", "15% cashback", "200 bonus points", "500 bonus points",
    "1000 bonus points", "double points", "triple points", "gift with purchase",
)  # fmt: skip
REWARD_COSTS = (2.5, 5.0, 7.5, 2.0, 5.0, 10.0, 3.0, 6.0, 8.0)
"""What one redemption of each of `REWARDS` costs the program (currency units)."""
COFUNDED_SHARE = 0.3
"""Offers their partner co-funds, paying 20–180% of the reward's cost."""
BUDGETS = (100, 250, 500, 1000, 2500, 5000)
OFFER_TIER_SHARES = (0.72, 0.12, 0.10, 0.06)
OCCASION_SHARE = 0.08
"""Offers that target an occasion (birthday, welcome, winback, tier_upgrade, equally often)."""
EXCLUSIVE_SHARE = 0.4
"""Offers above base that are exclusive to their tier (marked so to members)."""
OFFER_TYPES = {
    Columns.valid_from: pa.date32(),
    Columns.valid_to: pa.date32(),
    Columns.budget: pa.int64(),
    Columns.reward_cost: pa.float64(),
    Columns.partner_funding: pa.float64(),
}
"""Column types of the offers table that are not text."""


def offers_table(
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
    occasion = np.where(
        rng.random(len(items)) < OCCASION_SHARE, rng.choice(len(OCCASIONS), len(items)), -1
    )
    exclusive = (min_tier > 0) & (rng.random(len(items)) < EXCLUSIVE_SHARE)
    funding = _funding(items, period_days, reward)
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
                Columns.occasion: OCCASIONS[occasion[number]] if occasion[number] >= 0 else "",
                Columns.exclusive_tier: TIERS[min_tier[number]] if exclusive[number] else "",
                Columns.reward_cost: REWARD_COSTS[reward[number]],
                Columns.partner_funding: funding[number],
            }
        )
    return offers


def _funding(items: np.ndarray, period_days: np.ndarray, reward: np.ndarray) -> list[float]:
    """Each offer's partner funding: 0, or for `COFUNDED_SHARE` of them 20–180% of its cost.
    Drawn from a generator of its own (seeded by the month and its items), so that adding
    value fields left every other column of a seed's data as it was."""
    rng = np.random.default_rng([int(period_days[0]), *items.tolist()])
    cost = np.array(REWARD_COSTS)[reward]
    share = rng.uniform(0.2, 1.8, len(items))
    cofunded = rng.random(len(items)) < COFUNDED_SHARE
    return np.round(np.where(cofunded, cost * share, 0.0), 2).tolist()


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
    return join_names(REGIONS, regions)
