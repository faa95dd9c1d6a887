"""The one eligibility rule: region, minimum tier and validity over a span of days."""

import numpy as np

from perkrank.features.eligibility import day_number, eligible, region_mask, valid_between
from perkrank.features.schema import TIERS, tier_rank

# Offers:      everywhere  north only  south+east  everywhere(gold)  everywhere(days 12-20)
REGIONS = [None, frozenset({"north"}), frozenset({"south", "east"}), None, None]
MIN_TIERS = np.array([tier_rank(tier) for tier in ("base", "base", "base", "gold", "base")])
VALID_FROM = np.array([0, 0, 0, 0, 12])
VALID_TO = np.array([30, 30, 10, 30, 20])


def mask(region, tier, first_day, last_day):
    in_region = region_mask(REGIONS, region)
    return eligible(
        in_region,
        MIN_TIERS,
        VALID_FROM,
        VALID_TO,
        tier=tier,
        first_day=first_day,
        last_day=last_day,
    ).tolist()


def test_tiers_rank_in_schema_order():
    assert [tier_rank(tier) for tier in TIERS] == [0, 1, 2, 3]


def test_region_mask_keeps_offers_of_the_region_and_those_valid_everywhere():
    assert region_mask(REGIONS, "north").tolist() == [True, True, False, True, True]
    assert region_mask(REGIONS, "atlantis").tolist() == [True, False, False, True, True]


def test_one_day_needs_validity_that_day_region_and_tier():
    assert mask("north", "base", 5, 5) == [True, True, False, False, False]
    assert mask("east", "vip", 11, 11) == [True, False, False, True, False]
    assert mask("east", "vip", 10, 10) == [True, False, True, True, False]


def test_a_span_of_days_needs_validity_on_any_day_of_it():
    assert valid_between(VALID_FROM, VALID_TO, 21, 40).tolist() == [True, True, False, True, False]
    assert valid_between(VALID_FROM, VALID_TO, 10, 12).tolist() == [True] * 5
    assert mask("south", "silver", 0, 11) == [True, False, True, False, False]


def test_day_numbers_count_days_since_1970():
    from datetime import date

    assert day_number(date(1970, 1, 2)) == 1
