"""The HTTP API end to end: eligibility, cold start, opt-outs, caps, auth, validation, health."""

import asyncio
import socket
from collections import Counter
from datetime import date, timedelta

import httpx
import numpy as np
import pytest
import scipy.sparse as sp
import yaml
from fastapi.testclient import TestClient

from perkrank.config import CONFIG_DIR, CapRule, CapsConfig, ConfigError, ServeConfig
from perkrank.models.bundle import Bundle
from perkrank.models.factors import Factors
from perkrank.serving.api.admin import OFFERS_FILE_SUFFIXES
from perkrank.serving.api.app import create_app
from perkrank.serving.api.schemas import OffersResponse
from perkrank.serving.bootstrap import Runtime, build_context
from perkrank.serving.domain.catalog import Member, Offer, build_catalog
from perkrank.serving.server import run
from perkrank.serving.state.memory import MemoryStateStore
from perkrank.serving.state.redis_store import RedisStateStore

TODAY = date(2026, 6, 15)
APP_KEY = "app-key-for-tests-0001"
ADMIN_KEY = "admin-key-for-tests-0001"
APP = {"X-API-Key": APP_KEY}
ADMIN = {"X-API-Key": ADMIN_KEY}
MAX_LIMIT = 20
ITEMS = ["P1|Beauty", "P2|Grocery", "P2|Snacks", "P3|Bakery", "P4|Dining"]
POPULARITY = {"P2|Grocery": 0.5, "P3|Bakery": 0.4, "P4|Dining": 0.35, "P2|Snacks": 0.3}
"""Fallback scores; items not listed (Beauty, and Glow's new Fuel item) are least popular."""


def make_bundle() -> Bundle:
    """alice loves Beauty and bought it often; bob loves Grocery; cold north ~ Beauty, south ~
    Grocery. Glow's Fuel item is new: the ranker knows only its partner and category."""
    ranker = Factors(
        member_ids=["alice", "bob"],
        member_vectors=[[1.0, 0.0], [0.0, 1.0]],
        item_ids=ITEMS,
        item_vectors=[[1.0, 0.0], [0.0, 1.0], [0.2, 0.6], [0.3, 0.3], [0.3, 0.3]],
        item_biases=np.zeros(len(ITEMS)),
        member_feature_ids=["region=north", "region=south"],
        member_feature_vectors=[[0.5, 0.0], [0.0, 0.5]],
        item_feature_ids=["partner=P1", "category=Fuel", "scope=federal"],
        item_feature_vectors=[[0.8, 0.0], [0.1, 0.1], [0.0, 0.0]],
        repeat=sp.csr_matrix(np.array([[2.0, 0, 0, 0, 0], [0, 0, 0, 0, 0]])),
        repeat_weight=0.5,
    )
    fallback = Factors(
        member_ids=[],
        member_vectors=np.zeros((0, 1)),
        item_ids=ITEMS,
        item_vectors=[[POPULARITY.get(item, 0.1)] for item in ITEMS],
        item_biases=np.zeros(len(ITEMS)),
        member_feature_ids=["tier=base", "tier=silver", "tier=gold", "tier=vip"],
        member_feature_vectors=np.ones((4, 1)),
    )
    return Bundle(ranker=ranker, fallback=fallback)


def offer(offer_id, partner_id, partner_name, category, **fields) -> Offer:
    values = {
        "scope": "federal",
        "title": f"{category} deal",
        "reward": "10% back",
        "min_tier": "base",
        "valid_from": TODAY - timedelta(days=10),
        "valid_to": TODAY + timedelta(days=10),
    }
    return Offer(offer_id, partner_id, partner_name, category=category, **values | fields)


OFFERS = [
    offer("glow-beauty", "P1", "Glow", "Beauty"),
    offer("glow-fuel", "P1", "Glow", "Fuel"),
    offer("fresh-grocery", "P2", "FreshMart", "Grocery"),
    offer("fresh-snacks", "P2", "FreshMart", "Snacks"),
    offer(
        "north-bakery", "P3", "North Bakery", "Bakery", scope="local", regions=frozenset({"north"})
    ),
    offer(
        "south-dining", "P4", "South Cafe", "Dining", scope="local", regions=frozenset({"south"})
    ),
    offer("glow-expired", "P1", "Glow", "Beauty", valid_to=TODAY - timedelta(days=1)),
    offer("glow-future", "P1", "Glow", "Beauty", valid_from=TODAY + timedelta(days=1)),
    offer("fresh-vip", "P2", "FreshMart", "Grocery", min_tier="vip"),
]
MEMBERS = {"alice": Member("north", "base"), "bob": Member("south", "base")}
EVERYWHERE_FOR_BASE = {"glow-beauty", "glow-fuel", "fresh-grocery", "fresh-snacks"}


def make_app(store, rules=(), **overrides):
    values = {
        "catalog_date": TODAY,
        "max_limit": MAX_LIMIT,
        "app_api_keys": f"tests:{APP_KEY}",
        "admin_api_keys": f"ops:{ADMIN_KEY}",
    }
    bundle = make_bundle()
    settings = ServeConfig(**values | overrides)
    context = build_context(
        bundle=bundle,
        model_version="test-7",
        catalog=build_catalog(OFFERS, MEMBERS, bundle),
        store=store,
        caps=CapsConfig(rules=rules),
        settings=settings,
    )
    return create_app(settings, Runtime(context))


@pytest.fixture
def client() -> TestClient:
    return TestClient(make_app(MemoryStateStore()))


def get_offers(client, member_id, **params):
    return client.get(f"/v1/members/{member_id}/offers", params=params, headers=APP)


def served_ids(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["offer_id"] for item in response.json()["offers"]]


def test_offers_response_has_the_documented_shape(client):
    response = get_offers(client, "alice", limit=3)

    body = OffersResponse.model_validate(response.json())
    assert (body.member_id, body.channel, body.model_version) == ("alice", "app", "test-7")
    assert body.personalized is True
    assert [offer.rank for offer in body.offers] == [1, 2, 3]
    assert body.offers[0].offer_id == "glow-beauty"
    assert body.offers[0].reason == "you often buy Beauty at Glow"
    assert get_offers(client, "alice").json()["request_id"] != body.request_id


def test_only_eligible_offers_are_served(client):
    served = set(served_ids(get_offers(client, "alice", limit=MAX_LIMIT)))

    assert served == EVERYWHERE_FOR_BASE | {"north-bakery"}


def test_region_parameter_serves_a_traveller_the_offers_of_where_they_are(client):
    served = set(served_ids(get_offers(client, "alice", limit=MAX_LIMIT, region="south")))

    assert served == EVERYWHERE_FOR_BASE | {"south-dining"}


def test_tier_parameter_opens_offers_of_that_tier(client):
    as_base = served_ids(get_offers(client, "bob", limit=MAX_LIMIT))
    as_vip = get_offers(client, "bob", limit=MAX_LIMIT, tier="vip").json()["offers"]

    assert "fresh-vip" not in as_base
    assert {"offer_id": "fresh-vip", "reason": "VIP offer"}.items() <= as_vip[1].items()


def test_cold_members_get_the_local_offers_of_their_region(client):
    north = served_ids(get_offers(client, "new-member-1", limit=MAX_LIMIT, region="north"))
    south = served_ids(get_offers(client, "new-member-2", limit=MAX_LIMIT, region="south"))

    assert set(north) == EVERYWHERE_FOR_BASE | {"north-bakery"}
    assert set(south) == EVERYWHERE_FOR_BASE | {"south-dining"}
    assert north[0] == "glow-beauty"
    assert south[0] == "fresh-grocery"


def test_unknown_member_without_region_gets_offers_valid_everywhere(client):
    response = get_offers(client, "never-seen-42", limit=MAX_LIMIT)

    assert set(served_ids(response)) == EVERYWHERE_FOR_BASE
    assert response.json()["personalized"] is True


def test_new_offer_absent_from_training_is_served_to_members_who_match_it(client):
    assert served_ids(get_offers(client, "alice", limit=2)) == ["glow-beauty", "glow-fuel"]
    assert "glow-fuel" not in served_ids(get_offers(client, "bob", limit=2))


@pytest.mark.parametrize(
    ("preferences", "left_out"),
    [
        ({"opted_out_categories": ["Beauty"]}, {"glow-beauty"}),
        ({"opted_out_partners": ["P1"]}, {"glow-beauty", "glow-fuel"}),
        ({"opted_out_channels": ["app"]}, EVERYWHERE_FOR_BASE | {"north-bakery"}),
        ({"opt_out_all": True}, EVERYWHERE_FOR_BASE | {"north-bakery"}),
    ],
)
def test_each_opt_out_applies_to_the_very_next_request(client, preferences, left_out):
    before = set(served_ids(get_offers(client, "alice", limit=MAX_LIMIT)))
    put = client.put("/v1/members/alice/preferences", json=preferences, headers=ADMIN)
    after = set(served_ids(get_offers(client, "alice", limit=MAX_LIMIT)))

    assert put.status_code == 200
    assert left_out <= before
    assert after == before - left_out


def test_channel_opt_out_leaves_other_channels_alone(client):
    client.put("/v1/members/alice/preferences", json={"opted_out_channels": ["app"]}, headers=ADMIN)

    assert served_ids(get_offers(client, "alice", channel="app")) == []
    assert served_ids(get_offers(client, "alice", channel="web")) != []


def test_preferences_read_back_as_written(client):
    default = client.get("/v1/members/alice/preferences", headers=APP)
    written = {
        "opt_out_all": False,
        "opted_out_channels": ["web"],
        "opted_out_categories": ["Beauty", "Fuel"],
        "opted_out_partners": ["P2"],
        "personalization": False,
        "consents": [],
        "purchase_reasons": False,
    }
    client.put("/v1/members/alice/preferences", json=written, headers=ADMIN)

    assert default.json() == {
        "opt_out_all": False,
        "opted_out_channels": [],
        "opted_out_categories": [],
        "opted_out_partners": [],
        "personalization": True,
        "consents": [],
        "purchase_reasons": True,
    }
    assert client.get("/v1/members/alice/preferences", headers=APP).json() == written


def test_personalization_off_serves_the_fallback_order(client):
    client.put("/v1/members/bob/preferences", json={"personalization": False}, headers=ADMIN)

    response = get_offers(client, "bob", limit=MAX_LIMIT)

    assert response.json()["personalized"] is False
    served = served_ids(response)
    scores = [item["score"] for item in response.json()["offers"]]
    assert served[:3] == ["fresh-grocery", "south-dining", "fresh-snacks"]
    assert scores == sorted(scores, reverse=True)
    assert {item["reason"] for item in response.json()["offers"]} == {"popular in your region"}


def test_offer_capped_at_three_is_served_three_times_then_no_more():
    rules = (CapRule(name="member_offer_week", scope="member_offer", limit=3, window="week"),)
    client = TestClient(make_app(MemoryStateStore(), rules))

    lists = [served_ids(get_offers(client, "alice", limit=1)) for _ in range(5)]

    assert lists[:3] == [["glow-beauty"]] * 3
    assert "glow-beauty" not in lists[3] + lists[4]
    assert lists[3] == ["glow-fuel"]


def test_no_more_offers_per_partner_than_the_limit():
    client = TestClient(make_app(MemoryStateStore(), max_offers_per_partner=1))

    offers = get_offers(client, "alice", limit=MAX_LIMIT).json()["offers"]

    partners = [item["partner_id"] for item in offers]
    assert sorted(partners) == sorted(set(partners)) == ["P1", "P2", "P3"]


async def fetch_all(base_url, paths, connections):
    limits = httpx.Limits(max_connections=connections)
    async with httpx.AsyncClient(base_url=base_url, headers=APP, limits=limits) as http:
        return await asyncio.gather(*(http.get(path) for path in paths))


def test_concurrent_requests_serve_an_offer_capped_at_three_exactly_three_times(store, live_server):
    rules = (CapRule(name="offer_total", scope="offer_total", limit=3, window="total"),)
    paths = [f"/v1/members/member-{n}/offers?limit={MAX_LIMIT}" for n in range(200)]

    with live_server(make_app(store, rules)) as base_url:
        responses = asyncio.run(fetch_all(base_url, paths, connections=20))

    assert {response.status_code for response in responses} == {200}
    served = Counter(
        item["offer_id"] for response in responses for item in response.json()["offers"]
    )
    assert served == dict.fromkeys(EVERYWHERE_FOR_BASE, 3)


@pytest.mark.parametrize(
    ("method", "path", "headers", "status", "detail"),
    [
        ("get", "/v1/members/alice/offers", {}, 401, "missing API key"),
        ("get", "/v1/members/alice/offers", {"X-API-Key": "wrong-key-wrong-key"}, 401, "unknown"),
        ("get", "/v1/members/alice/preferences", {}, 401, "missing API key"),
        ("get", "/v1/members/alice/preferences/history", APP, 403, "admin"),
        ("delete", "/v1/admin/members/alice", APP, 403, "admin"),
        ("put", "/v1/members/alice/preferences", {}, 401, "missing API key"),
    ],
)
def test_requests_without_the_right_key_are_refused(client, method, path, headers, status, detail):
    response = client.request(method, path, headers=headers, json={"opt_out_all": True})

    assert response.status_code == status
    assert detail in response.json()["detail"]


def test_admin_key_may_read_and_write(client):
    put = client.put("/v1/members/alice/preferences", json={"opt_out_all": True}, headers=ADMIN)
    read = client.get("/v1/members/alice/offers", headers=ADMIN)

    assert put.status_code == 200
    assert put.json()["opt_out_all"] is True
    assert read.status_code == 200
    assert read.json()["offers"] == []


def test_app_key_changes_preferences_for_its_member(client):
    put = client.put("/v1/members/alice/preferences", json={"opt_out_all": True}, headers=APP)

    assert put.status_code == 200
    assert client.get("/v1/members/alice/preferences", headers=APP).json()["opt_out_all"] is True


@pytest.mark.parametrize(
    ("path", "field", "message"),
    [
        ("/v1/members/alice/offers?limit=0", "limit", "greater than or equal to 1"),
        (f"/v1/members/alice/offers?limit={MAX_LIMIT + 1}", "limit", "less than or equal to"),
        (
            "/v1/members/alice/offers?channel=fax",
            "channel",
            "'store', 'app', 'web', 'push', 'sms' or 'email'",
        ),
        ("/v1/members/alice/offers?tier=diamond", "tier", "'base', 'silver', 'gold' or 'vip'"),
        ("/v1/members/bad%20id!/offers", "member_id", "should match pattern"),
        (f"/v1/members/{'m' * 65}/offers", "member_id", "should match pattern"),
        ("/v1/members/bad%20id!/preferences", "member_id", "should match pattern"),
    ],
)
def test_invalid_requests_are_rejected_naming_the_field(client, path, field, message):
    response = client.get(path, headers=APP)

    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"][-1] == field
    assert message in error["msg"]


def test_preferences_with_unknown_fields_or_channels_are_rejected(client):
    unknown_field = {"opt_out_everything": True}
    unknown_channel = {"opted_out_channels": ["fax"]}

    for body in (unknown_field, unknown_channel):
        response = client.put("/v1/members/alice/preferences", json=body, headers=ADMIN)
        assert response.status_code == 422


def unreachable_store() -> RedisStateStore:
    """A real Redis adapter pointed at a port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return RedisStateStore(f"redis://127.0.0.1:{port}/0", "perkrank-test", timeout_ms=200)


def test_health_and_readiness_with_a_reachable_store(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert ready.json()["model_version"] == "test-7"


def test_readiness_fails_while_the_store_is_down_but_health_holds():
    client = TestClient(make_app(unreachable_store()))

    ready = client.get("/readyz")

    assert ready.status_code == 503
    assert ready.json()["status"] == "unavailable"
    assert ready.json()["detail"] == "state store unreachable"
    assert client.get("/healthz").status_code == 200


def test_offers_answer_503_with_retry_after_while_the_store_is_down():
    client = TestClient(make_app(unreachable_store()))

    response = get_offers(client, "alice")

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.json() == {"detail": "state store unavailable; retry shortly"}


def test_openapi_documents_the_versioned_paths_and_the_api_key():
    schema = TestClient(make_app(MemoryStateStore())).get("/openapi.json").json()

    assert {
        "/v1/members/{member_id}/offers",
        "/v1/members/{member_id}/preferences",
        "/healthz",
        "/readyz",
    } <= set(schema["paths"])
    offers = schema["paths"]["/v1/members/{member_id}/offers"]["get"]
    assert {"200", "401", "422", "503"} <= set(offers["responses"])
    assert "X-API-Key" in str(schema["components"]["securitySchemes"])
    assert schema["components"]["schemas"]["OffersResponse"]["examples"]


def test_openapi_documents_the_caps_body_and_the_offers_file_upload():
    schema = TestClient(make_app(MemoryStateStore())).get("/openapi.json").json()

    caps = schema["paths"]["/v1/caps"]["put"]["requestBody"]
    caps_body = caps["content"]["application/json"]
    assert caps["required"] is True
    assert caps_body["schema"]["properties"]["rules"]["items"] == {
        "$ref": "#/components/schemas/CapRule"
    }
    assert "CapRule" in schema["components"]["schemas"]
    assert CapsConfig.model_validate(caps_body["example"]).rules
    offers = schema["paths"]["/v1/admin/offers"]["put"]
    assert set(offers["requestBody"]["content"]) == set(OFFERS_FILE_SUFFIXES)
    assert {"409", "413", "415", "422"} <= set(offers["responses"])


@pytest.mark.parametrize("content", [b"[]", b'"rules"', b"{not json", b"\xff\xfe"])
def test_a_caps_body_that_is_not_a_json_object_is_refused_and_changes_nothing(client, content):
    headers = ADMIN | {"Content-Type": "application/json"}

    response = client.put("/v1/caps", content=content, headers=headers)

    assert response.status_code == 422
    assert response.json()["detail"] == [
        {
            "loc": ["body"],
            "msg": "the body must be a JSON object with `rules`",
            "message": "the body must be a JSON object with `rules`",
        }
    ]
    assert client.get("/v1/caps", headers=ADMIN).json()["version"] == 1


def test_service_refuses_to_start_without_any_api_key():
    with pytest.raises(ConfigError, match="no API keys configured"):
        make_app(MemoryStateStore(), app_api_keys="", admin_api_keys="")


def test_short_api_key_is_refused_at_startup():
    with pytest.raises(ConfigError, match=r"'tiny'.*at least 16"):
        make_app(MemoryStateStore(), app_api_keys="tiny:short-key")


SHIPPED_KEYS = yaml.safe_load((CONFIG_DIR / "serve.yaml").read_text(encoding="utf-8"))
"""configs/serve.yaml as shipped: its app and admin keys are the published demo keys."""


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::", "", "example.org"])
@pytest.mark.parametrize("which", ["app_api_keys", "admin_api_keys"])
def test_demo_keys_are_refused_on_an_address_that_is_not_loopback(host, which):
    demo_keys = {which: SHIPPED_KEYS[which]}

    with pytest.raises(ConfigError) as refused:
        make_app(MemoryStateStore(), host=host, **demo_keys)

    message = str(refused.value)
    assert f"refusing to serve on {host!r} with the published demo API keys" in message
    assert "PERKRANK_APP_API_KEYS and PERKRANK_ADMIN_API_KEYS" in message
    assert "app_api_keys and admin_api_keys" in message


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_demo_keys_serve_a_loopback_address(host):
    keys = {"app_api_keys": SHIPPED_KEYS["app_api_keys"]}
    client = TestClient(make_app(MemoryStateStore(), host=host, **keys))

    app_key = SHIPPED_KEYS["app_api_keys"].partition(":")[2]
    response = client.get("/v1/members/alice/offers", headers={"X-API-Key": app_key})
    assert response.status_code == 200


def test_own_keys_serve_any_address():
    client = TestClient(make_app(MemoryStateStore(), host="0.0.0.0"))

    assert get_offers(client, "alice").status_code == 200


def test_bare_keys_and_keys_from_the_environment_are_accepted(monkeypatch):
    monkeypatch.setenv("PERKRANK_APP_API_KEYS", f" {APP_KEY}x , another-app-key-000001")
    client = TestClient(make_app(MemoryStateStore()))

    assert get_offers(client, "alice").status_code == 401
    for key in (f"{APP_KEY}x", "another-app-key-000001"):
        response = client.get("/v1/members/alice/offers", headers={"X-API-Key": key})
        assert response.status_code == 200


def test_app_built_from_config_loads_bundle_data_and_caps_at_startup(tmp_path):
    bundle_dir = make_bundle().save(tmp_path / "bundle")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "members.csv").write_text(
        "member_id,region,tier,birth_date,signup_date\nalice,north,base,,2024-01-01\n"
    )
    (data_dir / "purchases.csv").write_text(
        "member_id,ts,partner_id,category,amount,channel\n"
        "alice,2026-05-01 10:00:00,P1,Beauty,12.5,app\n"
    )
    (data_dir / "partners.csv").write_text(
        "partner_id,name,scope,regions,categories\nP1,Glow,federal,,Beauty;Fuel\n"
    )
    (data_dir / "offers.csv").write_text(
        "offer_id,partner_id,category,title,regions,min_tier,valid_from,valid_to,budget,reward\n"
        "glow-beauty,P1,Beauty,Glow deal,,base,2026-06-01,2026-06-30,,10%\n"
        "glow-fuel,P1,Fuel,Fuel deal,,base,2026-06-01,2026-06-30,,5%\n"
    )
    caps_path = tmp_path / "caps.yaml"
    caps_path.write_text(
        "rules:\n  - {name: member_offer_day, scope: member_offer, limit: 1, window: day}\n"
    )
    settings = ServeConfig(
        model_uri=str(bundle_dir),
        caps_path=caps_path,
        catalog_date=TODAY,
        app_api_keys=APP_KEY,
    )

    with TestClient(create_app(settings, data_dir=data_dir)) as client:
        first = get_offers(client, "alice", limit=1)
        second = get_offers(client, "alice", limit=1)

    assert first.json()["model_version"] == "local:bundle"
    assert served_ids(first) == ["glow-beauty"]
    assert served_ids(second) == ["glow-fuel"]


def test_more_than_one_worker_needs_redis(tmp_path):
    settings = ServeConfig(app_api_keys=APP_KEY, redis_url=None)

    with pytest.raises(ConfigError, match="more than one worker needs redis_url"):
        run(settings, tmp_path, workers=2)


def test_app_from_config_refuses_a_bad_caps_file_before_it_starts(tmp_path):
    caps_path = tmp_path / "caps.yaml"
    caps_path.write_text("rules:\n  - {name: no_scope, limit: 1, window: day}\n")
    settings = ServeConfig(caps_path=caps_path, app_api_keys=APP_KEY)

    with pytest.raises(ConfigError, match="scope"):
        create_app(settings, data_dir=tmp_path)


def test_purchase_reasons_off_gives_a_neutral_reason(client):
    assert get_offers(client, "alice", limit=1).json()["offers"][0]["reason"] == (
        "you often buy Beauty at Glow"
    )
    changed = client.patch(
        "/v1/members/alice/preferences", json={"purchase_reasons": False}, headers=APP
    )

    assert changed.json()["purchase_reasons"] is False
    assert get_offers(client, "alice", limit=1).json()["offers"][0]["reason"] == "picked for you"
    russian = get_offers(client, "alice", limit=1, lang="ru").json()["offers"][0]["reason"]
    assert russian == "подобрано для вас"
