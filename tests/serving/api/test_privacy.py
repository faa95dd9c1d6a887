"""Members' privacy end to end on a real Redis: self-service preference changes with consent
records, and forgetting a member through the CLI leaves no key, value or stream entry naming
them and no row in the exports."""

import csv
import json
from datetime import UTC, datetime

import pytest
import redis
from fastapi.testclient import TestClient

from perkrank.cli import main
from perkrank.config import CapRule
from perkrank.member_hash import member_hash
from perkrank.privacy_config import ServingPrivacy
from perkrank.serving.state.redis_store import RedisStateStore

APP = {"X-API-Key": "app-key-for-tests-0001"}
ADMIN = {"X-API-Key": "admin-key-for-tests-0001"}
SERVED = CapRule(name="week", scope="member_offer", limit=9, window="week", counts="served")


@pytest.fixture
def redis_store(redis_url, redis_key_prefix):
    store = RedisStateStore(redis_url, redis_key_prefix, 2000)
    yield store
    store._client.close()


def offers(client, member_id="alice") -> list[str]:
    response = client.get(f"/v1/members/{member_id}/offers", headers=APP)
    assert response.status_code == 200, response.text
    return [offer["offer_id"] for offer in response.json()["offers"]]


def test_the_app_key_patches_preferences_and_the_next_request_obeys(redis_store, make_small_app):
    client = TestClient(make_small_app(redis_store))
    assert offers(client) == ["glow-beauty", "fresh-grocery"]
    patch = "/v1/members/alice/preferences"

    first = client.patch(
        patch, json={"categories": {"add": ["Beauty"]}}, headers=APP | {"X-Consent-Source": "app"}
    )
    assert first.status_code == 200, first.text
    assert offers(client) == ["fresh-grocery"]
    second = client.patch(patch, json={"partners": {"add": ["P2"]}}, headers=APP)
    assert second.json()["opted_out_categories"] == ["Beauty"]  # kept: only P2 was added
    assert offers(client) == []
    third = client.patch(patch, json={"categories": {"remove": ["Beauty"]}}, headers=APP)
    assert third.json()["opted_out_partners"] == ["P2"]
    assert offers(client) == ["glow-beauty"]

    history = client.get(f"{patch}/history", headers=ADMIN).json()
    assert [entry["changed"] for entry in history] == [
        ["opted_out_categories"],
        ["opted_out_partners"],
        ["opted_out_categories"],
    ]
    assert [entry["source"] for entry in history] == ["api", "api", "app"]
    assert {entry["actor"] for entry in history} == {"tests"}
    assert history[2]["old"]["opted_out_categories"] == []
    assert history[2]["new"]["opted_out_categories"] == ["Beauty"]


@pytest.mark.parametrize(
    ("method", "body", "named"),
    [
        ("patch", {"categories": {"add": ["Casino", "Beauty"]}}, "Casino"),
        ("patch", {"partners": {"add": ["P9"]}}, "P9"),
        ("patch", {"channels": {"add": ["fax"]}}, "fax"),
        ("put", {"opted_out_categories": ["Casino"]}, "Casino"),
        ("put", {"opted_out_partners": ["P9"]}, "P9"),
        ("patch", {"categories": {"add": ["Beauty"], "remove": ["Beauty"]}}, "Beauty"),
        ("patch", {"personalization": "no"}, "personalization"),
    ],
)
def test_unknown_values_are_refused_naming_them(redis_store, make_small_app, method, body, named):
    client = TestClient(make_small_app(redis_store))

    response = client.request(method, "/v1/members/alice/preferences", json=body, headers=APP)

    assert response.status_code == 422
    assert named in response.text
    history = client.get("/v1/members/alice/preferences/history", headers=ADMIN).json()
    assert history == []


def test_forget_leaves_nothing_naming_the_member(
    redis_store, redis_url, redis_key_prefix, make_small_app, live_server, tmp_path
):
    app = make_small_app(redis_store, rules=(SERVED,))
    client = TestClient(app)
    for member in ("alice", "bob"):
        client.patch(
            f"/v1/members/{member}/preferences",
            json={"personalization": False, "channels": {"add": ["web"]}},
            headers=APP,
        )
        offers(client, member)
        events = [
            {
                "type": kind,
                "member_id": member,
                "offer_id": "fresh-grocery",
                "channel": "app",
                "ts": datetime.now(UTC).isoformat(),
                "event_id": f"{kind}-{member}",
            }
            for kind in ("impression", "click", "redemption")
        ]
        assert client.post("/v1/events", json={"events": events}, headers=APP).status_code == 200

    ids = tmp_path / "forget.txt"
    ids.write_text("alice\n\nalice\n")
    with live_server(app) as base_url:
        service = ["--url", base_url, "--api-key", ADMIN["X-API-Key"]]
        assert main(["members", "forget", str(ids), *service]) == 0
        exports = {}
        for kind in ("events", "decisions", "consents"):
            exports[kind] = tmp_path / f"{kind}.csv"
            assert main([kind, "export", "--out", str(exports[kind]), *service]) == 0
        exclusions = tmp_path / "exclusions.csv"
        assert main(["members", "exclusions", "--out", str(exclusions), *service]) == 0

    everything = stored_text(
        redis.Redis.from_url(redis_url, decode_responses=True), redis_key_prefix
    )
    assert "bob" in everything  # the check can see a member at all
    assert "alice" not in everything
    for path in exports.values():
        text = path.read_text()
        assert "bob" in text
        assert "alice" not in text
    with exclusions.open() as file:
        rows = {(row["member_hash"], row["reason"]) for row in csv.DictReader(file)}
    assert rows == {(member_hash("alice"), "forgotten"), (member_hash("bob"), "no_personalization")}
    audit = client.get("/v1/admin/forgotten", headers=ADMIN).json()
    assert [entry["already_suppressed"] for entry in audit] == [True, False]
    assert audit[1]["removed"]["events"] == 3
    assert audit[1]["removed"]["decisions"] == 1
    assert {entry["actor"] for entry in audit} == {"ops"}


def stored_text(client: redis.Redis, prefix: str) -> str:
    """Every key name of `prefix` and every value it holds, as one text."""
    parts = []
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        read = {
            "string": client.get,
            "hash": client.hgetall,
            "list": lambda key: client.lrange(key, 0, -1),
            "set": lambda key: sorted(client.smembers(key)),
            "zset": lambda key: client.zrange(key, 0, -1, withscores=True),
            "stream": client.xrange,
        }[client.type(key)]
        value = read(key)
        parts.append(f"{key} {json.dumps(value, default=str)}")
    return "\n".join(parts)


def reasons(client, member_id="alice", **params) -> dict[str, str]:
    response = client.get(f"/v1/members/{member_id}/offers", params=params, headers=APP)
    assert response.status_code == 200, response.text
    return {offer["offer_id"]: offer["reason"] for offer in response.json()["offers"]}


def test_a_sensitive_category_is_personalized_only_after_consent(redis_store, make_small_app):
    sensitive = ServingPrivacy(sensitive_categories=("beauty",))
    client = TestClient(make_small_app(redis_store, privacy=sensitive))
    patch = "/v1/members/alice/preferences"
    assert offers(client) == ["fresh-grocery"]

    refused = client.patch(patch, json={"consents": {"add": ["Grocery", "Casino"]}}, headers=APP)
    consented = client.patch(patch, json={"consents": {"add": ["Beauty"]}}, headers=APP)

    assert refused.status_code == 422
    assert "Casino" in refused.text and "Grocery" in refused.text
    assert consented.status_code == 200, consented.text
    assert consented.json()["consents"] == ["Beauty"]
    assert offers(client) == ["glow-beauty", "fresh-grocery"]
    assert all("Beauty" not in reason for reason in reasons(client).values())
    history = client.get(f"{patch}/history", headers=ADMIN).json()
    assert [entry["changed"] for entry in history] == [["consents"]]
    assert history[0]["new"]["consents"] == ["Beauty"]
    withdrawn = client.patch(patch, json={"consents": {"remove": ["Beauty"]}}, headers=APP)
    assert withdrawn.json()["consents"] == []
    assert offers(client) == ["fresh-grocery"]


def test_reasons_follow_the_requested_language(redis_store, make_small_app):
    client = TestClient(make_small_app(redis_store))

    assert reasons(client)["glow-beauty"] == "picked for you"
    assert reasons(client, lang="ru")["glow-beauty"] == "подобрано для вас"
    russian = client.get(
        "/v1/members/alice/offers", headers=APP | {"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.5"}
    )
    assert russian.json()["offers"][0]["reason"] == "подобрано для вас"
    assert reasons(client, lang="de")["glow-beauty"] == "picked for you"
    assert client.get("/v1/members/alice/offers?lang=r1", headers=APP).status_code == 422
