"""The serving catalog: eligibility masks, offer vectors for unseen items, members, loading."""

from datetime import date, timedelta

import numpy as np
import pytest

from perkrank.models.bundle import Bundle
from perkrank.models.factors import Factors
from perkrank.serving.domain.catalog import (
    Member,
    Offer,
    build_catalog,
    day_number,
    load_catalog,
    with_offers,
)

TODAY = date(2026, 6, 15)


def factors(item_ids, item_vectors, item_feature_ids=(), item_feature_vectors=None, biases=None):
    dim = len(item_vectors[0])
    feature_vectors = np.zeros((0, dim)) if item_feature_vectors is None else item_feature_vectors
    return Factors(
        member_ids=[],
        member_vectors=np.zeros((0, dim)),
        item_ids=item_ids,
        item_vectors=item_vectors,
        item_biases=np.zeros(len(item_ids)) if biases is None else biases,
        item_feature_ids=list(item_feature_ids),
        item_feature_vectors=feature_vectors,
    )


def offer(offer_id, partner_id="P1", category="Beauty", **fields):
    values = {
        "partner_name": f"Partner {partner_id}",
        "scope": "federal",
        "title": f"title of {offer_id}",
        "reward": "10% back",
        "min_tier": "base",
        "valid_from": TODAY - timedelta(days=5),
        "valid_to": TODAY + timedelta(days=5),
    }
    return Offer(offer_id=offer_id, partner_id=partner_id, category=category, **values | fields)


def bundle():
    ranker = factors(["P1|Beauty"], [[1.0, 0.0]])
    return Bundle(ranker=ranker, fallback=factors(["P1|Beauty"], [[0.5]]))


def eligible_ids(catalog, region, tier, day=TODAY):
    mask = catalog.eligible(region, tier, day_number(day))
    return {catalog.offers[row].offer_id for row in np.flatnonzero(mask)}


def test_only_offers_valid_today_in_the_region_and_open_to_the_tier_are_eligible():
    offers = [
        offer("federal"),
        offer("north-only", scope="local", regions=frozenset({"north"})),
        offer("south-only", scope="local", regions=frozenset({"south"})),
        offer("expired", valid_to=TODAY - timedelta(days=1)),
        offer("not-yet", valid_from=TODAY + timedelta(days=1)),
        offer("gold", min_tier="gold"),
        offer("last-day", valid_to=TODAY),
        offer("first-day", valid_from=TODAY),
    ]
    catalog = build_catalog(offers, {}, bundle())

    assert eligible_ids(catalog, "north", "base") == {
        "federal",
        "north-only",
        "last-day",
        "first-day",
    }
    assert eligible_ids(catalog, "south", "vip") == {
        "federal",
        "south-only",
        "gold",
        "last-day",
        "first-day",
    }


def test_a_region_no_file_names_gets_only_offers_valid_everywhere():
    offers = [offer("federal"), offer("north-only", scope="local", regions=frozenset({"north"}))]
    catalog = build_catalog(offers, {}, bundle())

    assert eligible_ids(catalog, "atlantis", "base") == {"federal"}


def test_offer_of_an_item_the_model_never_saw_is_the_sum_of_its_feature_vectors():
    ranker = factors(
        ["P1|Beauty"],
        [[1.0, 0.0]],
        item_feature_ids=["partner=P1", "category=Fuel", "scope=federal"],
        item_feature_vectors=np.array([[0.5, 0.25], [0.0, 1.0], [0.125, 0.0]]),
    )
    catalog = build_catalog(
        [offer("known"), offer("new", category="Fuel")],
        {},
        Bundle(ranker=ranker, fallback=factors(["P1|Beauty"], [[0.5]])),
    )

    np.testing.assert_allclose(catalog.ranker.vectors, [[1.0, 0.0], [0.625, 1.25]])
    np.testing.assert_array_equal(catalog.ranker.item_rows, [0, -1])
    np.testing.assert_allclose(catalog.fallback.vectors, [[0.5], [0.0]])


def test_members_are_looked_up_by_id_and_unknown_ids_have_no_profile():
    members = {"M1": Member("north", "gold"), "M2": Member("south", "base")}
    catalog = build_catalog([offer("federal")], members, bundle())

    assert catalog.member("M1") == Member("north", "gold")
    assert catalog.member("M2") == Member("south", "base")
    assert catalog.member("M3") is None


def write(path, text):
    path.write_text(text, encoding="utf-8")


def test_catalog_loaded_from_files_resolves_regions_budgets_and_partner_names(tmp_path):
    write(
        tmp_path / "members.csv",
        "member_id,region,tier,birth_date,signup_date\nM1,north,silver,,2024-01-01\n",
    )
    write(
        tmp_path / "purchases.csv",
        "member_id,ts,partner_id,category,amount,channel\n"
        "M1,2026-05-01 10:00:00,P1,Beauty,12.5,app\n",
    )
    write(
        tmp_path / "partners.csv",
        "partner_id,name,scope,regions,categories\n"
        "P1,Glow,federal,,Beauty\n"
        "P2,North Bakery,local,north;east,Bakery\n",
    )
    write(
        tmp_path / "offers.csv",
        "offer_id,partner_id,category,title,regions,min_tier,valid_from,valid_to,budget,reward\n"
        "O1,P1,Beauty,Glow deal,,base,2026-06-01,2026-06-30,,10%\n"
        "O2,P2,Bakery,Bread deal,,silver,2026-06-01,2026-06-30,40,2x points\n"
        "O3,P2,Bakery,East bread,east,base,2026-06-01,2026-06-30,,2x points\n",
    )

    catalog = load_catalog(tmp_path, bundle())

    by_id = {item.offer_id: item for item in catalog.offers}
    assert by_id["O1"].regions is None
    assert by_id["O2"].regions == frozenset({"north", "east"})
    assert by_id["O3"].regions == frozenset({"east"})
    assert [by_id[o].budget for o in ("O1", "O2", "O3")] == [None, 40, None]
    assert by_id["O2"].partner_name == "North Bakery"
    assert by_id["O2"].scope == "local"
    assert by_id["O1"].valid_to == date(2026, 6, 30)
    assert catalog.member("M1") == Member("north", "silver", day_number(date(2024, 1, 1)))
    assert eligible_ids(catalog, "north", "silver") == {"O1", "O2"}
    assert eligible_ids(catalog, "east", "base") == {"O1", "O3"}


@pytest.mark.parametrize(
    ("bad", "field", "problem"),
    [
        (offer("glow\x1efuel"), "offer_id", "holds U+001E, a control character"),
        (offer("bad-category", category="Be\x1fauty"), "category", "holds U+001F"),
        (offer("bad-title", title="Spa\x1fday"), "title", "holds U+001F"),
        (offer("bad-reward", reward="10%\u2029back"), "reward", "holds U+2029"),
        (offer("bad-name", partner_name=""), "partner_name", "is empty or not text"),
        (offer("x" * 65), "offer_id", "is longer than 64 characters"),
        (offer("bad-item", partner_id="P|1"), "partner_id", "contains '|'"),
        (offer("bad-region", regions=frozenset({"no\x00rth"})), "regions", "holds U+0000"),
        (offer("bad-tier", min_tier="diamond"), "min_tier", "'diamond' is not one of"),
        (offer("bad-scope", scope="galactic"), "scope", "'galactic' is not one of"),
        (offer("backwards", valid_to=TODAY - timedelta(days=6)), "valid_to", "is before"),
        (offer("bad-budget", budget=-1), "budget", "-1 is below 0"),
        (offer("fractional-budget", budget=1.5), "budget", "1.5 is not a whole number"),
        (offer("good"), "offer_id", "is the id of an earlier offer"),
    ],
)
def test_offers_that_cannot_be_served_are_left_out_and_named(bad, field, problem, caplog):
    catalog = build_catalog([offer("good"), bad, offer("other")], {}, bundle())

    assert [served.offer_id for served in catalog.offers] == ["good", "other"]
    assert [candidate.offer_id for candidate in catalog.candidates] == ["good", "other"]
    (excluded,) = catalog.excluded
    assert excluded.startswith(f"offer {bad.offer_id!r}, field {field}: ")
    assert problem in excluded
    assert eligible_ids(catalog, "north", "base") == {"good", "other"}
    assert "1 offers left out of the catalog" in caplog.text


def test_store_records_are_built_with_the_catalog_not_per_request():
    offers = [offer("a"), offer("b", budget=3), offer("c", "P2", scope="local")]
    catalog = build_catalog(offers, {}, bundle())

    built = [vars(candidate).get("record") for candidate in catalog.candidates]

    assert built == [
        "a\x1fP1\x1fBeauty\x1f\x1f",
        "b\x1fP1\x1fBeauty\x1f3\x1f",
        "c\x1fP2\x1fBeauty\x1f\x1f1",
    ]
    assert [candidate.local for candidate in catalog.candidates] == [False, False, True]


def test_a_new_model_keeps_the_names_of_offers_left_out():
    catalog = build_catalog([offer("good"), offer("bad\x1f")], {}, bundle())

    swapped = with_offers(catalog, catalog.offers, bundle(), catalog.excluded)

    assert [served.offer_id for served in swapped.offers] == ["good"]
    assert swapped.excluded == catalog.excluded
