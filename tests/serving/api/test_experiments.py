"""Experiments and the decision log over HTTP: experiments live and audited like caps, arms
answering by the member's salted hash, every response a logged decision, and the CLI.

Small world (`small_app`): for a member of region north the model prefers glow-beauty, regional
popularity prefers fresh-grocery, so the two policies give opposite orders.
"""

import csv
import random
from datetime import UTC, datetime

import pyarrow.parquet as pq
import pytest
import yaml
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from perkrank.cli import main
from perkrank.config import CapRule
from perkrank.experiment_config import Experiment, ExperimentsConfig
from perkrank.serving.domain.attribution import attribute
from perkrank.serving.domain.decisions import Decision
from perkrank.serving.domain.events import OfferEvent
from perkrank.serving.domain.experiments import assign
from perkrank.serving.state.memory import MemoryStateStore

APP = {"X-API-Key": "app-key-for-tests-0001"}
ADMIN = {"X-API-Key": "admin-key-for-tests-0001"}
PERSONALIZED_ORDER = ["glow-beauty", "fresh-grocery"]
POPULAR_ORDER = ["fresh-grocery", "glow-beauty"]


def experiment(holdout_share=0.5, policy="popular", **fields) -> dict:
    arms = [{"name": "holdout", "share": holdout_share, "policy": policy}]
    if holdout_share < 1:
        arms.append({"name": "personalized", "share": round(1 - holdout_share, 6)})
    return {"experiments": [{"name": "lift", "arms": arms} | fields]}


def offers(client, member_id, **query) -> dict:
    params = {"channel": "app", "region": "north"} | query
    response = client.get(f"/v1/members/{member_id}/offers", params=params, headers=APP)
    assert response.status_code == 200, response.text
    return response.json()


def arm_of(body: dict, member_id: str) -> Experiment:
    stored = ExperimentsConfig.model_validate(body).experiments[0]
    return assign(stored, member_id)


# ---------------------------------------------------------------- experiments, live and audited


def test_experiments_are_stored_versioned_and_audited(store, make_small_app):
    client = TestClient(make_small_app(store))

    before = client.get("/v1/experiments", headers=ADMIN).json()
    stored = client.put("/v1/experiments", json=experiment(0.05), headers=ADMIN)
    ended = client.put("/v1/experiments", json={"experiments": []}, headers=ADMIN)
    history = client.get("/v1/experiments/history", headers=ADMIN).json()

    assert before == {"version": 0, "actor": None, "at": None, "experiments": []}
    assert stored.status_code == 200
    assert stored.json()["version"] == 1
    assert stored.json()["actor"] == "ops"
    assert stored.json()["experiments"][0]["arms"][0] == {
        "name": "holdout",
        "share": 0.05,
        "policy": "popular",
        "model": None,
        "exploration": None,
    }
    assert ended.json()["version"] == 2
    assert [(change["version"], change["actor"]) for change in history] == [(2, "ops"), (1, "ops")]
    assert history[0]["old"]["experiments"][0]["name"] == "lift"
    assert history[0]["new"] == {"experiments": []}
    assert offers(client, "m-1")["experiment"] is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (experiment(0.5) | {"extra": 1}, "extra: Extra inputs are not permitted"),
        (experiment(0.3, salt="x") | {}, None),  # valid: checked below that it is stored
        (
            {"experiments": [{"name": "lift", "arms": [{"name": "a", "share": 0.5}]}]},
            "experiments.0.arms: Value error, the arms' shares must sum to 1, not 0.5",
        ),
        (
            {
                "experiments": [
                    {
                        "name": "lift",
                        "arms": [{"name": "a", "share": 0.5}, {"name": "a", "share": 0.5}],
                    }
                ]
            },
            "experiments.0.arms: Value error, duplicate arm names: a",
        ),
        (
            {"experiments": experiment()["experiments"] * 2},
            "experiments: Tuple should have at most 1 item after validation, not 2",
        ),
        (experiment(0.5, policy="random"), "experiments.0.arms.0.policy: Input should be"),
        (experiment(0.5, unit="household"), "experiments.0.unit: Input should be"),
        (
            {"experiments": [{"name": "lift", "arms": [{"name": "a", "share": "1"}]}]},
            "experiments.0.arms.0.share: Input should be a valid number",
        ),
        (["not", "an", "object"], "the body must be a JSON object with `experiments`"),
    ],
)
def test_bad_experiments_are_refused_naming_the_field_and_change_nothing(
    make_small_app, body, message
):
    client = TestClient(make_small_app(MemoryStateStore()))

    response = client.put("/v1/experiments", json=body, headers=ADMIN)

    if message is None:
        assert response.status_code == 200
        return
    assert response.status_code == 422
    assert any(problem["message"].startswith(message) for problem in response.json()["detail"])
    assert client.get("/v1/experiments", headers=ADMIN).json()["version"] == 0


def test_experiments_need_an_admin_key(make_small_app):
    client = TestClient(make_small_app(MemoryStateStore()))

    assert client.get("/v1/experiments", headers=APP).status_code == 403
    assert client.put("/v1/experiments", json=experiment(), headers=APP).status_code == 403
    assert client.get("/v1/experiments/history").status_code == 401
    assert client.get("/v1/admin/decisions", headers=APP).status_code == 403


# ---------------------------------------------------------------- arms


def test_holdout_members_never_receive_a_personalized_list(store, make_small_app):
    client = TestClient(make_small_app(store))
    body = experiment(0.5)
    client.put("/v1/experiments", json=body, headers=ADMIN)
    members = [f"m-{random.Random(7).getrandbits(40):x}-{n}" for n in range(300)]

    answers = {member: offers(client, member) for member in members}

    arms = {member: arm_of(body, member).name for member in members}
    assert set(arms.values()) == {"holdout", "personalized"}
    for member, answer in answers.items():
        shown = [offer["offer_id"] for offer in answer["offers"]]
        assert (answer["experiment"], answer["arm"]) == ("lift", arms[member])
        if arms[member] == "holdout":
            assert (answer["personalized"], shown) == (False, POPULAR_ORDER)
            assert all(offer["reason"] == "popular in your region" for offer in answer["offers"])
        else:
            assert (answer["personalized"], shown) == (True, PERSONALIZED_ORDER)
    logged = client.get("/v1/admin/decisions?count=1000", headers=ADMIN).json()["decisions"]
    assert {item["decision_id"]: item["arm"] for item in logged} == {
        answer["decision_id"]: arms[member] for member, answer in answers.items()
    }


EXPLORATIONS = st.one_of(
    st.none(),
    st.builds(lambda t: {"kind": "softmax", "temperature": t}, st.floats(0.01, 100)),
    st.builds(lambda e: {"kind": "epsilon", "epsilon": e}, st.floats(0.01, 1)),
)


@st.composite
def holdout_experiments(draw: st.DrawFn) -> dict:
    """A member experiment: a holdout (popular or none, perhaps exploring) and 1–3
    personalized arms (perhaps exploring), shares summing to 1, any salt."""
    policy = draw(st.sampled_from(["popular", "none"]))
    holdout = {"name": "holdout", "share": draw(st.integers(1, 99)) / 100, "policy": policy}
    if policy == "popular":
        holdout["exploration"] = draw(EXPLORATIONS)
    others = draw(st.integers(1, 3))
    left = round(1 - holdout["share"], 6)
    arms = [holdout] + [
        {"name": f"arm_{n}", "share": round(left / others, 6), "exploration": draw(EXPLORATIONS)}
        for n in range(others)
    ]
    arms[-1]["share"] = round(left - sum(arm["share"] for arm in arms[1:-1]), 6)
    salt = draw(st.text("abcdefghij0123456789", min_size=1, max_size=12))
    return {"experiments": [{"name": "lift", "salt": salt, "arms": arms}]}


def test_holdout_members_never_receive_a_personalized_list_under_any_split(store, make_small_app):
    """Property: whatever the split, salt, holdout policy and exploration, every member the
    hash puts in the holdout gets the popular order (or nothing) through the offers path,
    and every other member a personalized list."""
    client = TestClient(make_small_app(store))

    @settings(max_examples=40, deadline=None, derandomize=True)
    @given(
        body=holdout_experiments(),
        members=st.lists(st.text("abcdef0123456789-", min_size=1, max_size=20), min_size=1,
                         max_size=25, unique=True),
    )  # fmt: skip
    def check(body: dict, members: list[str]) -> None:
        stored = client.put("/v1/experiments", json=body, headers=ADMIN)
        assert stored.status_code == 200, stored.text
        holdout = body["experiments"][0]["arms"][0]
        for member in members:
            answer = offers(client, f"m-{member}")
            shown = [offer["offer_id"] for offer in answer["offers"]]
            assert answer["arm"] == arm_of(body, f"m-{member}").name
            if answer["arm"] != "holdout":
                assert answer["personalized"] and set(shown) == set(PERSONALIZED_ORDER)
                continue
            assert answer["personalized"] is False
            if holdout["policy"] == "none":
                assert shown == []
            else:
                assert sorted(shown) == sorted(POPULAR_ORDER)
                assert all(o["reason"] == "popular in your region" for o in answer["offers"])
                if holdout.get("exploration") is None:
                    assert shown == POPULAR_ORDER

    check()


def test_a_none_arm_gets_no_offers_and_its_decision_is_logged(make_small_app):
    client = TestClient(make_small_app(MemoryStateStore()))
    client.put("/v1/experiments", json=experiment(1.0, policy="none"), headers=ADMIN)

    answer = offers(client, "m-1")
    (logged,) = client.get("/v1/admin/decisions", headers=ADMIN).json()["decisions"]

    assert (answer["offers"], answer["personalized"], answer["arm"]) == ([], False, "holdout")
    assert (logged["policy"], logged["offers"], logged["arm"]) == ("none", [], "holdout")


def test_caps_and_opt_outs_apply_to_the_holdout_arm(store, make_small_app):
    once_a_day = CapRule(name="once_a_day", scope="member_offer", limit=1, window="day")
    client = TestClient(make_small_app(store, rules=(once_a_day,)))
    client.put("/v1/experiments", json=experiment(1.0), headers=ADMIN)
    preferences = {"opted_out_categories": ["Beauty"]}
    client.put("/v1/members/m-2/preferences", json=preferences, headers=ADMIN)

    first, second = offers(client, "m-1"), offers(client, "m-1")
    opted_out = offers(client, "m-2")

    assert [offer["offer_id"] for offer in first["offers"]] == POPULAR_ORDER
    assert (second["arm"], second["offers"]) == ("holdout", [])
    assert [offer["offer_id"] for offer in opted_out["offers"]] == ["fresh-grocery"]


def test_a_region_experiment_answers_a_whole_region_with_one_arm(make_small_app):
    client = TestClient(make_small_app(MemoryStateStore()))
    body = experiment(0.5, unit="region")
    client.put("/v1/experiments", json=body, headers=ADMIN)

    arms = {offers(client, f"m-{n}")["arm"] for n in range(50)}

    assert arms == {arm_of(body, "north").name}


def test_two_processes_on_one_redis_assign_every_member_alike(
    make_small_app, redis_url, redis_key_prefix
):
    from perkrank.serving.state.redis_store import RedisStateStore

    stores = [RedisStateStore(redis_url, redis_key_prefix, 2000) for _ in range(2)]
    first, second = (make_small_app(store) for store in stores)
    body = experiment(0.5, salt="lift-2026")
    TestClient(first).put("/v1/experiments", json=body, headers=ADMIN)
    second.state.live.refresh_settings()  # what its settings thread does every poll
    members = [f"member-{n}" for n in range(100)]

    answers = [
        [offers(TestClient(app), member)["arm"] for member in members] for app in (first, second)
    ]

    assert answers[0] == answers[1] == [arm_of(body, member).name for member in members]
    assert second.state.holder.current.experiments_version == 1


# ---------------------------------------------------------------- the decision log


def test_every_response_is_a_logged_decision_named_in_body_and_header(store, make_small_app):
    client = TestClient(make_small_app(store))

    response = client.get("/v1/members/alice/offers?channel=web", headers=APP)
    answer = response.json()
    page = client.get("/v1/admin/decisions", headers=ADMIN).json()

    assert response.headers["X-Decision-Id"] == answer["decision_id"]
    assert (answer["experiment"], answer["arm"]) == (None, None)
    (logged,) = page["decisions"]
    assert page["next_after"] == logged["stream_id"]
    assert logged | {"stream_id": None, "ts": None} == {
        "stream_id": None,
        "ts": None,
        "decision_id": answer["decision_id"],
        "member_id": "alice",
        "channel": "web",
        "model_version": "small-1",
        "experiment": None,
        "arm": None,
        "policy": "personalized",
        "personalized": True,
        "offers": [
            {
                "offer_id": offer["offer_id"],
                "rank": offer["rank"],
                "score": pytest.approx(offer["score"]),
                "propensity": 1.0,
            }
            for offer in answer["offers"]
        ],
    }
    second = offers(client, "alice")
    assert second["decision_id"] != answer["decision_id"]


def test_events_naming_a_decision_are_attributed_to_it(make_small_app):
    client = TestClient(make_small_app(MemoryStateStore()))
    first, second = offers(client, "alice"), offers(client, "alice")
    now = datetime.now(UTC).isoformat()
    click = {"type": "click", "member_id": "alice", "offer_id": "glow-beauty", "channel": "app"}
    sent = [click | {"ts": now, "decision_id": first["decision_id"]}, click | {"ts": now}]

    recorded = client.post("/v1/events", json={"events": sent}, headers=APP)
    kept = client.get("/v1/admin/events", headers=ADMIN).json()["events"]
    logged = client.get("/v1/admin/decisions", headers=ADMIN).json()["decisions"]

    assert recorded.json() == {"accepted": 2, "duplicates": 0}
    assert [event["decision_id"] for event in kept] == [first["decision_id"], None]
    found = attribute([event_of(item) for item in kept], [decision_of(item) for item in logged])
    assert [decision.decision_id for decision in found] == [
        first["decision_id"],  # named
        second["decision_id"],  # the latest showing of glow-beauty to alice
    ]


def event_of(kept: dict) -> OfferEvent:
    fields = {name: value for name, value in kept.items() if name != "stream_id"}
    return OfferEvent(**fields | {"ts": datetime.fromisoformat(kept["ts"]).timestamp()})


def decision_of(logged: dict) -> Decision:
    fields = {name: value for name, value in logged.items() if name != "stream_id"}
    ts = datetime.fromisoformat(logged["ts"]).timestamp()
    shown = [list(offer.values()) for offer in logged["offers"]]
    return Decision.from_record(fields | {"ts": ts, "offers": shown})


# ---------------------------------------------------------------- the CLI


def test_cli_sets_shows_diffs_and_audits_experiments(make_small_app, live_server, tmp_path, capsys):
    wanted = tmp_path / "experiments.yaml"
    wanted.write_text(yaml.safe_dump(experiment(0.05, salt="lift-2026")))

    def perkrank(*arguments: str) -> tuple[int, str]:
        code = main([*arguments, "--api-key", ADMIN["X-API-Key"], "--url", url])
        return code, capsys.readouterr().out

    with live_server(make_small_app(MemoryStateStore())) as url:
        empty = perkrank("experiments", "show")
        diff = perkrank("experiments", "diff", str(wanted))
        applied = perkrank("experiments", "set", str(wanted))
        wanted.write_text(yaml.safe_dump(experiment(0.1, salt="lift-2026")))
        changed = perkrank("experiments", "set", str(wanted))
        same = perkrank("experiments", "diff", str(wanted))
        shown = perkrank("experiments", "show")
        history = perkrank("experiments", "history")

    added = (
        "+ lift: unit member, salt lift-2026, "
        "arms holdout 0.05 popular / personalized 0.95 personalized"
    )
    assert empty == (0, "# experiments version 0, by None, never set\nexperiments: []\n")
    assert diff == (1, f"against experiments version 0:\n{added}\n")
    assert applied == (0, f"{added}\nexperiments version 1 in force (was 0)\n")
    assert changed[1].startswith("~ lift: arms holdout 0.05 popular / personalized 0.95")
    assert same == (0, "against experiments version 2:\nno differences\n")
    assert shown[1].startswith("# experiments version 2, by ops, ")
    assert yaml.safe_load(shown[1])["experiments"][0]["arms"][0]["share"] == 0.1
    assert history[1].startswith("version 2, by ops, ")
    assert "version 1, by ops, " in history[1]
    assert f"  {added}" in history[1]


def test_cli_rejected_experiments_name_the_field(make_small_app, live_server, tmp_path, capsys):
    wanted = tmp_path / "experiments.yaml"
    wanted.write_text(yaml.safe_dump(experiment(0.5, policy="random")))

    with live_server(make_small_app(MemoryStateStore())) as url:
        code = main(
            ["experiments", "set", str(wanted), "--url", url, "--api-key", ADMIN["X-API-Key"]]
        )

    assert code == 1
    assert "experiments.0.arms.0.policy: Input should be" in capsys.readouterr().err


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_cli_exports_the_decision_log_a_row_per_offer_shown(
    make_small_app, live_server, tmp_path, capsys, suffix
):
    app = make_small_app(MemoryStateStore())
    client = TestClient(app)
    client.put("/v1/experiments", json=experiment(0.5, policy="none"), headers=ADMIN)
    members = [f"m-{n}" for n in range(6)]
    answers = [offers(client, member) for member in members]
    out = tmp_path / f"decisions{suffix}"

    with live_server(app) as url:
        arguments = ["decisions", "export", "--out", str(out), "--url", url, "--page-size", "4"]
        code = main([*arguments, "--api-key", ADMIN["X-API-Key"]])

    assert (code, capsys.readouterr().out) == (0, f"6 decisions written to {out}\n")
    if suffix == ".csv":
        with out.open(newline="", encoding="utf-8") as file:
            rows = list(csv.DictReader(file))
    else:
        rows = pq.read_table(out).to_pylist()
    expected_rows = sum(len(answer["offers"]) or 1 for answer in answers)
    assert len(rows) == expected_rows
    assert list(rows[0]) == [
        "decision_id",
        "ts",
        "member_id",
        "channel",
        "model_version",
        "experiment",
        "arm",
        "policy",
        "personalized",
        "offer_id",
        "rank",
        "score",
        "propensity",
    ]
    by_decision = {}
    for row in rows:
        by_decision.setdefault(row["decision_id"], []).append(row)
    for answer in answers:
        shown = by_decision[answer["decision_id"]]
        assert {row["arm"] for row in shown} == {answer["arm"]}
        if answer["arm"] == "holdout":
            assert [row["offer_id"] for row in shown] in ([""], [None])
        else:
            assert [row["offer_id"] for row in shown] == PERSONALIZED_ORDER
            assert [float(row["propensity"]) for row in shown] == [1.0, 1.0]
            assert [int(row["rank"]) for row in shown] == [1, 2]
    assert list(tmp_path.iterdir()) == [out]
