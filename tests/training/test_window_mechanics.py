"""The evaluation window applies serving's eligibility to the mechanics columns: an offer
exclusive to a tier is no candidate of lower tiers, occasion offers are no candidates."""

import dataclasses

from tests.training.conftest import make_dataset, make_window


def candidates(window):
    """{(region, tier): candidate offer ids} of the window's groups."""
    return {
        (group.region, group.tier): {str(window.offer_ids[row]) for row in group.offer_rows}
        for group in window.groups
    }


def with_columns(**columns):
    dataset = make_dataset()
    offers = dataset.offers.assign(**columns)
    return dataclasses.replace(dataset, offers=offers)


def test_a_file_without_the_mechanics_columns_gives_the_same_window():
    blank = with_columns(occasion="", exclusive_tier="")
    assert candidates(make_window(blank)) == candidates(make_window())


def test_an_exclusive_offer_is_no_candidate_of_lower_tiers():
    dataset = with_columns(exclusive_tier=["vip", "", "", "", "", ""])  # O1 for vip only
    before, after = candidates(make_window()), candidates(make_window(dataset))
    assert "O1" in before["north", "base"] and "O1" not in after["north", "base"]
    assert "O1" not in after["south", "gold"]


def test_occasion_offers_are_no_candidates():
    dataset = with_columns(occasion=["", "birthday", "", "", "", ""])  # O2
    window = make_window(dataset)
    assert "O2" not in set(window.offer_ids.tolist())
    assert "O2" in set(make_window().offer_ids.tolist())
