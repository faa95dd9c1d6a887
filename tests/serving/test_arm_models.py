"""Champion and challenger arms: each arm's model is loaded beside the served one, checked,
named in responses and in the decision log, follows its alias and the published catalog; a
model that cannot serve is refused and changes nothing."""

import math
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from perkrank.config import ServeConfig
from perkrank.experiment_config import ExperimentsConfig
from perkrank.models.bundle import Bundle
from perkrank.models.factors import Factors
from perkrank.serving.api.app import create_app
from perkrank.serving.arm_models import ModelRejectedError, alias_uri
from perkrank.serving.bootstrap import bootstrap
from perkrank.serving.domain.context import ContextHolder
from perkrank.serving.live import LiveRefresher
from perkrank.serving.state.memory import MemoryStateStore

APP = {"X-API-Key": "app-key-for-tests-0001"}
ADMIN = {"X-API-Key": "admin-key-for-tests-0001"}
ITEMS = ["P1|Beauty", "P2|Grocery"]


def bundle(alice: list[float], scale: float = 1.0) -> Bundle:
    """small_app's model with alice's vector `alice` ([1, 0]: Beauty first, [0, 1]: Grocery
    first); `scale` nan makes a broken one."""
    ranker = Factors(
        member_ids=["alice"],
        member_vectors=[alice],
        item_ids=ITEMS,
        item_vectors=np.array([[1.0, 0.0], [0.0, 1.0]]) * scale,
        item_biases=np.zeros(2),
        member_feature_ids=["region=north"],
        member_feature_vectors=[[0.5, 0.4]],
    )
    fallback = Factors(
        member_ids=[],
        member_vectors=np.zeros((0, 1)),
        item_ids=ITEMS,
        item_vectors=[[0.2], [0.5]],
        item_biases=np.zeros(2),
        member_feature_ids=["tier=base"],
        member_feature_vectors=np.ones((1, 1)),
    )
    return Bundle(ranker=ranker, fallback=fallback)


@pytest.fixture
def files(small_service_files: dict[str, Path]) -> dict[str, Path]:
    """small_app's service files, with versions `v2` (alice likes Grocery) and `broken` (NaN
    scores) beside the served `bundle`, and the alias `challenger` pointing at `v2`."""
    models = small_service_files["bundle"].parent
    bundle([0.0, 1.0]).save(models / "v2")
    bundle([1.0, 0.0], float("nan")).save(models / "broken")
    point(models, "challenger", "v2")
    return small_service_files


def point(models: Path, alias: str, version: str) -> None:
    """Point alias directory `alias` at `version` atomically, as a registry alias moves."""
    staging = models / f"{alias}.next"
    staging.symlink_to(models / version)
    os.replace(staging, models / alias)


def settings_of(files: dict[str, Path]) -> ServeConfig:
    return ServeConfig(
        model_uri=str(files["bundle"]),
        caps_path=files["caps"],
        catalog_date="2026-06-15",
        app_api_keys=f"tests:{APP['X-API-Key']}",
        admin_api_keys=f"ops:{ADMIN['X-API-Key']}",
    )


def split(challenger_share: float, model: str = "challenger", **challenger) -> dict:
    arms = [{"name": "challenger", "share": challenger_share, "model": model} | challenger]
    if challenger_share < 1:
        arms.insert(0, {"name": "champion", "share": round(1 - challenger_share, 6)})
    return {"experiments": [{"name": "models", "arms": arms}]}


def offers(client: TestClient, member_id: str) -> dict:
    response = client.get(f"/v1/members/{member_id}/offers", params={"limit": 2}, headers=APP)
    assert response.status_code == 200, response.text
    return response.json()


def test_each_arm_ranks_with_its_own_model_and_the_log_names_it(files):
    with TestClient(create_app(settings_of(files), data_dir=files["data"])) as client:
        before = offers(client, "alice")
        client.put("/v1/experiments", json=split(1.0), headers=ADMIN)
        challenged = offers(client, "alice")
        client.put("/v1/experiments", json=split(0.5), headers=ADMIN)
        answers = [offers(client, f"m-{number}") for number in range(40)]
        logged = client.get("/v1/admin/decisions", headers=ADMIN).json()["decisions"]

    assert (before["model_version"], challenged["model_version"]) == ("local:bundle", "local:v2")
    assert [offer["offer_id"] for offer in before["offers"]] == ["glow-beauty", "fresh-grocery"]
    assert [offer["offer_id"] for offer in challenged["offers"]] == ["fresh-grocery", "glow-beauty"]
    versions = {answer["arm"]: answer["model_version"] for answer in answers}
    assert versions == {"champion": "local:bundle", "challenger": "local:v2"}
    by_id = {decision["decision_id"]: decision["model_version"] for decision in logged}
    assert all(by_id[answer["decision_id"]] == answer["model_version"] for answer in answers)


@pytest.mark.parametrize(("model", "why"), [("missing", "missing"), ("broken", "non-finite")])
def test_an_arm_model_that_cannot_serve_is_refused_and_nothing_changes(files, model, why):
    with TestClient(create_app(settings_of(files), data_dir=files["data"])) as client:
        refused = client.put("/v1/experiments", json=split(0.5, model), headers=ADMIN)
        stored = client.get("/v1/experiments", headers=ADMIN).json()
        answer = offers(client, "alice")

    assert refused.status_code == 422
    assert why in refused.json()["detail"][0]["msg"]
    assert stored["version"] == 0
    assert (answer["experiment"], answer["model_version"]) == (None, "local:bundle")


def test_arm_models_follow_their_alias_the_catalog_and_other_processes(files, caplog):
    settings = settings_of(files)
    store = MemoryStateStore()
    first, second = (
        LiveRefresher(
            ContextHolder(replace(bootstrap(settings, files["data"]).context, store=store)),
            settings,
        )
        for _ in range(2)
    )
    experiments = ExperimentsConfig.model_validate(split(0.5))

    first.put_experiments(experiments, "ops")
    point(files["bundle"].parent, "challenger", "bundle")
    first.check_model()
    point(files["bundle"].parent, "challenger", "broken")
    with caplog.at_level("ERROR", logger="perkrank.serving.live"):
        second.refresh_settings()  # its settings thread, loading the arm model itself
        first.check_model()

    arm = first.context.arm_models["challenger"]
    assert arm.version == "local:bundle"
    assert arm.ranker.catalog.offers == first.context.ranker.catalog.offers
    assert second.context.experiments_version == 0  # its challenger is broken: not applied
    assert "experiments version 1 not applied" in caplog.text
    assert "model local:broken rejected; still serving local:bundle" in caplog.text


def test_a_published_catalog_ranks_for_every_arm_model(files):
    settings = settings_of(files)
    runtime = bootstrap(settings, files["data"])
    live = LiveRefresher(ContextHolder(runtime.context), settings)
    live.put_experiments(ExperimentsConfig.model_validate(split(0.5)), "ops")
    kept = [offer for offer in live.context.ranker.catalog.offers if offer.offer_id != "glow-vip"]

    live.publish_catalog(kept, "sha-of-the-file", "ops")

    arm = live.context.arm_models["challenger"]
    assert [offer.offer_id for offer in arm.ranker.catalog.offers] == [
        "glow-beauty",
        "fresh-grocery",
    ]
    assert arm.ranker.bundle is not live.context.ranker.bundle


def test_a_missing_alias_directory_is_rejected_by_put(files):
    settings = settings_of(files)
    live = LiveRefresher(ContextHolder(bootstrap(settings, files["data"]).context), settings)

    with pytest.raises(ModelRejectedError, match="nowhere"):
        live.put_experiments(ExperimentsConfig.model_validate(split(0.5, "nowhere")), "ops")


@pytest.mark.parametrize(
    ("model_uri", "expected"),
    [
        ("models:/perkrank-offers@champion", "models:/perkrank-offers@challenger"),
        ("models:/perkrank-offers/7", "models:/perkrank-offers@challenger"),
        ("/srv/models/champion", "/srv/models/challenger"),
    ],
)
def test_an_alias_names_the_served_models_name(model_uri, expected):
    assert alias_uri(model_uri, "challenger") == expected


def test_an_exploring_arm_logs_plackett_luce_propensities(files):
    temperature = 2.0
    exploring = split(1.0, exploration={"kind": "softmax", "temperature": temperature})
    with TestClient(create_app(settings_of(files), data_dir=files["data"])) as client:
        client.put("/v1/experiments", json=exploring, headers=ADMIN)
        answers = [offers(client, "alice") for _ in range(60)]
        logged = client.get("/v1/admin/decisions", headers=ADMIN).json()["decisions"]

    assert len(logged) == len(answers)
    for decision in logged:
        first, second = decision["offers"]
        weights = [math.exp(offer["score"] / temperature) for offer in (first, second)]
        assert first["propensity"] == pytest.approx(weights[0] / sum(weights))
        assert second["propensity"] == 1.0
    firsts = {answer["offers"][0]["offer_id"] for answer in answers}
    assert firsts == {"glow-beauty", "fresh-grocery"}  # both orders are shown


def test_opt_outs_apply_to_the_sampled_order_and_the_fallback_is_not_sampled(files):
    uniform = split(1.0, exploration={"kind": "epsilon", "epsilon": 1.0})
    with TestClient(create_app(settings_of(files), data_dir=files["data"])) as client:
        client.put("/v1/experiments", json=uniform, headers=ADMIN)
        sampled = offers(client, "alice")
        client.put("/v1/members/alice/preferences", json={"personalization": False}, headers=ADMIN)
        unsampled = offers(client, "alice")
        client.put(
            "/v1/members/alice/preferences", json={"opted_out_partners": ["P1"]}, headers=ADMIN
        )
        opted_out = [offers(client, "alice") for _ in range(20)]
        logged = client.get("/v1/admin/decisions", headers=ADMIN).json()["decisions"]

    assert [offer["offer_id"] for offer in unsampled["offers"]] == ["fresh-grocery", "glow-beauty"]
    assert sampled["personalized"] and not unsampled["personalized"]
    assert all(
        offer["offer_id"] == "fresh-grocery" for answer in opted_out for offer in answer["offers"]
    )
    assert all(len(answer["offers"]) == 1 for answer in opted_out)
    by_id = {decision["decision_id"]: decision for decision in logged}
    assert [offer["propensity"] for offer in by_id[unsampled["decision_id"]]["offers"]] == [1, 1]
    assert [offer["propensity"] for offer in by_id[sampled["decision_id"]]["offers"]] == [0.5, 1]
