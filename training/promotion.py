"""`perkrank promote`: the candidate replaces the champion only if it ranks better on the same
window.

The window is the candidate's test window, rebuilt from the data directory its run recorded
(`training.lineage`; the files must still have the recorded SHA-256). Each side is scored by
`training.evaluation` with the model it serves (the second stage when its bundle has one, else
the blend; `ranker_step.evaluate_bundle`), fitted without that window: the candidate's evaluated
model (fitted before its test window, a run artifact); the champion's served model when it
was trained only on data before the window, else the champion's evaluated model when that one
was. The decision is the paired bootstrap over members (`training.compare`): promoted when the
whole 95 % interval of candidate − champion on `registry.promote_metric` (ndcg@k or recall@k)
lies above `registry.promote_margin`. A candidate trained on different data than the champion
(another input SHA-256) is refused unless forced; `force` promotes whatever the comparison says.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from mlflow.entities.model_registry import ModelVersion

from perkrank.config import InteractionConfig, RegistryConfig
from perkrank.features.interactions import cutoff_features
from perkrank.features.loader import DataValidationError, load_dataset
from perkrank.features.offer_features import item_feature_table, offer_regions
from perkrank.models import registry as models_registry
from perkrank.models.bundle import Bundle
from perkrank.models.factors import Factors
from perkrank.models.registry import PromotionDecision
from perkrank.training.compare import Difference, paired_bootstrap
from perkrank.training.lineage import (
    DATA_SHA256,
    combined_sha256,
    input_files,
    read_lineage_tags,
)
from perkrank.training.pipeline import EVALUATED_MODEL, EVALUATED_RANKER
from perkrank.training.ranker_step import evaluate_bundle
from perkrank.training.window import EvaluationWindow, prepare_window


class NotComparableError(RuntimeError):
    """The candidate and the champion cannot be scored on the same window."""


@dataclass(frozen=True)
class Comparison:
    """Both versions scored on the candidate's window."""

    difference: Difference
    window: EvaluationWindow
    champion_model: str
    """Which of the champion's models was scored, and why it is out of sample."""


def promote(
    registry: RegistryConfig,
    *,
    version: str | None = None,
    force: bool = False,
    actor: str = models_registry.CLI_ACTOR,
) -> PromotionDecision:
    """Compare the candidate (`version`, else `challenger`) with the champion and record the
    decision on the candidate, a promotion by `actor` (see the module docstring)."""
    candidate, champion = models_registry.promotion_versions(registry, version)
    promoted, reason = decide(registry, candidate, champion, force)
    return models_registry.record_promotion(registry, candidate, champion, promoted, reason, actor)


def decide(
    registry: RegistryConfig,
    candidate: ModelVersion,
    champion: ModelVersion | None,
    force: bool,
) -> tuple[bool, str]:
    """Whether the candidate becomes champion, and the reason (numbers included)."""
    if champion is None:
        return True, f"no champion yet: v{candidate.version} becomes champion"
    if champion.version == candidate.version:
        return False, f"v{candidate.version} is already the champion"
    lineage = read_lineage_tags(candidate.tags)
    champion_lineage = read_lineage_tags(champion.tags)
    warnings = []
    if champion_lineage and lineage and champion_lineage[DATA_SHA256] != lineage[DATA_SHA256]:
        warnings.append(
            f"WARNING: v{candidate.version} was trained on different data than champion "
            f"v{champion.version} (input SHA-256 {lineage[DATA_SHA256][:12]}… vs "
            f"{champion_lineage[DATA_SHA256][:12]}…)"
        )
        if not force:
            return False, f"{warnings[0]}; refused: --force to promote it anyway"
    try:
        if lineage is None:
            raise NotComparableError(
                f"v{candidate.version} records no data lineage (trained before lineage was "
                "recorded?): its evaluation window cannot be rebuilt"
            )
        comparison = compare(registry, candidate, champion, lineage, champion_lineage)
    except NotComparableError as error:
        if force:
            return True, "; ".join([*warnings, f"forced without a comparison: {error}"])
        return False, f"cannot compare on the same window: {error}; --force to promote anyway"
    better = comparison.difference.low > registry.promote_margin
    text = describe(candidate, champion, comparison, registry.promote_margin, better)
    if not better and force:
        return True, "; ".join([*warnings, f"forced: {text}"])
    return better, "; ".join([*warnings, text])


def describe(
    candidate: ModelVersion,
    champion: ModelVersion,
    comparison: Comparison,
    margin: float,
    better: bool,
) -> str:
    """Both numbers, the difference with its CI, and the rule applied."""
    difference, window = comparison.difference, comparison.window
    outcome = "lies above" if better else "does not lie above"
    return (
        f"{difference.metric} on v{candidate.version}'s test window [{window.start}, "
        f"{window.end}) ({difference.members:,} members): candidate v{candidate.version} "
        f"{difference.first:.4f}, champion v{champion.version} {difference.second:.4f} "
        f"({comparison.champion_model}); difference {difference.interval()}: the interval "
        f"{outcome} the margin {margin:.4f}"
    )


def compare(
    registry: RegistryConfig,
    candidate: ModelVersion,
    champion: ModelVersion,
    lineage: dict[str, Any],
    champion_lineage: dict[str, Any] | None,
) -> Comparison:
    """Score both versions on the candidate's rebuilt test window (raises NotComparableError)."""
    metric = registry.promote_metric
    name, _, k = metric.partition("@")
    if name not in ("ndcg", "recall") or not k.isdigit():
        raise NotComparableError(
            f"promote_metric {metric}: a paired comparison needs ndcg@k or recall@k"
        )
    window = rebuild_window(lineage)
    with tempfile.TemporaryDirectory(prefix="perkrank-promote-") as scratch:
        candidate_model = evaluated_model(registry, candidate, Path(scratch) / "candidate")
        champion_bundle, champion_model = champion_model_for(
            registry, champion, champion_lineage, window.start, Path(scratch) / "champion"
        )
    reports = {
        name: evaluate_bundle(window, bundle, [int(k)], name)
        for name, bundle in (("candidate", candidate_model), ("champion", champion_bundle))
    }
    difference = paired_bootstrap(
        reports["candidate"].member_values[metric],
        reports["champion"].member_values[metric],
        metric=metric,
        seed=lineage["evaluation"]["seed"],
    )
    return Comparison(difference, window, champion_model)


def rebuild_window(lineage: dict[str, Any]) -> EvaluationWindow:
    """The test window a run evaluated on, from its recorded data directory and settings."""
    data_dir = Path(lineage["data_dir"])
    if not data_dir.is_dir():
        raise NotComparableError(f"the candidate's data directory {data_dir} is gone")
    if combined_sha256(input_files(data_dir)) != lineage[DATA_SHA256]:
        raise NotComparableError(f"the files in {data_dir} changed since the candidate's run")
    try:
        dataset = load_dataset(data_dir)
    except DataValidationError as error:
        raise NotComparableError(f"the candidate's data no longer loads: {error}") from error
    split, settings = lineage["split"], lineage["evaluation"]
    start, end = date.fromisoformat(split["test_start"]), date.fromisoformat(split["test_end"])
    features = cutoff_features(
        dataset,
        datetime.combine(start, datetime.min.time()),
        InteractionConfig(**settings["interactions"]),
    )
    return prepare_window(
        dataset,
        start,
        end,
        member_features=features.member_features,
        items_bought_before=features.items_bought_before,
        offer_regions=offer_regions(dataset),
        item_features=item_feature_table(dataset),
        max_members=settings["max_members"],
        seed=settings["seed"],
    )


def evaluated_model(registry: RegistryConfig, version: ModelVersion, scratch: Path) -> Bundle:
    """The version's served model fitted before its test window (a run artifact; runs logged
    before it: their blend alone)."""
    errors = []
    for artifact in (EVALUATED_MODEL, EVALUATED_RANKER):
        try:
            path = models_registry.download_run_artifact(
                registry.tracking_uri, version.run_id, artifact, scratch / artifact
            )
            if artifact == EVALUATED_MODEL:
                return Bundle.load(path)
            blend = Factors.load(path)
            return Bundle(ranker=blend, fallback=blend)
        except (models_registry.RegistryError, OSError, ValueError) as error:
            errors.append(f"{artifact}: {error}")
    raise NotComparableError(
        f"v{version.version} has no readable evaluated model: {'; '.join(errors)}"
    )


def champion_model_for(
    registry: RegistryConfig,
    champion: ModelVersion,
    champion_lineage: dict[str, Any] | None,
    window_start: date,
    scratch: Path,
) -> tuple[Bundle, str]:
    """The champion's model that never saw purchases from `window_start` on, and a label."""
    bundle_dir, _ = models_registry.resolve_bundle(
        f"models:/{registry.model_name}/{champion.version}",
        tracking_uri=registry.tracking_uri,
        cache_dir=scratch,
    )
    bundle = Bundle.load(bundle_dir)
    trained_until = bundle.meta.get("trained_until")
    if trained_until is not None and date.fromisoformat(trained_until) <= window_start:
        return bundle, f"its served model, trained on data before {trained_until}"
    if champion_lineage is not None:
        test_start = date.fromisoformat(champion_lineage["split"]["test_start"])
        if test_start <= window_start:
            return (
                evaluated_model(registry, champion, scratch),
                f"its evaluated model, trained on data before {test_start}",
            )
    raise NotComparableError(
        f"champion v{champion.version} was trained on purchases from {window_start} on "
        "(the candidate's test window) and records no model fitted before it"
    )
