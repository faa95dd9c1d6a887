"""Marketer levers over HTTP and the CLI: stored, versioned and audited like caps, in force at
once, and refused with the field named when they make no sense.

Small world (`small_app`): alice's model prefers glow-beauty (P1) over fresh-grocery (P2).
"""

import pytest
import yaml
from fastapi.testclient import TestClient

from perkrank.cli import main
from perkrank.lever_config import LeversConfig
from perkrank.serving.state.memory import MemoryStateStore

APP = {"X-API-Key": "app-key-for-tests-0001"}
ADMIN = {"X-API-Key": "admin-key-for-tests-0001"}
BURY_P1 = {"name": "bury_glow", "target": "partner", "value": "P1", "multiplier": 0.01}


def order(client) -> list[str]:
    params = {"channel": "app", "region": "north"}
    response = client.get("/v1/members/alice/offers", params=params, headers=APP)
    assert response.status_code == 200, response.text
    return [offer["offer_id"] for offer in response.json()["offers"]]


def test_levers_are_stored_versioned_audited_and_in_force_at_once(store, make_small_app):
    client = TestClient(make_small_app(store))

    before = client.get("/v1/levers", headers=ADMIN).json()
    served_before = order(client)
    stored = client.put("/v1/levers", json={"levers": [BURY_P1]}, headers=ADMIN)
    served_buried = order(client)
    removed = client.put("/v1/levers", json={"levers": []}, headers=ADMIN)
    history = client.get("/v1/levers/history", headers=ADMIN).json()

    assert before == {"version": 0, "actor": None, "at": None, "levers": []}
    assert served_before == ["glow-beauty", "fresh-grocery"]
    assert stored.status_code == 200, stored.text
    assert stored.json()["version"] == 1
    assert stored.json()["actor"] == "ops"
    assert stored.json()["levers"] == [BURY_P1 | {"start": None, "end": None}]
    assert served_buried == ["fresh-grocery", "glow-beauty"]
    assert removed.json()["version"] == 2
    assert order(client) == served_before
    assert [(change["version"], change["actor"]) for change in history] == [(2, "ops"), (1, "ops")]
    assert history[0]["old"]["levers"][0]["name"] == "bury_glow"
    assert history[0]["new"] == {"levers": []}
    assert history[1]["old"] is None


def test_a_lever_outside_its_dates_changes_nothing(store, make_small_app):
    client = TestClient(make_small_app(store))  # serving 2026-06-15
    later = BURY_P1 | {"start": "2026-06-16"}
    ended = BURY_P1 | {"start": "2026-06-01", "end": "2026-06-15"}

    client.put("/v1/levers", json={"levers": [later]}, headers=ADMIN)
    after_later = order(client)
    client.put("/v1/levers", json={"levers": [ended]}, headers=ADMIN)

    assert after_later == ["glow-beauty", "fresh-grocery"]
    assert order(client) == ["glow-beauty", "fresh-grocery"]


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"levers": [BURY_P1 | {"multiplier": 0}]}, "levers.0.multiplier"),
        ({"levers": [BURY_P1 | {"target": "region"}]}, "levers.0.target"),
        ({"levers": [BURY_P1 | {"multiplier": "2"}]}, "levers.0.multiplier"),
        ({"levers": [BURY_P1 | {"start": "2026-06-20", "end": "2026-06-10"}]}, "levers.0"),
        ({"levers": [BURY_P1, BURY_P1]}, "levers"),
        ({"lever": []}, "lever"),
        ([], "the body must be a JSON object"),
    ],
)
def test_a_bad_lever_set_is_refused_naming_the_field_and_nothing_changes(
    store, make_small_app, body, where
):
    client = TestClient(make_small_app(store))

    response = client.put("/v1/levers", json=body, headers=ADMIN)

    assert response.status_code == 422
    assert any(problem["message"].startswith(where) for problem in response.json()["detail"])
    assert client.get("/v1/levers", headers=ADMIN).json()["version"] == 0


def test_levers_need_the_admin_key(store, make_small_app):
    client = TestClient(make_small_app(store))

    assert client.get("/v1/levers", headers=APP).status_code == 403
    assert client.put("/v1/levers", json={"levers": []}, headers=APP).status_code == 403


def test_the_cli_sets_shows_diffs_and_audits_levers(make_small_app, live_server, tmp_path, capsys):
    wanted = tmp_path / "levers.yaml"
    wanted.write_text(yaml.safe_dump({"levers": [BURY_P1 | {"start": "2026-06-01"}]}))

    def perkrank(*arguments: str) -> tuple[int, str]:
        code = main([*arguments, "--api-key", ADMIN["X-API-Key"], "--url", url])
        return code, capsys.readouterr().out

    with live_server(make_small_app(MemoryStateStore())) as url:
        empty = perkrank("levers", "show")
        diff = perkrank("levers", "diff", str(wanted))
        applied = perkrank("levers", "set", str(wanted))
        same = perkrank("levers", "diff", str(wanted))
        shown = perkrank("levers", "show")
        history = perkrank("levers", "history")

    added = "+ bury_glow: target partner, value P1, multiplier 0.01, start 2026-06-01, end None"
    assert empty == (0, "# levers version 0, by None, never set\nlevers: []\n")
    assert diff == (1, f"against levers version 0:\n{added}\n")
    assert applied == (0, f"{added}\nlevers version 1 in force (was 0)\n")
    assert same == (0, "against levers version 1:\nno differences\n")
    assert shown[1].startswith("# levers version 1, by ops, ")
    stored = LeversConfig.model_validate(yaml.safe_load(shown[1]))
    assert stored.levers[0].multiplier == 0.01
    assert history[1].startswith("version 1, by ops, ")
    assert f"  {added}" in history[1]
