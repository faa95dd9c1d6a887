"""GET /v1/admin/members/{member_id}/explain against each state store (memory and a real
Redis): the member's offers with reasons, and why every other offer is hidden — read-only."""

from fastapi.testclient import TestClient

from perkrank.config import CapRule
from perkrank.serving.domain.selection import Preferences

APP = {"X-API-Key": "app-key-for-tests-0001"}
ADMIN = {"X-API-Key": "admin-key-for-tests-0001"}
ONCE_EVER = CapRule(name="once_ever", scope="member_offer", limit=1, window="total")


def explain(client: TestClient, member_id: str = "alice") -> dict:
    response = client.get(f"/v1/admin/members/{member_id}/explain", headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()


def verdicts(body: dict) -> dict[str, dict]:
    return {verdict["offer_id"]: verdict for verdict in body["shown"] + body["hidden"]}


def test_explaining_counts_nothing_and_then_names_the_cap(store, make_small_app):
    client = TestClient(make_small_app(store, rules=(ONCE_EVER,)))

    first, again = explain(client), explain(client)
    served = client.get("/v1/members/alice/offers", headers=APP).json()["offers"]
    after = verdicts(explain(client))

    assert [v["offer_id"] for v in first["shown"]] == ["glow-beauty", "fresh-grocery"]
    assert again["shown"] == first["shown"]
    assert [offer["offer_id"] for offer in served] == ["glow-beauty", "fresh-grocery"]
    assert [v["reason"] for v in first["shown"]] == [offer["reason"] for offer in served]
    for offer_id, rank in (("glow-beauty", 1), ("fresh-grocery", 2)):
        assert after[offer_id]["status"] == "cap"
        assert after[offer_id]["rank"] == rank
        assert after[offer_id]["detail"] | {"until": None} == {
            "rule": "once_ever",
            "scope": "member_offer",
            "counts": "served",
            "count": 1,
            "limit": 1,
            "window": "total",
            "until": None,
        }
    assert after["glow-vip"]["status"] == "not_eligible"
    assert after["glow-vip"]["detail"]["checks"] == ["tier"]


def test_an_opted_out_category_is_named_with_the_preferences(store, make_small_app):
    client = TestClient(make_small_app(store))
    store.set_preferences("alice", Preferences(opted_out_categories=frozenset({"Beauty"})))

    body = explain(client)

    assert body["preferences"]["opted_out_categories"] == ["Beauty"]
    assert [v["offer_id"] for v in body["shown"]] == ["fresh-grocery"]
    beauty = verdicts(body)["glow-beauty"]
    assert (beauty["status"], beauty["detail"]) == ("opt_out", {"kind": "category"})
    assert (body["region"], body["tier"], body["known_member"]) == ("north", "base", True)


def test_explaining_needs_an_admin_key(store, make_small_app):
    client = TestClient(make_small_app(store))

    response = client.get("/v1/admin/members/alice/explain", headers=APP)

    assert response.status_code == 403
