"""`GET /v1/admin/experiments/{name}/report`: the uplift report from the store's decision log
and events, as the CLI computes it from exports."""

import json
from datetime import UTC, datetime

from fastapi.testclient import TestClient

from perkrank.experiment_config import ExperimentsConfig
from perkrank.serving.domain.uplift import uplift_report
from perkrank.serving.state.memory import MemoryStateStore
from tests.serving.api.test_experiments import ADMIN, APP, experiment, offers

MEMBERS = [f"m-{number}" for number in range(40)]


def test_the_report_counts_the_kept_decisions_and_events_per_arm(make_small_app):
    client = TestClient(make_small_app(MemoryStateStore()))
    client.put("/v1/experiments", json=experiment(0.5), headers=ADMIN)
    answers = [offers(client, member) for member in MEMBERS for _ in range(2)]
    now = datetime.now(UTC).isoformat()
    redemptions = [
        {
            "type": "redemption",
            "member_id": answer["member_id"],
            "offer_id": answer["offers"][0]["offer_id"],
            "channel": "app",
            "ts": now,
            "decision_id": answer["decision_id"],
        }
        for answer in answers[::3]
    ]
    client.post("/v1/events", json={"events": redemptions}, headers=APP)

    response = client.get("/v1/admin/experiments/lift/report", headers=ADMIN)

    assert response.status_code == 200, response.text
    report = response.json()
    arms = {arm["arm"]: arm for arm in report["arms"]}
    assert sum(arm["members"] for arm in arms.values()) == len(MEMBERS)
    assert sum(arm["decisions"] for arm in arms.values()) == len(answers)
    assert sum(arm["redemptions"] for arm in arms.values()) == len(redemptions)
    assert arms["holdout"]["lift"] is None
    assert arms["personalized"]["lift_ci"][0] <= arms["personalized"]["lift"]
    decisions = client.get("/v1/admin/decisions?count=1000", headers=ADMIN).json()["decisions"]
    events = client.get("/v1/admin/events?count=1000", headers=ADMIN).json()["events"]
    stored = ExperimentsConfig.model_validate(experiment(0.5)).experiments[0]
    expected = uplift_report(stored, decisions, events, "holdout").record()
    assert report == json.loads(json.dumps(expected))  # as the CLI computes it from exports


def test_unknown_experiments_holdouts_and_app_keys_are_refused(make_small_app):
    client = TestClient(make_small_app(MemoryStateStore()))
    client.put("/v1/experiments", json=experiment(0.5), headers=ADMIN)

    unknown = client.get("/v1/admin/experiments/nope/report", headers=ADMIN)
    no_arm = client.get("/v1/admin/experiments/lift/report?holdout=nope", headers=ADMIN)
    app_key = client.get("/v1/admin/experiments/lift/report", headers=APP)

    assert unknown.status_code == 404
    assert "no experiment 'nope' in force" in unknown.json()["detail"]
    assert no_arm.status_code == 422
    assert "has no arm 'nope'" in no_arm.json()["detail"]
    assert app_key.status_code == 403
