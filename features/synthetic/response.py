"""The response model: how likely a member clicks, then redeems, an offer shown at a position.

With the member's planted taste t (the one behind their purchases), the factors f of the
offer's item (partner × category), its reward and the 1-based position k it was shown at:

    affinity        a = t · f / sqrt(TASTE_DIMENSIONS)                      (sd ≈ 1.2)
    P(click)        = EXAMINE ** (k - 1) · σ(CLICK_BASE + TASTE_WEIGHT · a + REWARD_EFFECT[reward])
    P(redeem|click) = σ(REDEEM_BASE + TASTE_WEIGHT · a)
    P(redeem)       = P(click) · P(redeem | click)

(σ: the logistic function.) A member opens the app on a given day with probability
monthly purchases / 10 (their planted activity), kept within `VISITS`. Position enters as a
cascade-like examination probability, reward as a bump on the click logit, taste on both.
Nothing is drawn here: `ResponseModel` gives the probabilities, so any shown list has a
computable TRUE expected number of redemptions. The world (tastes, items) is rebuilt from
the generator's arguments (`world.world_of`).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from perkrank.features.synthetic.catalog import REWARDS
from perkrank.features.synthetic.program import CATEGORIES, TASTE_DIMENSIONS
from perkrank.features.synthetic.world import world_of

EXAMINE = 0.8
"""The chance that a member looks one position further down the list."""
CLICK_BASE = -2.0
REDEEM_BASE = -0.5
TASTE_WEIGHT = 1.0
REWARD_EFFECT: dict[str, float] = {
    "5% cashback": 0.0, "10% cashback": 0.2, "15% cashback": 0.4, "200 bonus points": 0.0,
    "500 bonus points": 0.15, "1000 bonus points": 0.3, "double points": 0.1,
    "triple points": 0.3, "gift with purchase": 0.2,
}  # fmt: skip
assert set(REWARD_EFFECT) == set(REWARDS)
VISITS = (0.1, 0.4)
"""Bounds of a member's daily visit probability: a tenth of their planted monthly purchases."""


def _sigmoid(logit: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logit))


@dataclass(frozen=True)
class ResponseModel:
    """Click and redemption probabilities of shown offers (formula in the module docstring)."""

    member_rows: dict[str, int]
    tastes: np.ndarray
    """Members × TASTE_DIMENSIONS: the planted tastes."""
    offer_factors: dict[str, np.ndarray]
    """Each offer's item factors."""
    offer_reward_effect: dict[str, float]
    visit_probability: np.ndarray
    """Each member's chance of opening the app on a given day (from their planted activity)."""
    catalog_date: date
    """A day of the catalog month after the history (the one a pilot serves): its 8th."""

    @classmethod
    def load(cls, data_dir: Path) -> ResponseModel:
        """The response model of a `perkrank generate` directory (needs its generator.json)."""
        program, members, served_month = world_of(data_dir)
        items = {
            (program.partner_ids[partner], CATEGORIES[category]): row
            for row, (partner, category) in enumerate(
                zip(program.item_partner, program.item_category, strict=True)
            )
        }
        factors, rewards = {}, {}
        with (Path(data_dir) / "offers.csv").open(newline="", encoding="utf-8") as file:
            for offer in csv.DictReader(file):
                item = items[(offer["partner_id"], offer["category"])]
                factors[offer["offer_id"]] = program.item_factors[item]
                rewards[offer["offer_id"]] = REWARD_EFFECT.get(offer["reward"], 0.0)
        return cls(
            member_rows={member: row for row, member in enumerate(members.member_ids)},
            tastes=members.tastes,
            offer_factors=factors,
            offer_reward_effect=rewards,
            visit_probability=np.clip(members.monthly_purchases / 10.0, VISITS[0], VISITS[1]),
            catalog_date=served_month + timedelta(days=7),
        )

    def affinity(self, member_id: str, offer_ids: list[str]) -> np.ndarray:
        """a = t · f / sqrt(D) of each offer for the member."""
        if not offer_ids:
            return np.zeros(0)
        factors = np.stack([self.offer_factors[offer] for offer in offer_ids])
        taste = self.tastes[self.member_rows[member_id]]
        return factors @ taste / np.sqrt(TASTE_DIMENSIONS)

    def probabilities(self, member_id: str, offer_ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """P(click) and P(redeem | click) of each offer shown in this order (positions 1, 2…)."""
        affinity = self.affinity(member_id, offer_ids)
        rewards = np.array([self.offer_reward_effect[offer] for offer in offer_ids])
        examine = EXAMINE ** np.arange(len(offer_ids))
        click = examine * _sigmoid(CLICK_BASE + TASTE_WEIGHT * affinity + rewards)
        return click, _sigmoid(REDEEM_BASE + TASTE_WEIGHT * affinity)

    def expected_redemptions(self, member_id: str, offer_ids: list[str]) -> float:
        """The TRUE expected redemptions of one visit showing `offer_ids` in this order."""
        click, redeem = self.probabilities(member_id, offer_ids)
        return float(np.sum(click * redeem))
