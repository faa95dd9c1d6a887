"""What training, evaluation and serving need to know about items and offers."""

import numpy as np
import pandas as pd

from perkrank.features.columns import Columns
from perkrank.features.dataset import Dataset
from perkrank.features.vocabulary import item_feature_names, item_id


def offer_items(offers: pd.DataFrame) -> np.ndarray:
    """The item id of every offer row."""
    pairs = zip(offers[Columns.partner_id], offers[Columns.category], strict=True)
    return np.array([item_id(partner_id, category) for partner_id, category in pairs], dtype=str)


def offer_regions(dataset: Dataset) -> list[frozenset[str] | None]:
    """Regions of each offer row: its own, else its local partner's; None = everywhere."""
    return regions_of_offers(dataset.offers, dataset.partners)


def regions_of_offers(offers: pd.DataFrame, partners: pd.DataFrame) -> list[frozenset[str] | None]:
    """`offer_regions` of an offers table and the partners table it refers to."""
    local_regions = {
        partner_id: frozenset(regions)
        for partner_id, scope, regions in zip(
            partners[Columns.partner_id],
            partners[Columns.scope],
            partners[Columns.regions],
            strict=True,
        )
        if scope == "local"
    }
    return [
        frozenset(regions) if regions else local_regions.get(partner_id)
        for partner_id, regions in zip(
            offers[Columns.partner_id], offers[Columns.regions], strict=True
        )
    ]


def partner_scopes(partners: pd.DataFrame) -> dict[str, str]:
    """Scope ("federal" or "local") by partner id."""
    return dict(zip(partners[Columns.partner_id], partners[Columns.scope], strict=True))


def item_feature_table(dataset: Dataset) -> dict[str, list[str]]:
    """Feature names of every item the data names: partners' categories, offers and purchases."""
    declared = (
        dataset.partners[[Columns.partner_id, Columns.categories]]
        .explode(Columns.categories)
        .dropna()
        .rename(columns={Columns.categories: Columns.category})
    )
    pairs = pd.concat(
        [
            declared,
            dataset.offers[[Columns.partner_id, Columns.category]],
            dataset.purchases[[Columns.partner_id, Columns.category]].drop_duplicates(),
        ],
        ignore_index=True,
    ).drop_duplicates()
    scopes = partner_scopes(dataset.partners)
    return {
        item_id(partner_id, category): item_feature_names(partner_id, category, scopes[partner_id])
        for partner_id, category in zip(
            pairs[Columns.partner_id], pairs[Columns.category], strict=True
        )
    }
