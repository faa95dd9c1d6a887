"""Offers map onto items, carry their partner's features and apply where their partner does."""

import pandas as pd
import pytest

from perkrank.features.dataset import Dataset
from perkrank.features.offer_features import item_feature_table, offer_items, offer_regions
from perkrank.features.schema import tier_rank

PARTNERS = [
    ("CHAIN", "federal", (), ("Grocery", "Fuel")),
    ("CAFE", "local", ("north", "west"), ("Dining",)),
]


def make_dataset(offers, purchases=()):
    """Partners of `PARTNERS`, `offers` as (offer_id, partner_id, category, regions) rows."""
    offer_ids, partner_ids, categories, regions = zip(*offers, strict=True)
    return Dataset(
        members=pd.DataFrame(columns=["member_id", "region", "tier", "signup_date"]),
        purchases=pd.DataFrame(
            {
                "member_id": "m1",
                "partner_id": [partner_id for partner_id, _ in purchases],
                "category": [category for _, category in purchases],
            }
        ),
        partners=pd.DataFrame(
            {
                "partner_id": [row[0] for row in PARTNERS],
                "name": [row[0].title() for row in PARTNERS],
                "scope": [row[1] for row in PARTNERS],
                "regions": [row[2] for row in PARTNERS],
                "categories": [row[3] for row in PARTNERS],
            }
        ),
        offers=pd.DataFrame(
            {
                "offer_id": offer_ids,
                "partner_id": partner_ids,
                "category": categories,
                "regions": regions,
                "min_tier": "base",
            }
        ),
    )


def test_offer_regions_are_its_own_else_its_local_partners_else_everywhere():
    dataset = make_dataset(
        [
            ("federal_anywhere", "CHAIN", "Grocery", ()),
            ("federal_in_south", "CHAIN", "Fuel", ("south",)),
            ("local_where_partner_is", "CAFE", "Dining", ()),
            ("local_in_west_only", "CAFE", "Dining", ("west",)),
        ]
    )

    assert offer_regions(dataset) == [
        None,
        frozenset({"south"}),
        frozenset({"north", "west"}),
        frozenset({"west"}),
    ]


def test_offer_items_are_partner_category_pairs_in_offer_order():
    dataset = make_dataset([("o1", "CAFE", "Dining", ()), ("o2", "CHAIN", "Fuel", ())])

    assert offer_items(dataset.offers).tolist() == ["CAFE|Dining", "CHAIN|Fuel"]


def test_item_features_cover_declared_offered_and_bought_items_with_partner_scope():
    dataset = make_dataset(
        [("o1", "CAFE", "Dining", ())],
        purchases=[("CHAIN", "Bakery"), ("CHAIN", "Bakery")],
    )

    table = item_feature_table(dataset)

    assert sorted(table) == ["CAFE|Dining", "CHAIN|Bakery", "CHAIN|Fuel", "CHAIN|Grocery"]
    assert table["CAFE|Dining"] == ["partner=CAFE", "category=Dining", "scope=local"]
    assert table["CHAIN|Bakery"] == ["partner=CHAIN", "category=Bakery", "scope=federal"]


@pytest.mark.parametrize(
    ("lower", "higher"), [("base", "silver"), ("silver", "gold"), ("gold", "vip")]
)
def test_tier_rank_orders_tiers_from_base_to_vip(lower, higher):
    assert tier_rank(lower) < tier_rank(higher)
