"""A hand-made evaluation window whose candidates, relevance and slices are known.

Window: March 2025. P1 is a federal partner, P2 a local one in the north.
  O1 P1 food    everywhere  base  Feb..Apr (existed before the window)
  O2 P2 food    north only  base  March    (new)
  O3 P1 travel  everywhere  vip   March    (new)
  O4 P1 books   everywhere  base  Jan..mid Feb (over before the window)
  O5 P1 books   everywhere  base  from 20 March (new)
  O6 P1 travel  everywhere  gold  March    (new)
m1 north/base, bought P1 food before the window (warm); in March: P1 food, P2 food,
   P1 books on 5 March (before O5 starts), P1 travel (only vip/gold offers).
m2 south/gold, no purchase before (cold); in March: P1 travel, P2 food (north only).
m3 signs up in the window; m4 buys nothing in it; m5 buys on 1 April (after the window).
"""

from collections.abc import Callable
from datetime import date

import pandas as pd
import pytest

from perkrank.features.dataset import Dataset
from perkrank.features.vocabulary import item_feature_names, item_id, member_feature_names
from perkrank.training.window import EvaluationWindow, prepare_window

START, END = date(2025, 3, 1), date(2025, 4, 1)


def make_dataset() -> Dataset:
    members = pd.DataFrame(
        {
            "member_id": ["m1", "m2", "m3", "m4", "m5"],
            "region": ["north", "south", "north", "north", "south"],
            "tier": ["base", "gold", "vip", "base", "base"],
            "birth_date": pd.to_datetime([None] * 5),
            "signup_date": pd.to_datetime(
                ["2024-01-01", "2024-01-01", "2025-03-10", "2024-01-01", "2024-01-01"]
            ),
        }
    )
    purchase_rows = [
        ("m1", "2025-02-10 12:00", "P1", "food"),
        ("m1", "2025-03-03 09:00", "P1", "food"),
        ("m1", "2025-03-04 10:00", "P2", "food"),
        ("m1", "2025-03-05 11:00", "P1", "books"),
        ("m1", "2025-03-06 11:00", "P1", "travel"),
        ("m2", "2025-03-07 08:00", "P1", "travel"),
        ("m2", "2025-03-08 08:00", "P2", "food"),
        ("m3", "2025-03-15 08:00", "P1", "food"),
        ("m4", "2025-02-01 08:00", "P1", "food"),
        ("m5", "2025-04-01 00:00", "P1", "food"),
    ]
    purchases = pd.DataFrame(purchase_rows, columns=["member_id", "ts", "partner_id", "category"])
    purchases["ts"] = pd.to_datetime(purchases["ts"])
    purchases["amount"] = 10.0
    purchases["channel"] = "store"
    partners = pd.DataFrame(
        {
            "partner_id": ["P1", "P2"],
            "name": ["Federal", "Local"],
            "scope": ["federal", "local"],
            "regions": [(), ("north",)],
            "categories": [("food", "travel", "books"), ("food",)],
        }
    )
    offer_rows = [
        ("O1", "P1", "food", "base", "2025-02-01", "2025-04-30"),
        ("O2", "P2", "food", "base", "2025-03-01", "2025-03-31"),
        ("O3", "P1", "travel", "vip", "2025-03-01", "2025-03-31"),
        ("O4", "P1", "books", "base", "2025-01-01", "2025-02-15"),
        ("O5", "P1", "books", "base", "2025-03-20", "2025-03-31"),
        ("O6", "P1", "travel", "gold", "2025-03-01", "2025-03-31"),
    ]
    offers = pd.DataFrame(
        offer_rows,
        columns=["offer_id", "partner_id", "category", "min_tier", "valid_from", "valid_to"],
    )
    offers["valid_from"] = pd.to_datetime(offers["valid_from"])
    offers["valid_to"] = pd.to_datetime(offers["valid_to"])
    offers["title"] = offers["offer_id"]
    offers["regions"] = [(), ("north",), (), (), (), ()]
    offers["budget"] = pd.array([None] * len(offers), dtype="Int64")
    offers["reward"] = "10%"
    return Dataset(members=members, purchases=purchases, partners=partners, offers=offers)


OFFER_REGIONS = [None, frozenset({"north"}), None, None, None, None]
BOUGHT_BEFORE = {"m1": frozenset({item_id("P1", "food")}), "m4": frozenset({item_id("P1", "food")})}


def make_window(dataset: Dataset | None = None, **options) -> EvaluationWindow:
    dataset = dataset if dataset is not None else make_dataset()
    scopes = dict(zip(dataset.partners["partner_id"], dataset.partners["scope"], strict=True))
    item_features = {
        item_id(partner, category): item_feature_names(partner, category, scopes[partner])
        for partner, category in zip(
            dataset.offers["partner_id"], dataset.offers["category"], strict=True
        )
    }
    member_features = {
        member: member_feature_names(region, tier)
        for member, region, tier in dataset.members[["member_id", "region", "tier"]].itertuples(
            index=False
        )
    }
    return prepare_window(
        dataset,
        START,
        END,
        member_features=member_features,
        items_bought_before=BOUGHT_BEFORE,
        offer_regions=OFFER_REGIONS,
        item_features=item_features,
        **options,
    )


@pytest.fixture(scope="module")
def window() -> EvaluationWindow:
    """The window of `make_dataset`: March 2025."""
    return make_window()


@pytest.fixture
def window_of() -> Callable[..., EvaluationWindow]:
    """`make_window`, for test modules (they cannot import this conftest)."""
    return make_window


@pytest.fixture
def hand_made_dataset() -> Dataset:
    return make_dataset()
