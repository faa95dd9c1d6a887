"""Channels over HTTP: push, SMS and e-mail accepted, list sizes per channel, quiet hours, a
decision re-shown on another channel counted once, channel opt-outs, exclusive offers."""

from fastapi.testclient import TestClient

from perkrank.config import CapRule, CapsConfig, ServeConfig
from perkrank.serving.api.app import create_app
from perkrank.serving.bootstrap import Runtime, build_context
from perkrank.serving.domain.catalog import Member, Offer, build_catalog
from perkrank.serving.state.memory import MemoryStateStore
from tests.serving.conftest import (
    SMALL_ADMIN_KEY,
    SMALL_APP_KEY,
    SMALL_TODAY,
    small_app,
    small_bundle,
)

APP = {"X-API-Key": SMALL_APP_KEY}
ALL_DAY = {"start": "05:00", "end": "05:00"}
CHANNELS = {"push": {"max_offers": 1}, "sms": {"max_offers": 1}, "email": {"max_offers": 6}}
ONCE_A_DAY = CapRule(name="once_a_day", scope="member_offer", limit=1, window="day")


def client_for(channels=CHANNELS, rules=(), store=None) -> TestClient:
    store = store or MemoryStateStore()
    return TestClient(small_app(store, rules, mechanics={"channels": channels}))


def get(client, channel, **query):
    parameters = {"channel": channel, **query}
    response = client.get("/v1/members/alice/offers", params=parameters, headers=APP)
    assert response.status_code == 200, response.text
    return response.json()


def ids(body):
    return [served["offer_id"] for served in body["offers"]]


def test_push_sms_and_email_are_channels_with_their_own_list_sizes():
    client = client_for()
    assert ids(get(client, "app")) == ["glow-beauty", "fresh-grocery"]
    assert ids(get(client, "push", limit=10)) == ["glow-beauty"]
    assert ids(get(client, "sms")) == ["glow-beauty"]
    assert ids(get(client, "email")) == ["glow-beauty", "fresh-grocery"]


def test_a_request_in_quiet_hours_gets_an_empty_list_with_the_reason_and_counts_nothing():
    client = client_for({"push": {"quiet_hours": ALL_DAY}}, rules=(ONCE_A_DAY,))
    quiet = get(client, "push")
    assert quiet["offers"] == [] and quiet["empty_reason"] == "quiet_hours"
    body = get(client, "app")  # nothing was counted by the quiet request
    assert ids(body) == ["glow-beauty", "fresh-grocery"] and body["empty_reason"] is None


def test_a_decision_re_shown_on_another_channel_is_counted_once():
    client = client_for(rules=(ONCE_A_DAY,))
    first = get(client, "app")
    assert ids(first) == ["glow-beauty", "fresh-grocery"]
    again = get(client, "email", decision_id=first["decision_id"])
    assert again["decision_id"] == first["decision_id"]
    assert ids(again) == ["glow-beauty", "fresh-grocery"]
    assert ids(get(client, "web")) == []  # a new decision: both were served once today
    admin = {"X-API-Key": SMALL_ADMIN_KEY}
    logged = client.get("/v1/admin/decisions", headers=admin).json()["decisions"]
    assert [item["channel"] for item in logged] == ["app", "web"]  # the re-show: not again


def test_a_decision_id_must_be_32_hex_digits():
    response = client_for().get(
        "/v1/members/alice/offers", params={"decision_id": "not-hex"}, headers=APP
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == "decision_id"


def test_a_member_may_opt_out_of_push_only():
    client = client_for()
    response = client.patch(
        "/v1/members/alice/preferences", json={"channels": {"add": ["push", "sms"]}}, headers=APP
    )
    assert response.status_code == 200, response.text
    assert sorted(response.json()["opted_out_channels"]) == ["push", "sms"]
    assert ids(get(client, "push")) == [] and ids(get(client, "sms")) == []
    assert ids(get(client, "email")) == ["glow-beauty", "fresh-grocery"]


def test_an_exclusive_offer_is_marked_and_shown_to_its_tier_only():
    bundle = small_bundle()
    lounge = Offer(
        "gold-lounge", "P1", "Glow", category="Beauty", title="Lounge", min_tier="base",
        scope="federal", reward="free entry", valid_from=SMALL_TODAY, valid_to=SMALL_TODAY,
        exclusive_tier="gold",
    )  # fmt: skip
    members = {"alice": Member("north", "base"), "goldie": Member("north", "gold")}
    settings = ServeConfig(catalog_date=SMALL_TODAY, app_api_keys=f"t:{SMALL_APP_KEY}")
    context = build_context(
        bundle=bundle,
        model_version="small-1",
        catalog=build_catalog([lounge], members, bundle),
        store=MemoryStateStore(),
        caps=CapsConfig(),
        settings=settings,
    )
    client = TestClient(create_app(settings, Runtime(context, None)))
    gold = client.get("/v1/members/goldie/offers", headers=APP).json()["offers"]
    assert [(o["offer_id"], o["exclusive"], o["reason"]) for o in gold] == [
        ("gold-lounge", True, "exclusive for Gold members")
    ]
    base = client.get("/v1/members/alice/offers", params={"tier": "vip"}, headers=APP).json()
    assert base["offers"] == []
