"""Live changes while serving: caps, catalogs and models change on every process, requests
keep working, bad input changes nothing. Servers are real uvicorn servers on 127.0.0.1 (in
threads, or `perkrank serve` processes) sharing one Redis key prefix."""

import gzip
import io
import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import yaml
from fastapi.testclient import TestClient

from perkrank.cli import main
from perkrank.config import CapsConfig, ServeConfig
from perkrank.lever_config import LeversConfig
from perkrank.models.bundle import Bundle
from perkrank.models.factors import Factors
from perkrank.serving.api.app import create_app
from perkrank.serving.bootstrap import Runtime, bootstrap, build_context
from perkrank.serving.domain.catalog import build_catalog
from perkrank.serving.domain.catalog_file import read_offers_file
from perkrank.serving.domain.context import ContextHolder
from perkrank.serving.live import LiveRefresher
from perkrank.serving.state.memory import MemoryStateStore
from perkrank.serving.state.redis_store import RedisStateStore

APP_KEY = "app-key-for-live-tests-01"
ADMIN_KEY = "admin-key-for-live-tests-01"
APP = {"X-API-Key": APP_KEY}
ADMIN = {"X-API-Key": ADMIN_KEY}
CSV = {"Content-Type": "text/csv"}
TODAY = "2026-06-15"
ITEMS = ["P1|Beauty", "P1|Fuel", "P2|Grocery", "P2|Snacks", "P3|Bakery"]
INITIAL_RULES = [
    {"name": "member_offer_day", "scope": "member_offer", "limit": 100, "window": "day"},
]
PAUSED = {"rules": [{"name": "paused", "scope": "member_channel", "limit": 0, "window": "day"}]}
"""Caps a marketer could set to stop every offer at once."""
OFFERS_HEADER = (
    "offer_id,partner_id,category,title,regions,min_tier,valid_from,valid_to,budget,reward"
)
INITIAL_OFFERS = [
    "glow-beauty,P1,Beauty,Glow deal,,base,2026-06-01,2026-06-30,,10%",
    "fresh-grocery,P2,Grocery,Grocery deal,,base,2026-06-01,2026-06-30,,5%",
]
NEXT_OFFERS = [
    "glow-fuel,P1,Fuel,Fuel deal,,base,2026-06-01,2026-06-30,,3%",
    "fresh-snacks,P2,Snacks,Snack deal,,base,2026-06-01,2026-06-30,500,2x points",
    "north-bakery,P3,Bakery,Bread deal,,base,2026-06-01,2026-06-30,,1 free bun",
]
BAD_OFFERS = [
    "glow-fuel,P1,Fuel,Fuel deal,,base,2026-06-01,2026-06-30,,3%",
    "ghost-deal,P9,Fuel,Ghost deal,,base,2026-06-01,2026-06-30,,3%",
    "fresh-snacks,P2,Snacks,Snack deal,,base,2026-06-30,2026-06-01,,2x points",
    "north-bakery,P3,Bakery,Bread deal,,diamond,2026-06-01,2026-06-30,,1 free bun",
]
BAD_OFFER_PROBLEMS = {(3, "partner_id"), (4, "valid_to"), (5, "min_tier")}
"""Row (header = 1) and field of each problem in BAD_OFFERS."""


def offers_file(rows: list[str]) -> str:
    return "\n".join([OFFERS_HEADER, *rows]) + "\n"


def make_bundle(item_scale: float = 1.0, members: int = 2) -> Bundle:
    """alice (north) likes Beauty, bob (south) Grocery; `item_scale` nan makes a broken model,
    `members=1` one that knows alice only."""
    item_vectors = np.array([[1.0, 0.0], [0.6, 0.2], [0.0, 1.0], [0.2, 0.6], [0.3, 0.3]])
    ranker = Factors(
        member_ids=["alice", "bob"][:members],
        member_vectors=[[1.0, 0.0], [0.0, 1.0]][:members],
        item_ids=ITEMS,
        item_vectors=item_vectors * item_scale,
        item_biases=np.zeros(len(ITEMS)),
        member_feature_ids=["region=north", "region=south"],
        member_feature_vectors=[[0.5, 0.0], [0.0, 0.5]],
        repeat=sp.csr_matrix((members, len(ITEMS))),
    )
    fallback = Factors(
        member_ids=[],
        member_vectors=np.zeros((0, 1)),
        item_ids=ITEMS,
        item_vectors=[[0.5], [0.4], [0.3], [0.2], [0.1]],
        item_biases=np.zeros(len(ITEMS)),
        member_feature_ids=["tier=base"],
        member_feature_vectors=np.ones((1, 1)),
    )
    return Bundle(ranker=ranker, fallback=fallback)


def write_data(directory: Path) -> Path:
    """Members, purchases, partners and the initial offers of a tiny program."""
    directory.mkdir()
    files = {
        "members.csv": "member_id,region,tier,birth_date,signup_date\n"
        "alice,north,base,,2024-01-01\nbob,south,base,,2024-01-01\n",
        "purchases.csv": "member_id,ts,partner_id,category,amount,channel\n"
        "alice,2026-05-01 10:00:00,P1,Beauty,12.5,app\n",
        "partners.csv": "partner_id,name,scope,regions,categories\n"
        "P1,Glow,federal,,Beauty;Fuel\nP2,FreshMart,federal,,Grocery;Snacks\n"
        "P3,North Bakery,local,north,Bakery\n",
        "offers.csv": offers_file(INITIAL_OFFERS),
    }
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def promote(models: Path, version: str) -> None:
    """Point `models/champion` at `models/<version>` atomically, as a registry alias moves."""
    staging = models / "champion.next"
    staging.symlink_to(models / version)
    os.replace(staging, models / "champion")


@pytest.fixture
def program(tmp_path: Path) -> Path:
    """Data, caps file and model versions v1, v2 (good), nan (NaN scores), half (knows one of
    the two members) and unloadable (no arrays) under `tmp_path`, with `models/champion` at
    v1."""
    write_data(tmp_path / "data")
    (tmp_path / "caps.yaml").write_text(yaml.safe_dump({"rules": INITIAL_RULES}))
    models = tmp_path / "models"
    make_bundle().save(models / "v1")
    make_bundle().save(models / "v2")
    make_bundle(float("nan")).save(models / "nan")
    make_bundle(members=1).save(models / "half")
    (models / "unloadable").mkdir()
    (models / "unloadable" / "bundle.json").write_text("{}")
    promote(models, "v1")
    return tmp_path


def settings_for(program: Path, redis_url: str | None, prefix: str, **overrides) -> ServeConfig:
    values = {
        "model_uri": str(program / "models" / "champion"),
        "caps_path": program / "caps.yaml",
        "catalog_date": TODAY,
        "app_api_keys": f"tests:{APP_KEY}",
        "admin_api_keys": f"ops:{ADMIN_KEY}",
        "redis_url": redis_url,
        "key_prefix": prefix,
        "store_timeout_ms": 2000,
    }
    return ServeConfig(**values | overrides)


@pytest.fixture
def running(live_server) -> Callable[[ServeConfig, Path], AbstractContextManager[httpx.Client]]:
    """A context-manager function: a serving process in a thread (its own app, store client
    and refresher) on a free port of 127.0.0.1, started with the app's startup; yields a
    client of it."""

    @contextmanager
    def run_process(settings: ServeConfig, data_dir: Path) -> Iterator[httpx.Client]:
        app = create_app(settings, data_dir=data_dir)
        with (
            live_server(app, lifespan="on") as url,
            httpx.Client(base_url=url, timeout=10) as client,
        ):
            yield client

    return run_process


@pytest.fixture
def two_processes(
    program, redis_url, redis_key_prefix, running
) -> Iterator[tuple[httpx.Client, ...]]:
    """Two serving processes sharing one Redis prefix."""
    settings = settings_for(program, redis_url, redis_key_prefix)
    with ExitStack() as stack:
        yield tuple(stack.enter_context(running(settings, program / "data")) for _ in range(2))


def offers(client: httpx.Client, member_id: str = "alice") -> tuple[str, list[str]]:
    """The model version and offer ids of one offers request (which must succeed)."""
    response = client.get(f"/v1/members/{member_id}/offers", headers=APP)
    assert response.status_code == 200, response.text
    body = response.json()
    return body["model_version"], [offer["offer_id"] for offer in body["offers"]]


HANG_GUARD_SECONDS = 60
"""Only stops a hung test; propagation times are measured by a benchmark, not asserted."""


def wait_until(condition: Callable[[], bool]) -> None:
    """Check `condition` back to back (each check is a request to a server) until it holds.

    No timing is asserted here (that is `benchmarks/live_propagation.py`'s job); the guard
    only stops a test that would otherwise hang when a change never arrives."""
    give_up_at = time.monotonic() + HANG_GUARD_SECONDS
    while not condition():
        assert time.monotonic() < give_up_at, f"never held within {HANG_GUARD_SECONDS} s"


# ---------------------------------------------------------------- caps


def test_cap_change_through_one_process_is_enforced_at_once_there_and_then_by_another(
    two_processes,
):
    first, second = two_processes
    assert offers(second)[1] == ["glow-beauty", "fresh-grocery"]

    put = first.put("/v1/caps", json=PAUSED, headers=ADMIN)
    here = offers(first)[1]
    wait_until(lambda: offers(second)[1] == [])
    history = second.get("/v1/caps/history", headers=ADMIN).json()

    assert put.status_code == 200
    assert (put.json()["version"], put.json()["actor"]) == (2, "ops")
    assert here == []
    assert [(change["version"], change["actor"]) for change in history] == [
        (2, "ops"),
        (1, "startup"),
    ]
    assert history[0]["old"] == {"rules": [INITIAL_RULES[0] | {"counts": "served"}]}
    assert history[0]["new"] == {"rules": [PAUSED["rules"][0] | {"counts": "served"}]}
    assert history[1]["old"] is None


def test_a_process_started_later_serves_the_stored_caps_not_the_file(
    program, redis_url, redis_key_prefix, running
):
    settings = settings_for(program, redis_url, redis_key_prefix)
    with running(settings, program / "data") as first:
        first.put("/v1/caps", json=PAUSED, headers=ADMIN)
    with running(settings, program / "data") as restarted:
        caps = restarted.get("/v1/caps", headers=ADMIN).json()
        assert offers(restarted)[1] == []

    assert (caps["version"], [rule["name"] for rule in caps["rules"]]) == (2, ["paused"])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_process_started_while_redis_is_down_follows_the_caps_once_it_is_back(program, running):
    port = free_port()
    settings = settings_for(program, f"redis://127.0.0.1:{port}/0", "perkrank-live")
    with running(settings, program / "data") as client:
        while_down = client.get("/v1/members/alice/offers", headers=APP)
        redis_server = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        try:
            wait_until(lambda: client.get("/readyz").status_code == 200)
            other_process = RedisStateStore(settings.redis_url, settings.key_prefix, 2000)
            other_process.seed_caps(CapsConfig(rules=INITIAL_RULES), "startup", time.time())
            other_process.put_caps(CapsConfig.model_validate(PAUSED), "marketing", time.time())
            wait_until(lambda: offers(client)[1] == [])
            history = client.get("/v1/caps/history", headers=ADMIN).json()
        finally:
            redis_server.terminate()
            redis_server.wait(timeout=10)

    assert while_down.status_code == 503
    assert [(change["version"], change["actor"]) for change in history] == [
        (2, "marketing"),
        (1, "startup"),
    ]


@pytest.fixture
def client(program) -> Iterator[TestClient]:
    """One process with the in-process store."""
    app = create_app(settings_for(program, None, "perkrank"), data_dir=program / "data")
    with TestClient(app) as test_client:
        yield test_client


def test_caps_file_is_version_1(client):
    caps = client.get("/v1/caps", headers=ADMIN).json()

    assert (caps["version"], caps["actor"]) == (1, "startup")
    assert caps["rules"] == [INITIAL_RULES[0] | {"counts": "served"}]


def rule_set(**fields) -> dict:
    good = {"name": "weekly", "scope": "member_offer", "limit": 3, "window": "week"}
    return {"rules": [good, good | {"name": "daily"} | fields]}


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (rule_set(limit=-1), "limit", "greater than or equal to 0"),
        (rule_set(window="fortnight"), "window", "unknown window 'fortnight'"),
        (rule_set(window=-60), "window", "must be positive"),
        (rule_set(scope="member_moon"), "scope", "'member_offer', 'member_partner'"),
        (rule_set(counts="views"), "counts", "'served', 'impression'"),
        (rule_set(colour="red"), "colour", "Extra inputs are not permitted"),
    ],
)
def test_bad_rules_are_rejected_naming_rule_and_field_and_change_nothing(
    client, body, field, message
):
    response = client.put("/v1/caps", json=body, headers=ADMIN)

    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    assert (problem["rule"], problem["name"], problem["field"]) == (1, "daily", field)
    assert message in problem["msg"]
    assert problem["message"].startswith(f"rule 1 (daily), field {field}: ")
    assert client.get("/v1/caps", headers=ADMIN).json()["version"] == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"rules": [], "rule_set": []}, "rule_set: Extra inputs are not permitted"),
        (rule_set(name="weekly"), "rules: Value error, duplicate rule names: weekly"),
    ],
)
def test_bad_rule_sets_are_rejected(client, body, message):
    response = client.put("/v1/caps", json=body, headers=ADMIN)

    assert response.status_code == 422
    assert [problem["message"] for problem in response.json()["detail"]] == [message]


@pytest.mark.parametrize(
    ("method", "path", "body", "content_type"),
    [
        ("get", "/v1/caps", "", CSV),
        ("put", "/v1/caps", json.dumps(PAUSED), {"Content-Type": "application/json"}),
        ("get", "/v1/caps/history", "", CSV),
        ("put", "/v1/admin/offers", offers_file(NEXT_OFFERS), CSV),
        ("get", "/v1/admin/offers/history", "", CSV),
        ("post", "/v1/admin/reload", "", CSV),
    ],
)
def test_live_changes_need_an_admin_key(client, method, path, body, content_type):
    with_app_key = client.request(method, path, headers=APP | content_type, content=body)
    without_key = client.request(method, path, headers=content_type, content=body)

    assert with_app_key.status_code == 403
    assert without_key.status_code == 401
    assert client.get("/v1/caps", headers=ADMIN).json()["version"] == 1
    assert client.get("/v1/admin/offers/history", headers=ADMIN).json() == []


# ---------------------------------------------------------------- catalog


def test_bad_catalog_is_rejected_and_a_good_one_serves_on_every_process(two_processes):
    first, second = two_processes

    bad = first.put("/v1/admin/offers", content=offers_file(BAD_OFFERS), headers=ADMIN | CSV)
    after_bad = offers(first)[1], offers(second)[1]
    good = first.put("/v1/admin/offers", content=offers_file(NEXT_OFFERS), headers=ADMIN | CSV)
    here = offers(first)[1]
    wait_until(lambda: offers(second)[1] == here)
    history = second.get("/v1/admin/offers/history", headers=ADMIN).json()

    assert bad.status_code == 422
    problems = bad.json()["detail"]
    assert {(problem["row"], problem["field"]) for problem in problems} == BAD_OFFER_PROBLEMS
    assert "offers.csv row 3, field partner_id: 'P9' is not in the partners file" in [
        problem["message"] for problem in problems
    ]
    assert after_bad == (["glow-beauty", "fresh-grocery"], ["glow-beauty", "fresh-grocery"])
    assert good.status_code == 200
    assert (good.json()["version"], good.json()["offers"], good.json()["actor"]) == (1, 3, "ops")
    assert sorted(here) == ["fresh-snacks", "glow-fuel", "north-bakery"]
    assert [(change["version"], change["new"]["offers"]) for change in history] == [(1, 3)]


def test_offers_of_an_unknown_content_type_or_too_large_are_refused(program):
    settings = settings_for(program, None, "perkrank", max_upload_bytes=100)
    client = TestClient(create_app(settings, data_dir=program / "data"))
    json_body = ADMIN | {"Content-Type": "application/json"}

    with client:
        unknown_type = client.put("/v1/admin/offers", content=b"{}", headers=json_body)
        too_large = client.put(
            "/v1/admin/offers", content=offers_file(NEXT_OFFERS), headers=ADMIN | CSV
        )
        history = client.get("/v1/admin/offers/history", headers=ADMIN).json()

    assert unknown_type.status_code == 415
    assert "text/csv" in unknown_type.json()["detail"]
    assert too_large.status_code == 413
    assert too_large.json()["detail"] == (
        "the request body is larger than 100 bytes (max_upload_bytes)"
    )
    assert history == []


def offers_files(rows: list[str]) -> dict[str, tuple[bytes, dict[str, str]]]:
    """`rows` as a gzipped CSV and as a Parquet file, each with its Content-Type."""
    frame = pd.DataFrame([row.split(",") for row in rows], columns=OFFERS_HEADER.split(","))
    parquet = io.BytesIO()
    frame.to_parquet(parquet)
    return {
        "gzip": (gzip.compress(offers_file(rows).encode()), {"Content-Type": "application/gzip"}),
        "parquet": (parquet.getvalue(), {"Content-Type": "application/vnd.apache.parquet"}),
    }


@pytest.mark.parametrize("kind", ["gzip", "parquet"])
def test_an_offers_file_larger_than_the_limit_uncompressed_is_refused(program, kind):
    settings = settings_for(program, None, "perkrank", max_upload_table_bytes=20_000)
    padded = [row.replace("Fuel deal", "Fuel deal " + "x" * 50_000) for row in NEXT_OFFERS]
    large, content_type = offers_files(padded)[kind]
    small, _ = offers_files(NEXT_OFFERS)[kind]

    with TestClient(create_app(settings, data_dir=program / "data")) as client:
        refused = client.put("/v1/admin/offers", content=large, headers=ADMIN | content_type)
        history = client.get("/v1/admin/offers/history", headers=ADMIN).json()
        published = client.put("/v1/admin/offers", content=small, headers=ADMIN | content_type)

    assert len(large) < 20_000
    assert refused.status_code == 413
    assert refused.json()["detail"] == (
        "the offers table is larger than 20000 bytes uncompressed (max_upload_table_bytes)"
    )
    assert history == []
    assert published.status_code == 200, published.text
    assert published.json()["offers"] == 3


def test_publishing_needs_the_partners_table(program):
    bundle = make_bundle()
    settings = settings_for(program, None, "perkrank")
    context = build_context(
        bundle=bundle,
        model_version="test",
        catalog=build_catalog([], {}, bundle),
        store=MemoryStateStore(),
        caps=CapsConfig(),
        settings=settings,
    )
    app = create_app(settings, Runtime(context))

    response = TestClient(app).put(
        "/v1/admin/offers", content=offers_file(NEXT_OFFERS), headers=ADMIN | CSV
    )

    assert response.status_code == 409
    assert "without a partners table" in response.json()["detail"]


def test_the_refresher_swaps_contexts_in_its_holder_without_any_app(program):
    settings = settings_for(program, None, "perkrank")
    runtime = bootstrap(settings, program / "data")
    holder = ContextHolder(runtime.context)
    live = LiveRefresher(holder, settings)
    first = holder.current

    live.put_caps(CapsConfig.model_validate(PAUSED), "ops")
    offers = read_offers_file(offers_file(NEXT_OFFERS).encode(), ".csv", runtime.partners, 1 << 20)
    live.publish_catalog(offers, "sha-of-the-file", "ops")
    promote(program / "models", "v2")
    live.check_model()

    current = holder.current
    assert (first.caps_version, first.catalog_version, first.model_version) == (0, 0, "local:v1")
    assert (current.caps_version, current.catalog_version) == (2, 1)
    assert current.model_version == "local:v2"
    assert [rule.name for rule in current.rules()] == ["paused"]
    assert sorted(offer.offer_id for offer in current.ranker.catalog.offers) == [
        "fresh-snacks",
        "glow-fuel",
        "north-bakery",
    ]
    assert runtime.context.store.get_catalog().sha256 == "sha-of-the-file"


def test_levers_follow_to_other_processes_and_survive_catalogs_and_models(program):
    settings = settings_for(program, None, "perkrank")
    runtime = bootstrap(settings, program / "data")
    here = LiveRefresher(ContextHolder(runtime.context), settings)
    there = LiveRefresher(ContextHolder(runtime.context), settings)  # the same store
    bury = LeversConfig.model_validate(
        {"levers": [{"name": "bury", "target": "partner", "value": "P1", "multiplier": 0.5}]}
    )

    stored = here.put_levers(bury, "ops")
    there.refresh_settings()
    followed = there.context
    offers = read_offers_file(offers_file(NEXT_OFFERS).encode(), ".csv", runtime.partners, 1 << 20)
    here.publish_catalog(offers, "sha-of-the-file", "ops")
    promote(program / "models", "v2")
    here.check_model()

    assert (stored.version, stored.actor) == (1, "ops")
    assert (followed.levers_version, followed.ranker.levers) == (1, bury.levers)
    assert here.context.model_version == "local:v2"
    assert here.context.catalog_version == 1
    assert here.context.ranker.levers == bury.levers
    assert [change.version for change in runtime.context.store.levers_history(10)] == [1]


# ---------------------------------------------------------------- models


def test_model_swap_during_a_stream_of_requests_fails_none_of_them(
    program, redis_url, redis_key_prefix, running
):
    settings = settings_for(program, redis_url, redis_key_prefix)
    halfway, swapped = threading.Event(), threading.Event()
    answers: list[tuple[int, str]] = []

    def stream(url: str) -> None:
        answered_after_swap = 0
        with httpx.Client(base_url=url, headers=APP, timeout=10) as http:
            while answered_after_swap < 50 and len(answers) < 2000:
                after_swap = swapped.is_set()
                response = http.get(
                    f"/v1/members/{('alice', 'bob', 'carol')[len(answers) % 3]}/offers"
                )
                answers.append((response.status_code, response.json().get("model_version")))
                if after_swap:
                    answered_after_swap += 1
                if len(answers) == 50:
                    halfway.set()

    with running(settings, program / "data") as client:
        requests = threading.Thread(target=stream, args=(str(client.base_url),))
        requests.start()
        assert halfway.wait(timeout=30)
        promote(program / "models", "v2")
        reload = client.post("/v1/admin/reload", headers=ADMIN)
        swapped.set()
        requests.join(timeout=60)

    versions = [version for _, version in answers]
    first_new = versions.index("local:v2")
    assert reload.json()["model_version"] == "local:v2"
    assert {status for status, _ in answers} == {200}
    assert first_new >= 50
    assert set(versions[:first_new]) == {"local:v1"}
    assert set(versions[first_new:]) == {"local:v2"}
    assert len(versions) - first_new >= 50


@pytest.mark.parametrize("broken", ["nan", "unloadable"])
def test_a_broken_model_version_leaves_the_old_one_serving(program, broken):
    app = create_app(settings_for(program, None, "perkrank"), data_dir=program / "data")
    with TestClient(app) as client:
        promote(program / "models", broken)
        rejected = client.post("/v1/admin/reload", headers=ADMIN)
        still = client.get("/v1/members/alice/offers", headers=APP)
        promote(program / "models", "v2")
        fixed = client.post("/v1/admin/reload", headers=ADMIN)

    assert rejected.status_code == 200
    assert rejected.json()["model_version"] == "local:v1"
    assert still.status_code == 200
    assert still.json()["model_version"] == "local:v1"
    assert still.json()["offers"]
    assert fixed.json()["model_version"] == "local:v2"


def test_a_model_that_knows_too_few_of_the_catalogs_members_is_not_swapped_in(program, caplog):
    settings = settings_for(program, None, "perkrank")
    holder = ContextHolder(bootstrap(settings, program / "data").context)
    promote(program / "models", "half")

    with caplog.at_level("ERROR", logger="perkrank.serving.live"):
        LiveRefresher(holder, settings).check_model()

    assert holder.current.model_version == "local:v1"
    assert "model local:half rejected; still serving local:v1" in caplog.text
    assert "knows 1 of the catalog's 2 members (50.0%), fewer than min_known_members 90%" in (
        caplog.text
    )
    lenient = settings.model_copy(update={"min_known_members": 0.5})
    LiveRefresher(holder, lenient).check_model()
    assert holder.current.model_version == "local:half"


def test_reload_through_one_process_swaps_the_model_on_another(two_processes, program):
    first, second = two_processes
    promote(program / "models", "v2")

    first.post("/v1/admin/reload", headers=ADMIN)

    wait_until(lambda: offers(second)[0] == "local:v2")


def test_a_new_champion_is_found_by_polling_without_a_reload(program, running):
    settings = settings_for(program, None, "perkrank", model_poll_seconds=0.2)
    with running(settings, program / "data") as client:
        assert offers(client)[0] == "local:v1"
        promote(program / "models", "v2")

        wait_until(lambda: offers(client)[0] == "local:v2")


# ---------------------------------------------------------------- command line


@pytest.fixture
def service(program, running) -> Iterator[str]:
    """A running service with the in-process store; yields its URL."""
    with running(settings_for(program, None, "perkrank"), program / "data") as client:
        yield str(client.base_url)


def test_cli_shows_diffs_sets_and_audits_caps(service, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PERKRANK_ADMIN_API_KEY", ADMIN_KEY)
    new_rules = tmp_path / "new-caps.yaml"
    new_rules.write_text(
        yaml.safe_dump(
            {
                "rules": [
                    INITIAL_RULES[0] | {"limit": 50},
                    {
                        "name": "partner_week",
                        "scope": "member_partner",
                        "limit": 4,
                        "window": "week",
                    },
                ]
            }
        )
    )

    def perkrank(*arguments: str) -> tuple[int, str]:
        code = main([*arguments, "--url", service])
        return code, capsys.readouterr().out

    shown = perkrank("caps", "show")
    diff = perkrank("caps", "diff", str(new_rules))
    applied = perkrank("caps", "set", str(new_rules))
    diff_after = perkrank("caps", "diff", str(new_rules))
    history = perkrank("caps", "history")

    assert shown[0] == 0
    assert shown[1].startswith("# caps version 1, by startup, ")
    assert yaml.safe_load(shown[1])["rules"] == [INITIAL_RULES[0] | {"counts": "served"}]
    changes = [
        "~ member_offer_day: limit 100 → 50",
        "+ partner_week: scope member_partner, limit 4, window week, counts served",
    ]
    assert diff == (1, "\n".join(["against caps version 1:", *changes]) + "\n")
    assert applied == (0, "\n".join([*changes, "caps version 2 in force (was 1)"]) + "\n")
    assert diff_after == (0, "against caps version 2:\nno differences\n")
    assert history[0] == 0
    assert "version 2, by ops" in history[1]
    assert "  ~ member_offer_day: limit 100 → 50" in history[1]


def test_cli_rejected_caps_name_the_rule(service, tmp_path, capsys):
    bad_rules = tmp_path / "bad-caps.yaml"
    bad_rules.write_text(yaml.safe_dump({"rules": [INITIAL_RULES[0] | {"limit": -5}]}))

    code = main(["caps", "set", str(bad_rules), "--url", service, "--api-key", ADMIN_KEY])

    assert code == 1
    assert "rule 0 (member_offer_day), field limit: " in capsys.readouterr().err


def test_cli_without_a_key_or_a_service_exits_2(service, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("PERKRANK_ADMIN_API_KEY", raising=False)
    port = free_port()

    no_key = main(["caps", "show", "--url", service])
    no_service = main(["caps", "show", "--url", f"http://127.0.0.1:{port}", "--api-key", "x"])

    assert (no_key, no_service) == (2, 2)
    errors = capsys.readouterr().err
    assert "no admin key" in errors
    assert "cannot reach" in errors


def test_cli_publishes_a_parquet_catalog_and_rejects_a_bad_csv(service, tmp_path, capsys):
    rows = [line.split(",") for line in NEXT_OFFERS]
    good = tmp_path / "offers.parquet"
    pd.DataFrame(rows, columns=OFFERS_HEADER.split(",")).to_parquet(good)
    bad = tmp_path / "offers.csv"
    bad.write_text(offers_file(BAD_OFFERS))
    options = ["--url", service, "--api-key", ADMIN_KEY]

    published = main(["offers", "publish", str(good), *options])
    output = capsys.readouterr().out
    rejected = main(["offers", "publish", str(bad), *options])
    errors = capsys.readouterr().err

    assert (published, rejected) == (0, 1)
    assert output == "catalog version 1 in force: 3 offers\n"
    assert "offers.csv row 4, field valid_to: 2026-06-01 is before valid_from 2026-06-30" in errors
    with httpx.Client(base_url=service) as client:
        assert sorted(offers(client)[1]) == ["fresh-snacks", "glow-fuel", "north-bakery"]


# ---------------------------------------------------------------- perkrank serve processes


def test_perkrank_serve_processes_and_workers_follow_one_cap_change(
    program, redis_url, redis_key_prefix, perkrank_serve, tmp_path
):
    environment = {
        "PERKRANK_REDIS_URL": redis_url,
        "PERKRANK_KEY_PREFIX": redis_key_prefix,
        "PERKRANK_STORE_TIMEOUT_MS": "2000",
        "PERKRANK_CAPS_PATH": str(program / "caps.yaml"),
        "PERKRANK_CATALOG_DATE": TODAY,
        "PERKRANK_APP_API_KEYS": f"tests:{APP_KEY}",
        "PERKRANK_ADMIN_API_KEYS": f"ops:{ADMIN_KEY}",
    }

    def all_paused(url: str) -> bool:
        """Six requests on new connections (spread over the workers) all get no offers."""
        return all(
            httpx.get(f"{url}/v1/members/alice/offers", headers=APP).json()["offers"] == []
            for _ in range(6)
        )

    files = ["--data", str(program / "data"), "--model", str(program / "models" / "champion")]
    environment = os.environ | environment
    with (
        perkrank_serve(files, environment, tmp_path / "single.log") as single,
        perkrank_serve([*files, "--workers", "2"], environment, tmp_path / "pair.log", 2) as pair,
    ):
        before = httpx.get(f"{pair}/v1/members/alice/offers", headers=APP).json()["offers"]
        put = httpx.put(f"{single}/v1/caps", json=PAUSED, headers=ADMIN)
        wait_until(lambda: all_paused(single) and all_paused(pair))

    assert before
    assert put.status_code == 200
