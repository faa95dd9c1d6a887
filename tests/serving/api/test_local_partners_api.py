"""The local floor and the per-partner limit, changed live through `PUT /v1/caps`, take effect
on the very next offers request on every state store; both are versioned and audited with the
caps."""

import pytest
from fastapi.testclient import TestClient

from perkrank.config import CONFIG_DIR, CapsConfig, load_config
from perkrank.serving.console.caps_pages import parse_rules, rules_text
from perkrank.serving.state.live_records import setting_value
from perkrank.serving.state.memory import MemoryStateStore
from tests.serving.api.test_app import ADMIN, get_offers, make_app, served_ids

LOCAL = "north-bakery"
"""The one local partner's offer alice (north) may get."""
RULE = {"name": "per_offer_day", "scope": "member_offer", "limit": 1, "window": "day"}


@pytest.fixture
def client(store) -> TestClient:
    """The service on each state store in turn: memory, one Redis server, Redis Cluster."""
    return TestClient(make_app(store))


def put_caps(client: TestClient, body: dict) -> dict:
    response = client.put("/v1/caps", json=body, headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_local_floor_set_live_puts_a_local_offer_in_the_next_list(client):
    before = served_ids(get_offers(client, "alice", limit=2))
    assert LOCAL not in before  # the order alone does not reach it

    stored = put_caps(client, {"rules": [], "local_floor": {"default": 0.5}})
    after = served_ids(get_offers(client, "alice", limit=2))

    assert stored["local_floor"] == {"default": 0.5, "regions": {}}
    assert LOCAL in after and len(after) == 2
    assert after[0] == before[0]  # the best federal offer keeps its place


def test_a_floor_for_another_region_leaves_this_one_alone(client):
    put_caps(client, {"local_floor": {"regions": {"south": 1.0}}})

    assert LOCAL not in served_ids(get_offers(client, "alice", limit=2))
    assert "south-dining" in served_ids(get_offers(client, "bob", limit=2))


def test_a_capped_local_offer_leaves_the_floor_unmet_and_the_list_full(client):
    put_caps(client, {"rules": [RULE], "local_floor": {"default": 0.5}})
    first = served_ids(get_offers(client, "alice", limit=2))

    second = served_ids(get_offers(client, "alice", limit=2))

    assert LOCAL in first
    assert LOCAL not in second and len(second) == 2  # capped: federal offers fill the list


def test_the_per_partner_limit_set_live_applies_to_the_next_list(client):
    def partners() -> list[str]:
        offers = get_offers(client, "alice", limit=10).json()["offers"]
        return [offer["partner_id"] for offer in offers]

    assert max(partners().count(p) for p in set(partners())) == 2  # serve.yaml's default

    put_caps(client, {"rules": [], "max_per_partner": 1})

    assert sorted(partners()) == ["P1", "P2", "P3"]
    assert client.get("/v1/caps", headers=ADMIN).json()["max_per_partner"] == 1


def test_list_rules_are_audited_with_the_caps(client):
    put_caps(client, {"rules": [RULE], "local_floor": {"default": 0.2}, "max_per_partner": 3})

    newest, first = client.get("/v1/caps/history", headers=ADMIN).json()

    assert first["new"] == {"rules": []}  # the initial rules, stored as they always were
    assert newest["old"] == {"rules": []}
    assert newest["new"]["local_floor"] == {"default": 0.2, "regions": {}}
    assert newest["new"]["max_per_partner"] == 3


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"local_floor": {"default": 1.5}}, ["local_floor", "default"]),
        ({"local_floor": {"regions": {"north": -0.1}}}, ["local_floor", "regions", "north"]),
        ({"local_floor": {"share": 0.2}}, ["local_floor", "share"]),
        ({"max_per_partner": 0}, ["max_per_partner"]),
    ],
)
def test_bad_list_rules_are_refused_naming_the_field(client, body, loc):
    response = client.put("/v1/caps", json={"rules": []} | body, headers=ADMIN)

    assert response.status_code == 422
    assert [problem["loc"] for problem in response.json()["detail"]] == [loc]
    assert client.get("/v1/caps", headers=ADMIN).json()["version"] == 1


def test_the_shipped_caps_file_loads_and_is_stored_unchanged():
    caps = load_config(CapsConfig, CONFIG_DIR / "caps.yaml")

    assert (caps.local_floor, caps.max_per_partner) == (None, None)
    assert list(setting_value(caps)) == ["rules"]
    assert CapsConfig.model_validate(setting_value(caps)) == caps


def test_the_console_form_keeps_the_list_rules():
    caps = CapsConfig.model_validate(
        {"rules": [RULE], "local_floor": {"regions": {"north": 0.4}}, "max_per_partner": 1}
    )

    assert parse_rules(rules_text(caps)) == (caps, [])


def test_explaining_follows_the_floor_in_force(client):
    put_caps(client, {"local_floor": {"default": 0.5}})

    response = client.get("/v1/admin/members/alice/explain?limit=2", headers=ADMIN)
    served = served_ids(get_offers(client, "alice", limit=2))

    assert response.status_code == 200, response.text
    assert [verdict["offer_id"] for verdict in response.json()["shown"]] == served
    assert LOCAL in served


def test_a_local_offer_beyond_the_shortlist_reaches_the_store_for_the_floor():
    """With a pool of exactly `limit`, the local offer is not among the best two: only the
    orders' local tail brings it to the store."""
    tight = TestClient(
        make_app(MemoryStateStore(), candidate_pool_multiplier=1, candidate_pool_margin=0)
    )
    assert LOCAL not in served_ids(get_offers(tight, "alice", limit=2))

    put_caps(tight, {"local_floor": {"default": 0.5}})

    assert LOCAL in served_ids(get_offers(tight, "alice", limit=2))
