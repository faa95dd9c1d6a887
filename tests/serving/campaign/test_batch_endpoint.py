"""`POST /v1/decisions:batch`: the campaign decisions `perkrank decide` makes, over HTTP."""

from fastapi.testclient import TestClient

from perkrank.serving.api.app import create_app
from perkrank.serving.bootstrap import Runtime
from perkrank.serving.campaign import campaign_decision_id
from perkrank.serving.domain.selection import Preferences
from tests.serving.campaign.world import ADMIN_KEY, campaign_context, counters, member_ids

APP_KEY = "app-key-for-tests-0001"
ADMIN = {"X-API-Key": ADMIN_KEY}


def client_of(store, **settings):
    context = campaign_context(store, app_api_keys=f"tests:{APP_KEY}", **settings)
    return TestClient(create_app(context.ranker.settings, Runtime(context)))


def test_one_decision_per_member_counted_once_per_campaign(new_store):
    store = new_store()
    store.set_preferences("M00000001", Preferences(opted_out_channels=frozenset({"email"})))
    members = member_ids()[:40]
    body = {"campaign": "june", "channel": "email", "members": [*members, members[0]]}
    with client_of(store, max_batch_decisions=40) as client:
        first = client.post("/v1/decisions:batch", json=body, headers=ADMIN)
        counted = counters(store)
        again = client.post("/v1/decisions:batch", json=body, headers=ADMIN)

    assert first.status_code == 200, first.text
    decisions = first.json()["decisions"]
    assert [d["member_id"] for d in decisions] == members
    assert [d["decision_id"] for d in decisions] == [
        campaign_decision_id("june", member_id) for member_id in members
    ]
    assert decisions[1]["offers"] == [] and decisions[1]["suppressed"]["opt_out"] > 0
    assert all(d["offers"] for n, d in enumerate(decisions) if n != 1)
    assert again.json()["decisions"] == decisions
    assert counters(store) == counted  # the same campaign's decisions count once


def test_a_batch_beyond_the_configured_size_is_refused_naming_members(new_store):
    with client_of(new_store(), max_batch_decisions=3) as client:
        body = {"campaign": "june", "channel": "email", "members": ["a", "b", "c", "d"]}
        response = client.post("/v1/decisions:batch", json=body, headers=ADMIN)
    assert response.status_code == 413
    assert response.json()["detail"].startswith("members: a batch holds at most 3 members")


def test_bad_members_and_app_keys_are_refused(new_store):
    store = new_store()
    with client_of(store) as client:
        bad = {"campaign": "june", "channel": "email", "members": ["M1", "not valid"]}
        invalid = client.post("/v1/decisions:batch", json=bad, headers=ADMIN)
        good = {"campaign": "june", "channel": "email", "members": ["M00000001"]}
        as_app = client.post("/v1/decisions:batch", json=good, headers={"X-API-Key": APP_KEY})
    assert invalid.status_code == 422
    assert [problem["loc"] for problem in invalid.json()["detail"]] == [["body", "members", 1]]
    assert as_app.status_code == 403
    assert counters(store) == {}
