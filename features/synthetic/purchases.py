"""Simulate purchases month by month: which item, when, how much and through which channel.

A new purchase picks an item by a softmax over taste · item factors + regional, tier, seasonal
and popularity effects, restricted to items sold in the member's region. Most purchases repeat
an item the member already bought.
"""

from dataclasses import dataclass

import numpy as np

from perkrank.features.synthetic.members import Members
from perkrank.features.synthetic.program import CATEGORIES, TASTE_DIMENSIONS, Program

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

TASTE_STRENGTH = 1.2
MEMBER_CHUNK = 10_000
SECONDS_PER_DAY = 86_400
DAYS_PER_MONTH = 30.44


@dataclass(frozen=True)
class Purchases:
    """Generated purchases as arrays, in no particular order."""

    member_row: np.ndarray
    item_idx: np.ndarray
    second: np.ndarray
    amount_cents: np.ndarray
    channel_idx: np.ndarray


def simulate_purchases(
    rng: np.random.Generator, program: Program, members: Members, period_days: np.ndarray
) -> Purchases:
    """Purchases of every member in the monthly periods starting at `period_days`."""
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


def _calendar_month(day: int) -> int:
    return int(np.datetime64(int(day), "D").astype(object).month)


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
