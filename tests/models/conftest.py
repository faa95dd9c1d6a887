"""Shared model-test data: a small "checkerboard" whose right answer is known, and scoring."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pytest
import scipy.sparse as sp

from perkrank.features.ids import IdMap
from perkrank.features.training_data import TrainingData
from perkrank.features.vocabulary import (
    item_feature_names,
    item_id,
    member_feature_names,
    segment_id,
)
from perkrank.models import scoring
from perkrank.models.factors import Factors

GROUPS = (("north", "gold", "Food"), ("south", "base", "Travel"))
"""Per group: the members' region and tier, and the category of the items they buy."""
MEMBERS_PER_GROUP = 10
ITEMS_PER_GROUP = 8


@dataclass(frozen=True)
class Checkerboard:
    """Two groups of members, each buying (nearly) all items of its own group and no other.

    Member k of a group never bought its group's item k % ITEMS_PER_GROUP (`held_out`), which
    every good model still ranks above the other group's items.
    """

    data: TrainingData
    group_items: tuple[list[str], list[str]]
    member_group: dict[str, int]
    held_out: dict[str, str]

    def cold_member_features(self, group: int) -> list[str]:
        """Feature names of a member of `group` no model has seen."""
        region, tier, _ = GROUPS[group]
        return member_feature_names(region, tier)

    def item_feature_lists(self, items: Sequence[str]) -> list[list[str]]:
        """Feature names of `items`, as in `data.item_features`."""
        columns = IdMap(self.data.item_ids).rows(items)
        return [self.data.item_features[column] for column in columns]


def make_checkerboard() -> Checkerboard:
    """Build the checkerboard TrainingData (purchase counts 1-3, weights = counts)."""
    member_ids, member_features, member_segments, member_group = [], [], [], {}
    item_ids, item_features = [], []
    group_items: tuple[list[str], list[str]] = ([], [])
    for group, (region, tier, category) in enumerate(GROUPS):
        for position in range(ITEMS_PER_GROUP):
            partner_id = f"P{group}{position}"
            group_items[group].append(item_id(partner_id, category))
            item_features.append(item_feature_names(partner_id, category, "federal"))
        for number in range(MEMBERS_PER_GROUP):
            member_id = f"M{group}{number:02d}"
            member_ids.append(member_id)
            member_group[member_id] = group
            member_features.append(member_feature_names(region, tier))
            member_segments.append(segment_id(region, tier))
    item_ids = group_items[0] + group_items[1]
    column_of = IdMap(item_ids)

    rows, columns, counts, held_out = [], [], [], {}
    for row, member_id in enumerate(member_ids):
        group, number = member_group[member_id], int(member_id[2:])
        held_out[member_id] = group_items[group][number % ITEMS_PER_GROUP]
        for position, item in enumerate(group_items[group]):
            if item != held_out[member_id]:
                rows.append(row)
                columns.append(column_of[item])
                counts.append(1.0 + (number + position) % 3)
    purchase_counts = sp.csr_matrix(
        (np.array(counts, dtype=np.float32), (rows, columns)),
        shape=(len(member_ids), len(item_ids)),
    )
    data = TrainingData(
        member_ids=np.array(member_ids),
        item_ids=np.array(item_ids),
        user_items=purchase_counts.copy(),
        purchase_counts=purchase_counts,
        purchase_totals=purchase_counts,
        member_features=member_features,
        item_features=item_features,
        member_segments=np.array(member_segments),
    )
    return Checkerboard(data, group_items, member_group, held_out)


def score_items(
    factors: Factors,
    member_id: str | None,
    member_features: Sequence[str],
    items: Sequence[str],
    item_features: Sequence[Sequence[str]],
) -> np.ndarray:
    """Scores of `items` for one member, known or not, the way serving computes them."""
    member_vector = scoring.member_vector(factors, member_id, member_features)
    item_vectors, item_biases, item_rows = scoring.item_inputs(factors, items, item_features)
    member_row = None if member_id is None else factors.member_row(member_id)
    repeat = scoring.repeat_scores(factors, member_row, item_rows)
    return scoring.scores(member_vector, item_vectors, item_biases, repeat)


@pytest.fixture(scope="session")
def checkerboard() -> Checkerboard:
    return make_checkerboard()


@pytest.fixture
def score() -> Callable[..., np.ndarray]:
    """`score_items`, for test modules (they cannot import this conftest)."""
    return score_items
