"""The marketer's safety nets over HTTP (admin key): cap preview and rollback, catalog dry run,
rollback and the none-valid guard, and /docs served without the internet."""

import re

import pytest
from fastapi.testclient import TestClient

from perkrank.config import CapRule
from perkrank.features.loader import load_dataset

APP = {"X-API-Key": "app-key-for-tests-0001"}
ADMIN = {"X-API-Key": "admin-key-for-tests-0001"}
CSV = {"Content-Type": "text/csv"}
HEADER = "offer_id,partner_id,category,title,regions,min_tier,valid_from,valid_to,budget,reward\n"
NEXT_CATALOG = (
    HEADER
    + "glow-beauty,P1,Beauty,Beauty deal,,base,2026-06-05,2026-06-25,,10% back\n"
    + "fresh-grocery,P2,Grocery,Fresh deal,,base,2026-06-05,2026-06-25,,10% back\n"
    + "fresh-new,P2,Grocery,New deal,,gold,2026-06-10,2026-06-30,,5% back\n"
)
EXPIRED_CATALOG = HEADER + "glow-old,P1,Beauty,Old deal,,base,2026-01-01,2026-01-31,,1% back\n"
TWICE_A_DAY = {"name": "offer_day", "scope": "member_offer", "limit": 2, "window": "day"}


@pytest.fixture
def client(store, make_small_app, small_service_files) -> TestClient:
    partners = load_dataset(small_service_files["data"]).partners
    rules = (CapRule(**TWICE_A_DAY),)
    return TestClient(make_small_app(store, rules=rules, partners=partners))


def served(client: TestClient, member_id: str = "alice") -> list[str]:
    response = client.get(f"/v1/members/{member_id}/offers", headers=APP)
    return [offer["offer_id"] for offer in response.json()["offers"]]


def test_the_cap_preview_replays_the_log_under_both_rule_sets_and_saves_nothing(client):
    for _ in range(3):
        served(client)
    client.app.state.recorder.flush()
    once = {"rules": [TWICE_A_DAY | {"limit": 1}], "reward_costs": {"glow-beauty": 2.5}}

    response = client.post("/v1/admin/caps/preview?days=2", json=once, headers=ADMIN)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["days"] == 2 and body["decisions"] == 3
    assert body["changes"] == ["~ offer_day: limit 2 → 1"]
    assert body["warnings"] == [
        "rule offer_day: limit 2 → 1 is already reached by 1 members (2 counters) in the "
        "current window"
    ]
    assert body["offers_shown"] == [4, 2]
    assert body["members_reached"] == [1, 1]
    assert body["by_offer"]["glow-beauty"]["proposed"]["shown"] == 1
    assert body["by_partner"]["P2"]["current"]["shown"] == 2
    assert client.get("/v1/caps", headers=ADMIN).json()["rules"] == [
        TWICE_A_DAY | {"counts": "served"}
    ]


def test_a_bad_proposed_rule_is_named(client):
    bad = {"rules": [TWICE_A_DAY | {"limit": -1}]}
    response = client.post("/v1/admin/caps/preview", json=bad, headers=ADMIN)
    assert response.status_code == 422
    assert response.json()["detail"][0]["message"].startswith("rule 0 (offer_day), field limit")


def test_caps_roll_back_to_an_earlier_version_as_a_new_one(client):
    client.put("/v1/caps", json={"rules": []}, headers=ADMIN)

    rolled = client.post("/v1/admin/caps/rollback", json={"version": 1}, headers=ADMIN)
    missing = client.post("/v1/admin/caps/rollback", json={"version": 9}, headers=ADMIN)

    assert rolled.status_code == 200, rolled.text
    assert (rolled.json()["version"], rolled.json()["rules"][0]["limit"]) == (3, 2)
    assert client.get("/v1/caps", headers=ADMIN).json()["version"] == 3
    assert missing.status_code == 404


def test_a_catalog_dry_run_lists_changes_and_validity_and_publishes_nothing(client):
    response = client.post("/v1/admin/offers/dry-run", content=NEXT_CATALOG, headers=ADMIN | CSV)

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["added"], body["removed"]) == (["fresh-new"], ["glow-vip"])
    assert body["changed"] == [
        {"offer_id": "fresh-grocery", "fields": {"title": ["Grocery deal", "Fresh deal"]}}
    ]
    assert (body["unchanged"], body["today"], body["valid_today"]) == (1, "2026-06-15", 3)
    assert body["valid_by_region_tier"]["north"] == {"base": 2, "silver": 2, "gold": 3, "vip": 3}
    assert body["refused"] is None
    assert client.get("/v1/admin/offers/history", headers=ADMIN).json() == []


def test_a_dry_run_names_row_and_field_of_a_bad_file(client):
    bad = NEXT_CATALOG.replace("fresh-new,P2", "fresh-new,P9")
    response = client.post("/v1/admin/offers/dry-run", content=bad, headers=ADMIN | CSV)
    assert response.status_code == 422
    assert (response.json()["detail"][0]["row"], response.json()["detail"][0]["field"]) == (
        4,
        "partner_id",
    )


def test_a_catalog_with_no_offer_valid_today_needs_confirming(client):
    dry = client.post("/v1/admin/offers/dry-run", content=EXPIRED_CATALOG, headers=ADMIN | CSV)
    refused = client.put("/v1/admin/offers", content=EXPIRED_CATALOG, headers=ADMIN | CSV)
    confirmed = client.put(
        "/v1/admin/offers?allow_none_valid=true", content=EXPIRED_CATALOG, headers=ADMIN | CSV
    )

    assert dry.json()["valid_today"] == 0 and "allow_none_valid" in dry.json()["refused"]
    assert refused.status_code == 409
    assert "no offer of the file is valid today (2026-06-15)" in refused.json()["detail"]
    assert confirmed.status_code == 200
    assert served(client) == []


def test_a_catalog_rolls_back_to_a_kept_version(client):
    first = client.put("/v1/admin/offers", content=NEXT_CATALOG, headers=ADMIN | CSV)
    client.put(
        "/v1/admin/offers?allow_none_valid=true", content=EXPIRED_CATALOG, headers=ADMIN | CSV
    )

    rolled = client.post("/v1/admin/offers/rollback", json={"version": 1}, headers=ADMIN)
    missing = client.post("/v1/admin/offers/rollback", json={"version": 7}, headers=ADMIN)

    assert rolled.status_code == 200, rolled.text
    assert (rolled.json()["version"], rolled.json()["sha256"]) == (3, first.json()["sha256"])
    assert served(client) == ["glow-beauty", "fresh-grocery"]
    assert missing.status_code == 404


def test_docs_load_their_assets_from_the_service_itself(make_small_app):
    from perkrank.serving.state.memory import MemoryStateStore

    client = TestClient(make_small_app(MemoryStateStore()))

    page = client.get("/docs")

    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", page.text)
    assert urls and all(url.startswith("/") for url in urls), urls
    assert "http" not in page.text  # no CDN, and no validator badge from validator.swagger.io
    assert '"validatorUrl": null' in page.text
    for url in urls:
        if url.startswith("/docs/assets/"):
            assert client.get(url).status_code == 200, url
    assert client.get("/redoc").status_code == 404
