"""Offer-level response rates: empirical-Bayes shrinkage to the global rate, stored in the
bundle, and applied by the one scoring path as weight · log(rate / global rate)."""

import numpy as np
import pytest

from perkrank.models import scoring
from perkrank.models.offer_rates import STRENGTH_BOUNDS, OfferRates, shrinkage_strength

IDS = np.array(["a", "b", "c"])


def test_rates_shrink_to_the_global_rate_and_few_impressions_shrink_most():
    shown, redeemed = np.array([1000, 10, 1000]), np.array([300, 10, 100])
    rates = OfferRates.fit(IDS, shown, redeemed, weight=1.0)

    g, raw = 410 / 2010, redeemed / shown
    assert rates.global_rate == pytest.approx(g)
    assert rates.rates == pytest.approx((redeemed + rates.strength * g) / (shown + rates.strength))
    pulled = (raw - rates.rates) / (raw - g)  # the share of the way to g
    assert ((pulled > 0) & (pulled < 1)).all()
    assert pulled[1] > 10 * max(pulled[0], pulled[2])


@pytest.mark.parametrize(
    ("shown", "redeemed", "expected"),
    [
        ([100, 100, 100], [10, 10, 10], STRENGTH_BOUNDS[1]),  # no spread beyond noise: all g
        ([10_000, 10_000], [1000, 3000], pytest.approx(0.2 * 0.8 / 0.01 - 1, rel=0.01)),
    ],
)
def test_the_prior_strength_is_the_method_of_moments(shown, redeemed, expected):
    shown, redeemed = np.array(shown, float), np.array(redeemed, float)
    assert shrinkage_strength(shown, redeemed, redeemed.sum() / shown.sum()) == expected


@pytest.mark.parametrize(("shown", "redeemed"), [([0, 0], [0, 0]), ([10, 5], [0, 0])])
def test_nothing_shown_or_nothing_redeemed_gives_no_rates(shown, redeemed):
    assert OfferRates.fit(IDS[:2], shown, redeemed, weight=1.0) is None


def test_the_prior_is_the_weighted_log_lift_and_zero_for_unknown_offers_or_no_rates():
    rates = OfferRates.fit(IDS, [1000, 1000, 1000], [400, 200, 100], weight=0.5)

    prior = scoring.offer_prior(rates, ["c", "zzz", "a"])

    expected = 0.5 * np.log(rates.rates[[2, 0]] / rates.global_rate)
    assert prior[[0, 2]] == pytest.approx(expected, rel=1e-5)
    assert prior[1] == 0.0 and prior[2] > 0 > prior[0]
    assert not scoring.offer_prior(None, ["a", "b"]).any()


def test_rates_round_trip_through_a_directory(tmp_path):
    rates = OfferRates.fit(IDS, [1000, 50, 1000], [300, 10, 100], weight=2.0)
    rates.save(tmp_path)

    loaded = OfferRates.load(tmp_path)

    assert loaded.offer_ids.tolist() == IDS.tolist()
    assert loaded.rates == pytest.approx(rates.rates)
    assert (loaded.global_rate, loaded.strength, loaded.weight) == pytest.approx(
        (rates.global_rate, rates.strength, 2.0)
    )
    assert OfferRates.load(tmp_path / "missing") is None
