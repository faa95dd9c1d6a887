"""`perkrank evaluate-offline`: a candidate model's clicks and redemptions estimated from the
decision log before it gets traffic (IPS, SNIPS and DR of `training.off_policy`).

The target policy is the candidate's deterministic personalized order, computed by the serving
ranker (`OfferRanker`, one scoring path: `models.scoring`) for each logged decision's member on
the decision's day, with the catalog and members of `--data`, cut to as many offers as the
decision showed. Caps, budgets and opt-outs are not replayed: the estimate is of the
candidate's ranking as the store would show it before skipping. Decisions that showed nothing
or did not follow a personalized order (a `popular` or `none` arm, a member who turned
personalization off) are left out: no model ranks those.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from perkrank.config import ConfigError, ServeConfig
from perkrank.serving.domain.decisions import Decision
from perkrank.serving.domain.events import OfferEvent
from perkrank.serving.domain.ranking import OfferRanker, OfferRequest
from perkrank.training.decision_log import (
    REWARDS,
    decisions_from_rows,
    events_from_rows,
    logged_lists,
    rewarded_offers,
)
from perkrank.training.off_policy import (
    Estimate,
    RewardModel,
    deterministic_target,
    doubly_robust,
    effective_sample_size,
    ips,
    snips,
)
from perkrank.training.uplift import read_rows

MODELS_SCHEME = "models:/"


@dataclass(frozen=True)
class OfflineEvaluation:
    """The candidate's estimates per reward (click, redemption) and estimator."""

    model_version: str
    decisions: int
    """Decisions evaluated."""
    left_out: int
    """Decisions without offers or without a personalized order."""
    agreement: float
    """Share of evaluated decisions whose first offer is the candidate's first."""
    effective_sample_size: list[float]
    """Per position: how many agreeing decisions the weights are worth."""
    estimates: dict[str, dict[str, Estimate]]

    def record(self) -> dict[str, Any]:
        """As JSON values."""
        return asdict(self)


def model_uri(model: str, served_uri: str) -> str:
    """The URI of `model`: a bundle directory or models:/ URI as it is, a version number or an
    alias of the served model's registered name (`served_uri`)."""
    if model.startswith(MODELS_SCHEME) or (Path(model) / "bundle.json").is_file():
        return model
    if not served_uri.startswith(MODELS_SCHEME):
        raise ConfigError(f"--model {model}: not a bundle directory (model_uri is no models:/)")
    name = served_uri.removeprefix(MODELS_SCHEME).split("@", 1)[0].split("/", 1)[0]
    return f"{MODELS_SCHEME}{name}/{model}" if model.isdigit() else f"{MODELS_SCHEME}{name}@{model}"


def load_ranker(model: str, data_dir: Path, settings: ServeConfig) -> tuple[OfferRanker, str]:
    """The serving ranker of `model` over the catalog and members of `data_dir`, and the
    model's version."""
    from perkrank.features.loader import load_dataset
    from perkrank.models.bundle import Bundle
    from perkrank.serving.bootstrap import resolve_model
    from perkrank.serving.domain.catalog import catalog_from_dataset

    directory, version = resolve_model(settings, model_uri(model, settings.model_uri))
    bundle = Bundle.load(directory)
    catalog = catalog_from_dataset(load_dataset(data_dir), bundle)
    return OfferRanker(bundle, catalog, settings), version


def target_lists(ranker: OfferRanker, decisions: Sequence[Decision]) -> list[list[str]]:
    """The candidate's personalized order for each decision, as long as the decision's list."""
    offers = ranker.catalog.offers
    lists = []
    for decision in decisions:
        count = len(decision.offers)
        request = OfferRequest(decision.member_id, decision.channel, count)
        region, tier = ranker.profile(request)
        day = ranker.day(decision.ts)
        exclusive, occasions = ranker.member_mechanics(
            decision.member_id, region, tier, day, decision.ts
        )
        tenure = ranker.tenure_days(decision.member_id, day)
        segment = ranker.segment(region, tier, day, tenure, exclusive, occasions)
        rows = ranker.shortlist(decision.member_id, segment, count).personalized.rows[:count]
        lists.append([offers[row].offer_id for row in rows])
    return lists


def evaluate_offline(
    ranker: OfferRanker,
    model_version: str,
    decisions: Sequence[Decision],
    events: Sequence[OfferEvent],
) -> OfflineEvaluation:
    """The candidate `ranker`'s estimates over the logged `decisions` and their `events`."""
    evaluated = [decision for decision in decisions if decision.offers and decision.personalized]
    if not evaluated:
        raise ConfigError("no logged decision showed a personalized list: nothing to evaluate")
    lists = target_lists(ranker, evaluated)
    unrewarded = logged_lists(evaluated, set())
    weights = deterministic_target(unrewarded, lists, RewardModel(unrewarded))
    estimates = {}
    for kind in REWARDS:
        logged = logged_lists(evaluated, rewarded_offers(decisions, events, kind))
        model = RewardModel(logged)
        target = deterministic_target(logged, lists, model)
        estimates[kind] = {
            "ips": ips(logged, target),
            "snips": snips(logged, target),
            "dr": doubly_robust(logged, target, model),
        }
    agreeing = sum(
        bool(shown) and decision.offers[0].offer_id == shown[0]
        for decision, shown in zip(evaluated, lists, strict=True)
    )
    return OfflineEvaluation(
        model_version=model_version,
        decisions=len(evaluated),
        left_out=len(decisions) - len(evaluated),
        agreement=agreeing / len(evaluated),
        effective_sample_size=effective_sample_size(unrewarded, weights),
        estimates=estimates,
    )


def evaluate_files(
    model: str, data_dir: Path, decisions_file: Path, events_file: Path, settings: ServeConfig
) -> OfflineEvaluation:
    """`evaluate_offline` of `model` over exported decisions and events (.csv or .parquet)."""
    decisions = _read(decisions_file, decisions_from_rows)
    events = _read(events_file, events_from_rows)
    ranker, version = load_ranker(model, data_dir, settings)
    return evaluate_offline(ranker, version, decisions, events)


def _read(path: Path, parse: Callable[[list[dict[str, Any]]], list[Any]]) -> list[Any]:
    try:
        return parse(read_rows(path))
    except (ValueError, KeyError) as error:
        raise ConfigError(f"{path}: {error}") from None


def markdown(evaluation: OfflineEvaluation) -> str:
    """The estimates as a markdown table, with the support they rest on."""
    lines = [
        f"# Off-policy estimate of {evaluation.model_version}",
        "",
        f"{evaluation.decisions} logged decisions evaluated ({evaluation.left_out} left out: "
        f"no offers or no personalized order); the candidate's first offer is the logged "
        f"first in {evaluation.agreement:.1%}; effective sample size per position: "
        + ", ".join(f"{size:.0f}" for size in evaluation.effective_sample_size)
        + ".",
        "",
        "| reward | estimator | per decision (95 % CI) | per impression (95 % CI) |",
        "|---|---|---|---|",
    ]
    for kind, found in evaluation.estimates.items():
        for name, estimate in found.items():
            per_decision = _value(estimate.per_decision, estimate.per_decision_ci)
            per_impression = _value(estimate.per_impression, estimate.per_impression_ci, ".2%")
            lines.append(f"| {kind} | {name.upper()} | {per_decision} | {per_impression} |")
    return "\n".join(lines) + "\n"


def _value(value: float, bounds: tuple[float, float], spec: str = ".4f") -> str:
    return f"{value:{spec}} ({bounds[0]:{spec}} … {bounds[1]:{spec}})"
