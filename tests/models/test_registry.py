"""The MLflow registry: log → load back → promote by alias → resolve for serving.

One sqlite store per module (creating one costs seconds); tests that register versions use
their own registered model name so that they do not see each other's aliases.
"""

import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from perkrank.config import RegistryConfig
from perkrank.features.vocabulary import (
    cold_member_feature_names,
    item_feature_names,
    item_id,
)
from perkrank.models.bundle import Bundle
from perkrank.models.factors import Factors
from perkrank.models.registry import (
    CHALLENGER,
    CHAMPION,
    DECISION_TAG,
    REASON_TAG,
    RegistryError,
    flatten_params,
    log_bundle,
    metric_key,
    resolve_bundle,
)
from perkrank.training.promotion import promote

MODEL_NAME = "perkrank-offers"
PARAMS = {"seed": 7, "als": {"factors": 3}, "blend": {"weights": {"als": 1.0}}}
METRICS = {"ndcg@10": 0.2, "recall@10": 0.4, "als.ndcg@10": 0.1}


def make_factors(seed: int) -> Factors:
    """Three members, three items (one bought again), dim 3, member and item features."""
    rng = np.random.default_rng(seed)
    member_features = [*cold_member_feature_names("north", "gold"), "region=south"]
    item_features = [
        "partner=P1",
        "partner=P9",
        "category=Food",
        "category=Travel",
        "scope=federal",
        "scope=local",
    ]
    repeat = sp.csr_matrix(np.array([[3.0, 0, 0], [0, 1.0, 0], [0, 0, 0]]))
    return Factors(
        member_ids=["M1", "M2", "M3"],
        member_vectors=rng.normal(size=(3, 3)),
        item_ids=[item_id("P1", "Food"), item_id("P2", "Travel"), item_id("P3", "Food")],
        item_vectors=rng.normal(size=(3, 3)),
        item_biases=rng.normal(size=3),
        member_feature_ids=member_features,
        member_feature_vectors=rng.normal(size=(len(member_features), 3)),
        item_feature_ids=item_features,
        item_feature_vectors=rng.normal(size=(len(item_features), 3)),
        item_feature_biases=rng.normal(size=len(item_features)),
        repeat=repeat,
        repeat_weight=0.7,
        name="blend",
    )


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    bundle = Bundle(ranker=make_factors(1), fallback=make_factors(2), meta={"name": "blend"})
    return bundle.save(tmp_path_factory.mktemp("bundle") / "bundle")


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh sqlite store; MLFLOW_TRACKING_URI unset so that nothing escapes to a real one."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        patch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        yield f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db"


@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "report.md"
    path.write_text("# evaluation\n")
    return path


@pytest.fixture(scope="module")
def registered(tracking_uri: str, bundle_dir: Path, report_file: Path):
    """The bundle logged and registered once as MODEL_NAME."""
    return log_bundle(
        bundle_dir,
        registry=RegistryConfig(tracking_uri=tracking_uri, model_name=MODEL_NAME),
        params=PARAMS,
        metrics=METRICS,
        artifacts=[report_file],
        tags={"blend_weights": '{"als": 1.0}'},
    )


def register(tracking_uri: str, bundle_dir: Path, model_name: str, ndcg: float) -> str:
    """Log the bundle as a new version of `model_name` with the given ndcg@10; its version."""
    registry = RegistryConfig(tracking_uri=tracking_uri, model_name=model_name)
    info = log_bundle(
        bundle_dir, registry=registry, params={}, metrics={"ndcg@10": ndcg}, artifacts=[], tags={}
    )
    return info.version


def client(tracking_uri: str) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def alias_version(tracking_uri: str, model_name: str, alias: str) -> str:
    """The version an alias points at (MLflow's sqlite store answers an int)."""
    return str(client(tracking_uri).get_model_version_by_alias(model_name, alias).version)


def test_metric_names_become_valid_mlflow_keys():
    assert metric_key("ndcg@10") == "ndcg_at_10"
    assert metric_key("als.hit_rate@5") == "als.hit_rate_at_5"


def test_nested_params_are_flattened_with_dotted_keys():
    assert flatten_params(PARAMS) == {
        "seed": "7",
        "als.factors": "3",
        "blend.weights.als": "1.0",
    }


def test_registered_model_scores_like_the_bundle(registered, tracking_uri, bundle_dir, score):
    rows = pd.DataFrame(
        [
            ("M1", "north", "gold", 900.0, "P1", "Food", "federal"),  # known, bought before
            ("M2", "north", "gold", 30.0, "P9", "Food", "local"),  # known member, new partner
            ("new", "north", "gold", 0.0, "P3", "Food", "federal"),  # new member, known item
            ("new", "south", "vip", 500.0, "P9", "Travel", "local"),  # new member and partner
            ("new", "east", "base", 0.0, "P7", "Toys", "other"),  # no known feature at all
        ],
        columns=["member_id", "region", "tier", "tenure_days", "partner_id", "category", "scope"],
    )
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@{CHALLENGER}")

    predicted = model.predict(rows)

    ranker = Bundle.load(bundle_dir).ranker
    expected = [
        score(
            ranker,
            row.member_id,
            cold_member_feature_names(row.region, row.tier, row.tenure_days),
            [item_id(row.partner_id, row.category)],
            [item_feature_names(row.partner_id, row.category, row.scope)],
        )[0]
        for row in rows.itertuples()
    ]
    assert np.allclose(predicted, expected, atol=1e-5)
    by_hand = ranker.member_vectors[0] @ ranker.item_vectors[0] + ranker.item_biases[0]
    assert np.isclose(predicted[0], by_hand + 0.7 * np.log1p(3.0), atol=1e-5)
    assert predicted[4] == 0.0


def test_log_bundle_records_params_metrics_artifacts_and_version_tags(
    registered, tracking_uri, report_file
):
    mlflow_client = client(tracking_uri)
    run = mlflow_client.get_run(registered.run_id)
    version = mlflow_client.get_model_version(MODEL_NAME, registered.version)

    assert run.data.params["als.factors"] == "3"
    assert run.data.params["blend.weights.als"] == "1.0"
    assert run.data.metrics == {"ndcg_at_10": 0.2, "recall_at_10": 0.4, "als.ndcg_at_10": 0.1}
    assert run.data.tags["blend_weights"] == '{"als": 1.0}'
    logged = [item.path for item in mlflow_client.list_artifacts(registered.run_id, "report")]
    assert logged == [f"report/{report_file.name}"]
    assert float(version.tags["metric.ndcg_at_10"]) == 0.2
    assert alias_version(tracking_uri, MODEL_NAME, CHALLENGER) == registered.version == "1"
    assert registered.model_uri == f"models:/{MODEL_NAME}/{registered.version}"


def test_artifacts_are_stored_beside_the_sqlite_database(registered, tracking_uri):
    database = Path(tracking_uri.removeprefix("sqlite:///"))
    run = client(tracking_uri).get_run(registered.run_id)

    assert run.info.artifact_uri.startswith((database.parent / "mlartifacts").as_uri())


def test_log_bundle_logs_into_the_active_run(tracking_uri, bundle_dir, tmp_path):
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    experiment_id = mlflow.create_experiment("outer", artifact_location=tmp_path.as_uri())
    with mlflow.start_run(experiment_id=experiment_id) as run:
        version = register(tracking_uri, bundle_dir, "active-run", ndcg=0.1)
        assert mlflow.active_run().info.run_id == run.info.run_id

    model_version = client(tracking_uri).get_model_version("active-run", version)
    assert model_version.run_id == run.info.run_id


def test_first_model_becomes_champion(tracking_uri, bundle_dir):
    version = register(tracking_uri, bundle_dir, "first", ndcg=0.1)
    registry = RegistryConfig(tracking_uri=tracking_uri, model_name="first")

    decision = promote(registry)

    assert decision.promoted
    assert (decision.candidate_version, decision.champion_version_before) == (version, None)
    assert alias_version(tracking_uri, "first", CHAMPION) == version


def test_version_without_lineage_is_refused_unless_forced(tracking_uri, bundle_dir):
    registry = RegistryConfig(tracking_uri=tracking_uri, model_name="no-lineage")
    champion = register(tracking_uri, bundle_dir, "no-lineage", ndcg=0.3)
    promote(registry)
    challenger = register(tracking_uri, bundle_dir, "no-lineage", ndcg=0.9)
    mlflow_client = client(tracking_uri)

    refused = promote(registry)

    assert not refused.promoted
    assert refused.reason.startswith("cannot compare on the same window: ")
    assert f"v{challenger} records no data lineage" in refused.reason
    assert refused.reason.endswith("--force to promote anyway")
    assert refused.champion_version_before == champion
    tags = mlflow_client.get_model_version("no-lineage", challenger).tags
    assert (tags[DECISION_TAG], tags[REASON_TAG]) == ("refused", refused.reason)
    assert alias_version(tracking_uri, "no-lineage", CHAMPION) == champion

    forced = promote(registry, version=challenger, force=True)

    assert forced.promoted
    assert forced.reason.startswith("forced without a comparison: ")
    tags = mlflow_client.get_model_version("no-lineage", challenger).tags
    assert (tags[DECISION_TAG], tags[REASON_TAG]) == ("promoted", forced.reason)
    assert alias_version(tracking_uri, "no-lineage", CHAMPION) == challenger
    assert not promote(registry, version=challenger).promoted  # already the champion


def test_promote_without_a_challenger_raises(tracking_uri, registered):
    with pytest.raises(RegistryError, match="never-registered"):
        promote(RegistryConfig(tracking_uri=tracking_uri, model_name="never-registered"))


def test_resolve_bundle_downloads_the_aliased_version(
    registered, tracking_uri, bundle_dir, tmp_path
):
    uri = f"models:/{MODEL_NAME}@{CHALLENGER}"

    directory, version = resolve_bundle(uri, tracking_uri=tracking_uri, cache_dir=tmp_path)
    again, _ = resolve_bundle(uri, tracking_uri=tracking_uri, cache_dir=tmp_path)

    assert version == f"{MODEL_NAME}/{registered.version}"
    assert directory.is_relative_to(tmp_path)
    assert again == directory
    loaded, original = Bundle.load(directory), Bundle.load(bundle_dir)
    assert loaded.meta == original.meta
    assert np.array_equal(loaded.ranker.member_vectors, original.ranker.member_vectors)
    assert np.array_equal(loaded.fallback.item_vectors, original.fallback.item_vectors)


def test_resolve_bundle_without_cache_downloads_a_version_into_a_temporary_directory(
    registered, tracking_uri, tmp_path, monkeypatch
):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    uri = f"models:/{MODEL_NAME}/{registered.version}"

    directory, version = resolve_bundle(uri, tracking_uri=tracking_uri)

    assert version == f"{MODEL_NAME}/{registered.version}"
    assert directory.is_relative_to(tmp_path)
    assert Bundle.load(directory).ranker.name == "blend"


def test_resolve_bundle_returns_a_local_bundle_directory_as_is(bundle_dir):
    directory, version = resolve_bundle(str(bundle_dir), tracking_uri="http://127.0.0.1:1")

    assert (directory, version) == (bundle_dir, "local:bundle")


def test_resolve_bundle_reports_a_missing_alias(registered, tracking_uri):
    with pytest.raises(RegistryError, match=f"models:/{MODEL_NAME}@staging"):
        resolve_bundle(f"models:/{MODEL_NAME}@staging", tracking_uri=tracking_uri)


def test_resolve_bundle_reports_a_missing_database_without_creating_one(tmp_path):
    database = tmp_path / "absent" / "mlflow.db"

    with pytest.raises(RegistryError, match="no MLflow database"):
        resolve_bundle(f"models:/{MODEL_NAME}@champion", tracking_uri=f"sqlite:///{database}")
    assert not database.parent.exists()


def test_resolve_bundle_reports_an_unreachable_server(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(RegistryError, match=f"127.0.0.1:{port}"):
        resolve_bundle(f"models:/{MODEL_NAME}@champion", tracking_uri=f"http://127.0.0.1:{port}")


def test_resolve_bundle_rejects_other_uris():
    with pytest.raises(RegistryError, match="expected a bundle directory"):
        resolve_bundle("runs:/0123/model", tracking_uri="http://127.0.0.1:1")


def test_mlflow_tracking_uri_environment_variable_wins_over_the_config(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.internal:5000")

    assert RegistryConfig().tracking_uri == "http://mlflow.internal:5000"
    assert RegistryConfig(tracking_uri="sqlite:///x.db").tracking_uri == (
        "http://mlflow.internal:5000"
    )


def test_resolve_bundle_uses_its_tracking_uri_whatever_the_process_wide_one_is(
    registered, tracking_uri, tmp_path
):
    elsewhere = f"sqlite:///{tmp_path}/elsewhere.db"
    mlflow.set_tracking_uri(elsewhere)
    mlflow.set_registry_uri(elsewhere)

    directory, version = resolve_bundle(
        f"models:/{MODEL_NAME}@{CHALLENGER}", tracking_uri=tracking_uri, cache_dir=tmp_path
    )

    assert version == f"{MODEL_NAME}/{registered.version}"
    assert Bundle.load(directory).ranker.name == "blend"
    assert not (tmp_path / "elsewhere.db").exists()
