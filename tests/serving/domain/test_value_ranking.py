"""Value-aware ranking in serving: lever date windows and multipliers, the value weight, the
bundle's calibration, and levers as a config."""

import asyncio
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from pydantic import ValidationError

from perkrank.config import ServeConfig
from perkrank.features.eligibility import day_number
from perkrank.lever_config import Lever, LeversConfig
from perkrank.models import value
from perkrank.models.bundle import Bundle
from perkrank.models.factors import Factors
from perkrank.serving.domain.catalog import Member, Offer, build_catalog
from perkrank.serving.domain.levers import in_force, lever_log_multipliers
from perkrank.serving.domain.ranking import OfferRanker, OfferRequest
from perkrank.serving.state.memory import MemoryStateStore

TODAY = date(2026, 6, 15)
NOW = datetime(2026, 6, 15, 12, tzinfo=UTC).timestamp()
ITEMS = ["P1|Beauty", "P2|Grocery", "P3|Bakery"]


def lever(**fields) -> Lever:
    values = {"name": "l", "target": "partner", "value": "P1", "multiplier": 2.0}
    return Lever(**values | fields)


@pytest.mark.parametrize(
    ("start", "end", "day", "expected"),
    [
        (None, None, TODAY, True),
        (TODAY, None, TODAY, True),  # start inclusive
        (TODAY, None, TODAY - timedelta(days=1), False),
        (None, TODAY, TODAY, False),  # end exclusive
        (None, TODAY, TODAY - timedelta(days=1), True),
        (TODAY, TODAY + timedelta(days=1), TODAY, True),
        (TODAY, TODAY + timedelta(days=1), TODAY + timedelta(days=1), False),
    ],
)
def test_a_lever_is_in_force_from_its_start_until_before_its_end(start, end, day, expected):
    assert in_force(lever(start=start, end=end), day_number(day)) is expected


def test_lever_multipliers_match_partner_category_or_offer_and_multiply():
    levers = [
        lever(name="boost_p1", target="partner", value="P1", multiplier=2.0),
        lever(name="bury_grocery", target="category", value="Grocery", multiplier=0.5),
        lever(name="boost_one", target="offer", value="o-3", multiplier=3.0),
        lever(name="later", target="partner", value="P2", multiplier=9.0, start=TODAY),
    ]

    logs = lever_log_multipliers(
        levers,
        day_number(TODAY - timedelta(days=1)),
        partner_ids=["P1", "P2", "P1", "P3"],
        categories=["Beauty", "Grocery", "Grocery", "Bakery"],
        offer_ids=["o-1", "o-2", "o-3", "o-4"],
    )

    assert np.exp(logs).tolist() == pytest.approx([2.0, 0.5, 2.0 * 0.5 * 3.0, 1.0])


@pytest.mark.parametrize(
    "fields",
    [
        {"multiplier": 0.0},
        {"multiplier": 1000.0},
        {"target": "region"},
        {"value": ""},
        {"name": "Not OK"},
        {"start": TODAY, "end": TODAY},
        {"start": TODAY, "end": TODAY - timedelta(days=1)},
    ],
)
def test_a_lever_that_makes_no_sense_is_refused(fields):
    with pytest.raises(ValidationError):
        lever(**fields)


def test_lever_names_are_unique():
    with pytest.raises(ValidationError, match="duplicate lever names: twice"):
        LeversConfig(levers=(lever(name="twice"), lever(name="twice", value="P2")))


def make_bundle(calibration=value.IDENTITY) -> Bundle:
    """alice scores Beauty 1.0, Bakery 0.3, Grocery 0.0."""
    ranker = Factors(
        member_ids=["alice"],
        member_vectors=[[1.0, 0.0]],
        item_ids=ITEMS,
        item_vectors=[[1.0, 0.0], [0.0, 1.0], [0.3, 0.3]],
        item_biases=[0.0, 0.0, 0.0],
        member_feature_ids=["region=north"],
        member_feature_vectors=[[0.0, 0.5]],
    )
    fallback = Factors(
        member_ids=[],
        member_vectors=np.zeros((0, 1)),
        item_ids=ITEMS,
        item_vectors=[[0.1], [0.2], [0.3]],
        item_biases=[0.0, 0.0, 0.0],
        member_feature_ids=["tier=base"],
        member_feature_vectors=[[1.0]],
    )
    return Bundle(ranker=ranker, fallback=fallback, calibration=calibration)


def offer(offer_id, partner_id, category, **fields) -> Offer:
    values = {
        "scope": "federal",
        "title": offer_id,
        "reward": "10% back",
        "min_tier": "base",
        "valid_from": TODAY - timedelta(days=1),
        "valid_to": TODAY + timedelta(days=1),
    }
    return Offer(offer_id, partner_id, partner_id, category=category, **values | fields)


OFFERS = [  # net values -5, +10, 0: value terms -0.5, +1, 0 (× value_weight)
    offer("beauty", "P1", "Beauty", reward_cost=5.0),
    offer("grocery", "P2", "Grocery", reward_cost=2.0, partner_funding=12.0),
    offer("bakery", "P3", "Bakery", reward_cost=1.0, partner_funding=1.0),
]


def ranked(value_weight=0.0, calibration=value.IDENTITY, levers=(), member="alice"):
    bundle = make_bundle(calibration)
    settings = ServeConfig(
        catalog_date=TODAY,
        app_api_keys="test:app-key-for-tests-0001",
        value_weight=value_weight,
        max_offers_per_partner=5,
    )
    catalog = build_catalog(OFFERS, {"alice": Member("north", "base")}, bundle)
    ranker = OfferRanker(bundle, catalog, settings, levers)
    request = OfferRequest(member, "app", 3)
    ranking = asyncio.run(ranker.rank(MemoryStateStore(), request, (), NOW))
    return [served.offer.offer_id for served in ranking.offers], [
        served.score for served in ranking.offers
    ]


@pytest.mark.parametrize(
    ("value_weight", "slope", "intercept", "order", "scores"),
    [
        (0.0, 1.0, 0.0, ["beauty", "bakery", "grocery"], [1.0, 0.3, 0.0]),
        (1.0, 1.0, 0.0, ["grocery", "beauty", "bakery"], [1.0, 0.5, 0.3]),
        (2.0, 1.0, 0.0, ["grocery", "bakery", "beauty"], [2.0, 0.3, 0.0]),
        (0.0, 2.0, -1.0, ["beauty", "bakery", "grocery"], [1.0, -0.4, -1.0]),
        (1.0, 2.0, -1.0, ["beauty", "grocery", "bakery"], [0.5, 0.0, -0.4]),
    ],
)
def test_the_value_weight_trades_relevance_for_value_on_calibrated_scores(
    value_weight, slope, intercept, order, scores
):
    calibration = value.Calibration(slope, intercept)

    served, served_scores = ranked(value_weight, calibration)

    assert served == order
    assert served_scores == pytest.approx(scores, abs=1e-6)


def test_a_lever_buries_a_partner_only_within_its_dates():
    bury = lever(name="bury_p1", value="P1", multiplier=float(np.exp(-2.0)))
    ended = bury.model_copy(update={"end": TODAY})
    starts_today = bury.model_copy(update={"start": TODAY})

    assert ranked(levers=[bury])[0] == ["bakery", "grocery", "beauty"]
    assert ranked(levers=[ended])[0] == ["beauty", "bakery", "grocery"]
    assert ranked(levers=[starts_today])[0] == ["bakery", "grocery", "beauty"]


def test_a_lever_boosts_cold_members_order_too():
    boost = lever(name="boost_bakery", target="offer", value="bakery", multiplier=100.0)

    assert ranked(member="stranger")[0][0] != "bakery"
    assert ranked(levers=[boost], member="stranger")[0][0] == "bakery"


def test_the_value_weight_comes_from_the_environment_and_is_never_negative(monkeypatch):
    monkeypatch.setenv("PERKRANK_VALUE_WEIGHT", "0.75")

    assert ServeConfig().value_weight == 0.75
    monkeypatch.delenv("PERKRANK_VALUE_WEIGHT")
    assert ServeConfig().value_weight == 0.0  # the default: relevance only
    with pytest.raises(ValidationError):
        ServeConfig(value_weight=-0.5)
