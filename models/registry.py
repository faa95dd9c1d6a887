"""The MLflow model registry: log a bundle as a pyfunc model, promote it by alias, resolve it.

With `models/pyfunc.py` (the model MLflow serves), the only modules of perkrank that import
mlflow (which takes seconds to import: training, `perkrank promote` and serving start-up
import this module, the request path never does).

A registered model's versions carry two aliases: `challenger` (the last version registered by
`log_bundle`) and `champion` (the version serving loads, moved only by a promotion,
`training.promotion`). Each version is tagged with its evaluation metrics (`metric.ndcg_at_10`,
...), the data it saw (`lineage.*`) and the outcome of every promotion attempt
(`promotion_decision`, `promotion_reason`).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import scipy
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from perkrank.config import RegistryConfig
from perkrank.models.bundle import Bundle

# BundleModel stays importable from here: versions registered before it moved to
# perkrank.models.pyfunc name `perkrank.models.registry.BundleModel` in their model code.
from perkrank.models.pyfunc import (  # noqa: F401
    BUNDLE_ARTIFACT,
    EXAMPLE_INPUT,
    MODEL_CODE,
    BundleModel,
    example_input,
    score_rows,
)

CHALLENGER = "challenger"
CHAMPION = "champion"
MODEL_NAME_IN_RUN = "model"
REPORT_ARTIFACT_DIR = "report"
METRIC_TAG_PREFIX = "metric."
DECISION_TAG = "promotion_decision"
REASON_TAG = "promotion_reason"
PREVIOUS_CHAMPION_TAG = "previous_champion"
"""On a promoted version: the champion it replaced (where a roll back returns to)."""
ALIAS_CHANGES_TAG = "perkrank.champion_changes"
"""On the registered model: the last `ALIAS_CHANGES_KEPT` moves of `champion`, as JSON."""
ALIAS_CHANGES_KEPT = 20
CLI_ACTOR = "perkrank promote"


class RegistryError(RuntimeError):
    """The registry cannot answer: an unknown alias or version, or an unreachable store."""


@dataclass(frozen=True)
class ModelVersionInfo:
    """A registered model version and the run that logged it."""

    model_name: str
    version: str
    run_id: str
    model_uri: str
    """`models:/<name>/<version>`."""


@dataclass(frozen=True)
class PromotionDecision:
    """The outcome of `promote`: whether the candidate became champion, and why."""

    promoted: bool
    reason: str
    candidate_version: str
    champion_version_before: str | None


def metric_key(metric_name: str) -> str:
    """MLflow's name for a perkrank metric (`ndcg@10` → `ndcg_at_10`; MLflow forbids '@')."""
    return metric_name.replace("@", "_at_")


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested values as MLflow params: `{"als": {"factors": 64}}` → `{"als.factors": "64"}`."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        if isinstance(value, Mapping) and value:
            flat |= flatten_params(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = str(value)
    return flat


def log_bundle(
    bundle_dir: Path,
    *,
    registry: RegistryConfig,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    artifacts: list[Path],
    tags: Mapping[str, str],
    extra_artifacts: Mapping[str, Path] | None = None,
) -> ModelVersionInfo:
    """Log a bundle as a pyfunc model, register it and point the `challenger` alias at it.

    Parameters
    ----------
    bundle_dir:
        A directory written by `Bundle.save`.
    registry:
        Where to log: the active run if there is one, else a new run of `registry.experiment`
        at `registry.tracking_uri`; the version is registered as `registry.model_name`.
    params:
        Run parameters, nested mappings allowed (logged as `a.b.c`).
    metrics:
        Evaluation metrics by perkrank name (`ndcg@10`, `als.ndcg@10`); logged on the run and
        tagged on the version (`metric.ndcg_at_10`).
    artifacts:
        Files logged under `report/` in the run (evaluation report, charts).
    tags:
        Tags of both the run and the version.
    extra_artifacts:
        Run artifact name → local file or directory (a directory is logged under that name).

    Returns
    -------
    The registered version, its run and `models:/<name>/<version>`.
    """
    metric_values = {metric_key(name): float(value) for name, value in metrics.items()}
    with tracking_run(registry) as run:
        mlflow.log_params(flatten_params(params))
        mlflow.log_metrics(metric_values)
        mlflow.set_tags(dict(tags))
        for path in artifacts:
            mlflow.log_artifact(str(path), artifact_path=REPORT_ARTIFACT_DIR)
        for name, path in (extra_artifacts or {}).items():
            if Path(path).is_dir():
                mlflow.log_artifacts(str(path), artifact_path=name)
            else:
                mlflow.log_artifact(str(path))
        bundle = Bundle.load(bundle_dir)
        example = example_input(bundle)
        example_output = score_rows(bundle.ranker, example)
        signature = mlflow.models.infer_signature(example, example_output)
        with tempfile.TemporaryDirectory() as scratch:
            model_code = Path(scratch) / "bundle_model.py"
            model_code.write_text(MODEL_CODE)
            model_info = mlflow.pyfunc.log_model(
                name=MODEL_NAME_IN_RUN,
                python_model=str(model_code),
                artifacts={BUNDLE_ARTIFACT: str(bundle_dir)},
                signature=signature,
                input_example=example,
                pip_requirements=_requirements(),
            )
        version_tags = dict(tags) | {
            METRIC_TAG_PREFIX + key: repr(value) for key, value in metric_values.items()
        }
        version = mlflow.register_model(
            model_info.model_uri, registry.model_name, tags=version_tags
        )
        mlflow.MlflowClient().set_registered_model_alias(
            registry.model_name, CHALLENGER, version.version
        )
        return ModelVersionInfo(
            model_name=registry.model_name,
            version=str(version.version),
            run_id=run.info.run_id,
            model_uri=f"models:/{registry.model_name}/{version.version}",
        )


def promotion_versions(
    registry: RegistryConfig, version: str | None = None
) -> tuple[ModelVersion, ModelVersion | None]:
    """The candidate (`version`, else `challenger`) and the champion (None: none yet)."""
    client = registry_client(registry.tracking_uri)
    name = registry.model_name
    if version is None:
        candidate = _version_by_alias(client, name, CHALLENGER)
    else:
        candidate = _model_version(client, name, version)
    return candidate, _champion_or_none(client, name)


def record_promotion(
    registry: RegistryConfig,
    candidate: ModelVersion,
    champion: ModelVersion | None,
    promoted: bool,
    reason: str,
    actor: str = CLI_ACTOR,
) -> PromotionDecision:
    """Tag the decision and its reason on the candidate; if promoted, the champion it replaces
    too, move `champion` to it and note the move (by `actor`) on the registered model."""
    client = registry_client(registry.tracking_uri)
    name = registry.model_name
    decision_tags = {DECISION_TAG: "promoted" if promoted else "refused", REASON_TAG: reason}
    if promoted and champion is not None:
        decision_tags[PREVIOUS_CHAMPION_TAG] = str(champion.version)
    for key, value in decision_tags.items():
        registry_call(client.set_model_version_tag, name, candidate.version, key, value)
    if promoted:
        before = str(champion.version) if champion else None
        move_champion(client, name, str(candidate.version), before, "promote", actor)
    return PromotionDecision(
        promoted=promoted,
        reason=reason,
        candidate_version=str(candidate.version),
        champion_version_before=str(champion.version) if champion else None,
    )


def move_champion(
    client: mlflow.MlflowClient,
    name: str,
    version: str,
    before: str | None,
    action: str,
    actor: str,
) -> None:
    """Point `champion` at `version` and add the move to the model's `ALIAS_CHANGES_TAG`."""
    registry_call(client.set_registered_model_alias, name, CHAMPION, version)
    tags = registry_call(client.get_registered_model, name).tags
    change = {"at": time.time(), "actor": actor, "action": action, "before": before}
    changes = [change | {"after": version}, *json.loads(tags.get(ALIAS_CHANGES_TAG, "[]"))]
    registry_call(
        client.set_registered_model_tag,
        name,
        ALIAS_CHANGES_TAG,
        json.dumps(changes[:ALIAS_CHANGES_KEPT]),
    )


def download_run_artifact(
    tracking_uri: str, run_id: str, artifact_path: str, destination: Path
) -> Path:
    """Download one artifact (file or directory) of a run into `destination`; its local path."""
    mlflow.set_tracking_uri(tracking_uri)
    local = registry_call(
        mlflow.artifacts.download_artifacts,
        run_id=run_id,
        artifact_path=artifact_path,
        dst_path=str(destination),
        tracking_uri=tracking_uri,
    )
    return Path(local)


def resolve_bundle(
    model_uri: str, *, tracking_uri: str, cache_dir: Path | None = None
) -> tuple[Path, str]:
    """The local bundle directory `model_uri` names, and its version for logs and responses.

    `model_uri` is a bundle directory (version `local:<dirname>`) or `models:/<name>@<alias>`
    / `models:/<name>/<version>` (version `<name>/<version>`), downloaded into
    `cache_dir/<name>/<version>` (reused when already there) or a new temporary directory.
    """
    local = Path(model_uri)
    if (local / "bundle.json").is_file():
        return local, f"local:{local.resolve().name}"
    name, reference = _parse_models_uri(model_uri)
    client = registry_client(tracking_uri)
    if reference.startswith("@"):
        version = _version_by_alias(client, name, reference[1:]).version
    else:
        version = _model_version(client, name, reference).version
    if cache_dir is None:
        model_dir = Path(tempfile.mkdtemp(prefix="perkrank-model-"))
        _download_model(f"models:/{name}/{version}", model_dir, tracking_uri)
    else:
        model_dir = Path(cache_dir) / name / str(version)
        if not (model_dir / "MLmodel").is_file():
            _download_into_cache(f"models:/{name}/{version}", model_dir, tracking_uri)
    return _bundle_dir(model_dir), f"{name}/{version}"


@contextmanager
def tracking_run(registry: RegistryConfig) -> Iterator[mlflow.ActiveRun]:
    """The active MLflow run, else a new run of `registry.experiment` (created if need be)."""
    active = mlflow.active_run()
    if active is not None:
        yield active
        return
    mlflow.set_tracking_uri(registry.tracking_uri)
    mlflow.set_registry_uri(registry.tracking_uri)
    client = mlflow.MlflowClient()
    experiment = registry_call(client.get_experiment_by_name, registry.experiment)
    if experiment is None:
        location = _artifact_location(registry.tracking_uri)
        experiment_id = registry_call(client.create_experiment, registry.experiment, location)
    else:
        experiment_id = experiment.experiment_id
    with mlflow.start_run(experiment_id=experiment_id) as run:
        yield run


def _artifact_location(tracking_uri: str) -> str | None:
    """`mlartifacts/` beside a sqlite store (MLflow's default is ./mlruns in the working dir)."""
    database = _sqlite_database(tracking_uri)
    return (database.resolve().parent / "mlartifacts").as_uri() if database else None


def _sqlite_database(tracking_uri: str) -> Path | None:
    prefix = "sqlite:///"
    return Path(tracking_uri.removeprefix(prefix)) if tracking_uri.startswith(prefix) else None


def _requirements() -> list[str]:
    """Pinned requirements (MLflow would otherwise load the model in a subprocess to guess)."""
    return [
        f"mlflow=={mlflow.__version__}",
        f"numpy=={np.__version__}",
        f"pandas=={pd.__version__}",
        f"scipy=={scipy.__version__}",
    ]


def _parse_models_uri(model_uri: str) -> tuple[str, str]:
    """`models:/name@alias` → (name, "@alias"); `models:/name/3` → (name, "3")."""
    path = model_uri.removeprefix("models:/") if model_uri.startswith("models:/") else ""
    if "@" in path:
        name, alias = path.split("@", 1)
        return name, f"@{alias}"
    name, _, version = path.partition("/")
    if not name or not version.isdigit():
        raise RegistryError(
            f"{model_uri}: expected a bundle directory, models:/<name>@<alias> "
            "or models:/<name>/<version>"
        )
    return name, version


def registry_client(tracking_uri: str) -> mlflow.MlflowClient:
    """A client of an existing store (MLflow would create a missing sqlite database)."""
    database = _sqlite_database(tracking_uri)
    if database is not None and not database.is_file():
        raise RegistryError(f"{tracking_uri}: no MLflow database at {database}")
    return mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def registry_call(function: Any, *arguments: Any, **keywords: Any) -> Any:
    """`function(*arguments, **keywords)`, with MLflow's failures raised as RegistryError."""
    try:
        return function(*arguments, **keywords)
    except MlflowException as error:
        raise RegistryError(error.message) from error


def _model_version(client: mlflow.MlflowClient, name: str, version: str) -> ModelVersion:
    return registry_call(client.get_model_version, name, version)


def _version_by_alias(client: mlflow.MlflowClient, name: str, alias: str) -> ModelVersion:
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as error:
        raise RegistryError(f"models:/{name}@{alias}: {error.message}") from error


def _champion_or_none(client: mlflow.MlflowClient, name: str) -> ModelVersion | None:
    aliases = registry_call(client.get_registered_model, name).aliases
    return _model_version(client, name, aliases[CHAMPION]) if CHAMPION in aliases else None


def _download_model(model_uri: str, destination: Path, tracking_uri: str) -> None:
    # download_artifacts resolves models:/ URIs with the process-wide registry URI, whatever
    # its own arguments say, so point that at the same store first.
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    registry_call(
        mlflow.artifacts.download_artifacts,
        artifact_uri=model_uri,
        dst_path=str(destination),
        tracking_uri=tracking_uri,
    )


def _download_into_cache(model_uri: str, model_dir: Path, tracking_uri: str) -> None:
    """Download next to `model_dir`, then rename, so a cache entry is never half written."""
    model_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{model_dir.name}-", dir=model_dir.parent))
    _download_model(model_uri, staging, tracking_uri)
    os.replace(staging, model_dir)


def _bundle_dir(model_dir: Path) -> Path:
    """Where the pyfunc model in `model_dir` keeps its bundle artifact."""
    flavor = mlflow.models.Model.load(str(model_dir)).flavors["python_function"]
    return model_dir / flavor["artifacts"][BUNDLE_ARTIFACT]["path"]
