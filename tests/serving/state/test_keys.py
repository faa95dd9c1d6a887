"""The Redis key layout, checked against golden strings, and its Redis Cluster hash tags."""

import pytest

from perkrank.serving.state.keys import (
    cap_counter,
    member_cap_key,
    offer_cap_key,
    preferences_key,
    redeemed_key,
)


def hash_tag(key: str) -> str:
    """What Redis Cluster hashes: the text between the first `{` and the next `}`."""
    start = key.index("{")
    return key[start + 1 : key.index("}", start)]


def test_keys_match_the_documented_layout():
    assert preferences_key("perkrank", "m-17") == "perkrank:{m:m-17}:prefs"
    assert (
        member_cap_key("perkrank", "m-17", "offer_per_day", "2024-05-17")
        == "perkrank:{m:m-17}:cap:offer_per_day:2024-05-17"
    )
    assert (
        offer_cap_key("perkrank", "o-3", "offer_budget", "total")
        == "perkrank:{o:o-3}:cap:offer_budget:total"
    )
    assert redeemed_key("perkrank", "o-3") == "perkrank:{o:o-3}:redeemed"


@pytest.mark.parametrize(
    ("scope", "counter"),
    [
        ("member_offer", ("p:{m:m-1}:cap:rule:2024-W20", "o-2")),
        ("member_partner", ("p:{m:m-1}:cap:rule:2024-W20", "partner-9")),
        ("member_channel", ("p:{m:m-1}:cap:rule:2024-W20", "app")),
        ("offer_total", ("p:{o:o-2}:cap:rule:2024-W20", None)),
    ],
)
def test_each_scope_counts_in_its_own_place(scope, counter):
    where = cap_counter(
        "p",
        scope,
        "rule",
        "2024-W20",
        member_id="m-1",
        channel="app",
        offer_id="o-2",
        partner_id="partner-9",
    )
    assert where == counter


def test_braces_and_percent_signs_in_ids_are_percent_encoded():
    assert preferences_key("p", "a{b}c%d") == "p:{m:a%7Bb%7Dc%25d}:prefs"
    assert redeemed_key("p", "}") == "p:{o:%7D}:redeemed"


def test_ids_that_look_encoded_do_not_collide_with_encoded_ids():
    assert preferences_key("p", "a{") != preferences_key("p", "a%7B")


@pytest.mark.parametrize("member_id", ["m-1", "weird}member", "{m:x}", "50%"])
def test_all_keys_of_one_member_share_a_hash_tag(member_id):
    keys = [
        preferences_key("p", member_id),
        member_cap_key("p", member_id, "offer_per_day", "2024-05-17"),
        member_cap_key("p", member_id, "partner_per_week", "2024-W20"),
    ]
    assert {hash_tag(key) for key in keys} == {hash_tag(preferences_key("p", member_id))}
    assert hash_tag(keys[0]) != hash_tag(preferences_key("p", member_id + "x"))


def test_all_keys_of_one_offer_share_a_hash_tag():
    keys = [offer_cap_key("p", "o}1", "budget", "total"), redeemed_key("p", "o}1")]
    assert [hash_tag(key) for key in keys] == ["o:o%7D1", "o:o%7D1"]
