"""The scoring parity tests' world: a small synthetic program with a hand-made ranker on a
1/8 grid, and the same bundle, catalog and day on serving's side and evaluation's side (the
`setup` fixture of tests/conftest.py)."""

from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from perkrank.config import InteractionConfig, ServeConfig
from perkrank.features.dataset import Dataset
from perkrank.features.interactions import build_training_data, cutoff_features
from perkrank.features.loader import load_dataset
from perkrank.features.offer_features import item_feature_table, offer_regions
from perkrank.features.synthetic import generate
from perkrank.features.vocabulary import (
    SPEND_FEATURES,
    TENURE_FEATURES,
    member_feature_names,
)
from perkrank.models.bundle import Bundle
from perkrank.models.factors import Factors
from perkrank.models.popularity import fit_popularity
from perkrank.serving.domain.catalog import catalog_from_dataset, day_number
from perkrank.serving.domain.ranking import OfferRanker, OfferRequest
from perkrank.training.evaluation import rank_window
from perkrank.training.window import EvaluationWindow, prepare_window

DAY = date(2025, 4, 10)
"""The catalog day serving ranks for and the one-day evaluation window [DAY, DAY + 1)."""
K = 10
DIM = 4


def grid(rng: np.random.Generator, *shape: int) -> np.ndarray:
    """Random values in [-1, 1] on a 1/8 grid (sums and products stay exact in float32)."""
    return rng.integers(-8, 9, size=shape) / 8.0


def with_purchases_on_day(dataset: Dataset) -> Dataset:
    """The data plus, for every member who signed up before DAY, one purchase on DAY of every
    item an offer valid that day maps onto (so every member has relevant offers that day)."""
    offers = dataset.offers
    valid = offers[
        (offers["valid_from"] <= pd.Timestamp(DAY)) & (offers["valid_to"] >= pd.Timestamp(DAY))
    ]
    items = valid[["partner_id", "category"]].drop_duplicates()
    members = dataset.members.loc[dataset.members["signup_date"] < pd.Timestamp(DAY), ["member_id"]]
    extra = members.merge(items, how="cross").assign(
        ts=pd.Timestamp(DAY) + pd.Timedelta(hours=12), amount=10.0, channel="app"
    )
    purchases = pd.concat([dataset.purchases, extra[dataset.purchases.columns]], ignore_index=True)
    return Dataset(dataset.members, purchases, dataset.partners, dataset.offers)


def hand_made_ranker(dataset: Dataset, moment: datetime) -> Factors:
    """Known members (buyers before DAY) and most items learned; every member feature
    (region, tier, segment, tenure, spend) and item feature with a distinct vector; repeats
    from the decayed purchase counts. Every fifth item is left out: built from features."""
    rng = np.random.default_rng(5)
    data = build_training_data(dataset, moment, InteractionConfig())
    kept_items = np.flatnonzero(np.arange(len(data.item_ids)) % 5 != 0)
    regions, tiers = dataset.members["region"].unique(), dataset.members["tier"].unique()
    member_features = sorted(
        {
            name
            for region in regions
            for tier in tiers
            for name in member_feature_names(region, tier)
        }
        | set(TENURE_FEATURES)
        | set(SPEND_FEATURES)
    )
    item_features = sorted({name for names in data.item_features for name in names})
    return Factors(
        member_ids=data.member_ids,
        member_vectors=grid(rng, len(data.member_ids), DIM),
        item_ids=data.item_ids[kept_items],
        item_vectors=grid(rng, len(kept_items), DIM),
        item_biases=grid(rng, len(kept_items)),
        member_feature_ids=member_features,
        member_feature_vectors=grid(rng, len(member_features), DIM),
        item_feature_ids=item_features,
        item_feature_vectors=grid(rng, len(item_features), DIM),
        item_feature_biases=grid(rng, len(item_features)),
        repeat=data.purchase_counts[:, kept_items],
        repeat_weight=0.5,
        name="ranker",
    )


class Setup:
    """The same bundle, catalog and day on serving's side and evaluation's side."""

    def __init__(self, data_dir: Path) -> None:
        generate(data_dir, members=400, months=4, seed=3, start=date(2025, 1, 1))
        self.dataset = with_purchases_on_day(load_dataset(data_dir))
        moment = datetime.combine(DAY, datetime.min.time())
        features = cutoff_features(self.dataset, moment, InteractionConfig())
        self.bundle = Bundle(
            ranker=hand_made_ranker(self.dataset, moment), fallback=fit_popularity(features.data)
        )
        self.catalog = catalog_from_dataset(self.dataset, self.bundle)
        settings = ServeConfig(catalog_date=DAY, app_api_keys="test:app-key-for-tests-0001")
        self.ranker = OfferRanker(self.bundle, self.catalog, settings)
        self.window = prepare_window(
            self.dataset,
            DAY,
            DAY + timedelta(days=1),
            member_features=features.member_features,
            items_bought_before=features.items_bought_before,
            offer_regions=offer_regions(self.dataset),
            item_features=item_feature_table(self.dataset),
        )

    def evaluated(self, factors: Factors) -> dict[str, list[str]]:
        """Evaluation's top-K offer ids per member of the window under `factors`."""
        offer_rows = rank_window(self.window, factors, K)["all"].offer_rows
        return {
            member_id: [str(self.window.offer_ids[row]) for row in rows if row >= 0]
            for member_id, rows in zip(self.window.member_ids.tolist(), offer_rows, strict=True)
        }

    def served(self, member_id: str, *, tenure_days: int | None = None) -> tuple[list, list]:
        """Serving's personalized and fallback orders (top K offer ids) before the store."""
        region, tier = self.ranker.profile(OfferRequest(member_id, "app", K))
        day = self.ranker.day(0.0)
        if tenure_days is None:
            tenure_days = self.ranker.tenure_days(member_id, day)
        segment = self.ranker.segment(region, tier, day, tenure_days)
        shortlist = self.ranker.shortlist(member_id, segment, K)
        offers = self.catalog.offers
        return (
            [offers[row].offer_id for row in shortlist.personalized.rows[:K]],
            [offers[row].offer_id for row in shortlist.fallback.rows[:K]],
        )

    def tenure_days(self, member_id: str) -> int:
        return self.ranker.tenure_days(member_id, day_number(DAY))


def members_of(window: EvaluationWindow, warm: bool) -> list[str]:
    return window.member_ids[window.member_is_warm == warm].tolist()
