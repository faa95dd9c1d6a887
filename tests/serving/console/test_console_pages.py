"""The console over HTTP (TestClient): sign-in, CSRF on every post, the session cookie never
standing in for an API key, and each page's forms doing what the admin API does."""

import re
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient

from perkrank.config import CapRule
from perkrank.features.loader import load_dataset
from perkrank.serving.domain.selection import Preferences
from perkrank.serving.model_registry import (
    AliasChange,
    ChampionChange,
    ModelRegistryError,
    RegisteredVersion,
)
from perkrank.serving.state.memory import MemoryStateStore

ADMIN_KEY = "admin-key-for-tests-0001"
APP_KEY = "app-key-for-tests-0001"
ADMIN = {"X-API-Key": ADMIN_KEY}
PAGES = ("/console/", "/console/caps", "/console/catalog", "/console/member?member_id=alice")
PAGES += ("/console/experiments", "/console/models")
TWICE_A_DAY = CapRule(name="offer_day", scope="member_offer", limit=2, window="day")
BAD_ROW_CSV = (
    "offer_id,partner_id,category,title,regions,min_tier,valid_from,valid_to,budget,reward\n"
    "glow-beauty,P1,Beauty,Beauty deal,,base,2026-06-05,2026-06-25,,10% back\n"
    "fresh-new,P9,Grocery,New deal,,gold,2026-06-10,2026-06-30,,5% back\n"
)


@pytest.fixture
def store() -> MemoryStateStore:
    return MemoryStateStore()


@pytest.fixture
def client(store, make_small_app, small_service_files) -> TestClient:
    partners = load_dataset(small_service_files["data"]).partners
    app = make_small_app(store, rules=(TWICE_A_DAY,), partners=partners)
    return TestClient(app, follow_redirects=False)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def sign_in(client: TestClient, key: str = ADMIN_KEY):
    token = csrf_of(client.get("/console/login").text)
    return client.post("/console/login", data={"csrf": token, "api_key": key})


def signed_in(client: TestClient) -> str:
    """Sign in; the CSRF token of the session's pages."""
    assert sign_in(client).status_code == 303
    return csrf_of(client.get("/console/caps").text)


def test_signing_in_sets_a_strict_http_only_expiring_cookie(client):
    response = sign_in(client)

    assert response.status_code == 303 and response.headers["location"] == "/console/"
    cookie = next(
        value
        for value in response.headers.get_list("set-cookie")
        if value.startswith("perkrank_console=")
    )
    for attribute in ("HttpOnly", "SameSite=strict", "Max-Age=28800", "Path=/console"):
        assert attribute.lower() in cookie.lower(), cookie
    assert client.get("/console/").status_code == 200


def test_pages_want_a_session_and_an_app_key_cannot_sign_in(client):
    assert client.get("/console/caps").headers["location"] == "/console/login"
    refused = sign_in(client, APP_KEY)
    assert "perkrank_console=" not in refused.headers.get("set-cookie", "")
    assert client.get("/console/").status_code == 303
    assert client.post("/console/login", data={"api_key": ADMIN_KEY}).status_code == 403
    assert refused.headers["location"] == "/console/login?problem=bad-key"
    assert "That is not an admin key." in client.get(refused.headers["location"]).text
    assert "Call us" not in client.get("/console/login", params={"problem": "Call us"}).text


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(client):
    token = signed_in(client)
    rules = "rules: []\n"

    missing = client.post("/console/caps/save", data={"rules": rules})
    forged = token[:-2] + ("yy" if token.endswith("xx") else "xx")
    wrong = client.post("/console/caps/save", data={"rules": rules, "csrf": forged})
    signout = client.post("/console/logout", data={})

    assert (missing.status_code, wrong.status_code, signout.status_code) == (403, 403, 403)
    assert client.get("/v1/caps", headers=ADMIN).json()["rules"][0]["name"] == "offer_day"
    saved = client.post("/console/caps/save", data={"rules": rules, "csrf": token})
    assert saved.status_code == 303
    assert client.get("/v1/caps", headers=ADMIN).json()["rules"] == []


def test_the_json_api_never_takes_the_session_cookie_for_a_key(client):
    signed_in(client)
    assert client.cookies.get("perkrank_console")

    for path in ("/v1/caps", "/v1/admin/members/alice/explain", "/v1/members/alice/offers"):
        assert client.get(path).status_code == 401, path
    client.cookies.set("perkrank_console", client.cookies.get("perkrank_console"), path="/")
    assert client.get("/v1/caps").status_code == 401
    assert client.put("/v1/caps", json={"rules": []}).status_code == 401


def test_signing_out_ends_the_session(client):
    token = signed_in(client)
    response = client.post("/console/logout", data={"csrf": token})
    assert response.status_code == 303
    assert client.get("/console/caps").status_code == 303


def test_a_bad_rule_is_named_inline_and_a_preview_saves_nothing(client):
    token = signed_in(client)
    bad = "rules:\n- {name: offer_day, scope: member_offer, limit: -1, window: day}\n"
    lowered = "rules:\n- {name: offer_day, scope: member_offer, limit: 1, window: day}\n"
    for _ in range(3):
        client.get("/v1/members/alice/offers", headers={"X-API-Key": APP_KEY})

    refused = client.post("/console/caps/preview", data={"rules": bad, "csrf": token})
    preview = client.post("/console/caps/preview", data={"rules": lowered, "csrf": token})

    assert refused.status_code == 422
    assert "rule 0 (offer_day), field limit" in refused.text
    assert preview.status_code == 200
    assert "~ offer_day: limit 2 → 1" in preview.text
    assert "already reached by 1 members" in preview.text
    assert re.search(r"Offers shown</th><td class=\"num\">4</td><td class=\"num\">2<", preview.text)
    assert client.get("/v1/caps", headers=ADMIN).json()["version"] == 1


def test_a_bad_catalog_row_is_named_and_nothing_is_published(client):
    token = signed_in(client)
    files = {"offers_file": ("offers.csv", BAD_ROW_CSV, "text/csv")}

    response = client.post(
        "/console/catalog/check", data={"csrf": token, "action": "publish"}, files=files
    )

    assert response.status_code == 422
    assert "<td>3</td><td>partner_id</td>" in response.text
    assert client.get("/v1/admin/offers/history", headers=ADMIN).json() == []


def test_the_member_page_says_why_an_opted_out_offer_is_hidden(client, store):
    signed_in(client)
    store.set_preferences("alice", Preferences(opted_out_categories=frozenset({"Beauty"})))

    page = client.get("/console/member", params={"member_id": "alice"}).text

    hidden = page.split("Not shown")[1]
    assert re.search(r'data-offer="glow-beauty">.*?status-opt_out.*?kind=category', hidden, re.S)
    assert "Categories opted out</dt><dd>Beauty" in page


class FormFields(HTMLParser):
    """Every form field of a page, and the ids labels point at."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: list[dict] = []
        self.labelled: set[str] = set()

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        if tag == "label" and values.get("for"):
            self.labelled.add(values["for"])
        if tag in ("input", "select", "textarea") and values.get("type") != "hidden":
            self.fields.append(values)


@pytest.mark.parametrize("path", ("/console/login", *PAGES))
def test_every_field_of_every_page_is_labelled(client, path):
    if path != "/console/login":
        signed_in(client)
    parser = FormFields()
    parser.feed(client.get(path).text)
    for field in parser.fields:
        assert field.get("aria-label") or field.get("id") in parser.labelled, (path, field)


class FakeRegistry:
    """Two versions, v2 the champion that replaced v1; records what the page asked."""

    name = "fake-offers"

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.champion = "2"

    def versions(self) -> list[RegisteredVersion]:
        return [
            RegisteredVersion(
                number,
                ("champion",) if number == self.champion else (),
                None,
                {"ndcg@10": 0.1 * int(number), "popularity.ndcg@10": 0.05},
                previous_champion="1" if number == "2" else None,
            )
            for number in ("2", "1")
        ]

    def alias_changes(self) -> list[AliasChange]:
        return []

    def promote(self, version: str, force: bool, actor: str) -> ChampionChange:
        self.calls.append(("promote", version, force, actor))
        raise ModelRegistryError(f"cannot compare v{version} on the same window")

    def roll_back(self, actor: str) -> ChampionChange:
        self.calls.append(("roll back", actor))
        self.champion = "1"
        return ChampionChange(True, "rolled back", "1")


def test_the_models_page_charts_versions_and_posts_need_the_csrf_token(client):
    registry = FakeRegistry()
    client.app.state.model_registry = registry
    token = signed_in(client)

    page = client.get("/console/models").text
    refused = [
        client.post("/console/models/promote", data={"version": "1"}),
        client.post("/console/models/rollback", data={"csrf": token[:-2] + "xx"}),
    ]
    problem = client.post("/console/models/promote", data={"csrf": token, "version": "1"})
    moved = client.post("/console/models/rollback", data={"csrf": token})

    assert "NDCG@10 on each version&#39;s test window" in page
    assert 'aria-label="Roll back the champion to v1"' in page
    assert [response.status_code for response in refused] == [403, 403]
    assert problem.status_code == 409
    assert "cannot compare v1 on the same window" in problem.text
    assert registry.calls == [("promote", "1", False, "ops"), ("roll back", "ops")]
    assert moved.status_code == 303 and moved.headers["location"] == "/console/models?moved=1"
