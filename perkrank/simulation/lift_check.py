"""Does the uplift report's interval cover the true lift? Pilots with a planted lift, checked.

`plant_pilot` generates a program, serves a champion that knows the planted tastes blurred by
`champion_noise` and a challenger blurred less, by as much as makes its TRUE redemptions per
member `target_lift` (relative) above the champion's (bisection on the challenger's noise,
each step ranking every member with the serving ranker). `lift_trial` runs one seeded pilot
with a holdout, champion and challenger arm and reads the report's lift of the challenger
over the champion beside the truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from perkrank.config import ServeConfig
from perkrank.experiment_config import ExperimentsConfig
from perkrank.features.loader import load_dataset
from perkrank.features.synthetic import generate
from perkrank.features.synthetic.response import ResponseModel
from perkrank.models.bundle import Bundle
from perkrank.serving.domain.catalog import catalog_from_dataset
from perkrank.serving.domain.experiments import Assignment
from perkrank.serving.domain.ranking import PERSONALIZED, OfferRanker
from perkrank.serving.domain.uplift import uplift_report
from perkrank.simulation.bundles import taste_bundle
from perkrank.simulation.pilot import shown_lists, simulate
from perkrank.simulation.truth import policy_truth

CHAMPION, CHALLENGER, HOLDOUT = "champion", "challenger", "holdout"
BISECTION_STEPS = 7


@dataclass(frozen=True)
class PlantedPilot:
    """A generated program with a champion and a challenger bundle beside it."""

    data_dir: Path
    members: int
    champion_uri: str
    challenger_noise: float
    true_per_member: dict[str, float]
    """Each model's TRUE redemptions per member over `days`, as planted."""
    days: int
    limit: int

    @property
    def true_lift(self) -> float:
        return self.true_per_member[CHALLENGER] - self.true_per_member[CHAMPION]


@dataclass(frozen=True)
class LiftTrial:
    """One seeded pilot: the report's lift of the challenger over the champion and the truth."""

    seed: int
    members: int
    lift: float
    lift_ci: tuple[float, float]
    mde: float
    true_lift: float
    srm_p_value: float

    @property
    def covers_truth(self) -> bool:
        return self.lift_ci[0] <= self.true_lift <= self.lift_ci[1]

    @property
    def excludes_zero(self) -> bool:
        return self.lift_ci[0] > 0 or self.lift_ci[1] < 0


def plant_pilot(
    work_dir: Path,
    *,
    members: int,
    champion_noise: float,
    target_lift: float,
    days: int,
    limit: int = 5,
    months: int = 3,
    seed: int = 21,
) -> PlantedPilot:
    """Generate the program and write both bundles under `work_dir` (see the docstring)."""
    data_dir = work_dir / "data"
    generate(data_dir, members=members, months=months, seed=seed, start=date(2025, 1, 1))
    dataset = load_dataset(data_dir)
    response = ResponseModel.load(data_dir)
    settings = ServeConfig(catalog_date=response.catalog_date)

    def true_per_member(bundle: Bundle) -> float:
        ranker = OfferRanker(bundle, catalog_from_dataset(dataset, bundle), settings)
        arm = Assignment("", "", PERSONALIZED)
        shown = shown_lists(ranker, list(response.member_rows), limit, arm)
        return policy_truth(response, shown, days).redemptions_per_member

    champion = taste_bundle(data_dir, dataset, champion_noise)
    goal = true_per_member(champion) * (1 + target_lift)
    low, high = 0.0, champion_noise  # less noise, more redemptions (on the whole)
    for _ in range(BISECTION_STEPS):
        middle = (low + high) / 2
        if true_per_member(taste_bundle(data_dir, dataset, middle)) > goal:
            low = middle
        else:
            high = middle
    challenger = taste_bundle(data_dir, dataset, (low + high) / 2)
    champion.save(work_dir / "models" / CHAMPION)
    challenger.save(work_dir / "models" / CHALLENGER)
    return PlantedPilot(
        data_dir=data_dir,
        members=members,
        champion_uri=str(work_dir / "models" / CHAMPION),
        challenger_noise=(low + high) / 2,
        true_per_member={
            CHAMPION: true_per_member(champion),
            CHALLENGER: true_per_member(challenger),
        },
        days=days,
        limit=limit,
    )


def experiments(seed: int, holdout_share: float = 0.1) -> ExperimentsConfig:
    """A holdout (popular), champion and challenger arm; the salt reshuffles members per seed."""
    share = (1 - holdout_share) / 2
    return ExperimentsConfig.model_validate(
        {
            "experiments": [
                {
                    "name": "simulated_lift",
                    "salt": f"seed-{seed}",
                    "arms": [
                        {"name": HOLDOUT, "share": holdout_share, "policy": "popular"},
                        {"name": CHAMPION, "share": share, "policy": PERSONALIZED},
                        {"name": CHALLENGER, "share": share, "model": CHALLENGER},
                    ],
                }
            ]
        }
    )


def lift_trial(pilot: PlantedPilot, seed: int, *, with_truth: bool = True) -> LiftTrial:
    """Run the pilot with `seed` and read the challenger's lift over the champion; the true
    lift is the simulation's (`with_truth=False`: the planted one, the same computation)."""
    config = experiments(seed)
    result = simulate(
        pilot.data_dir,
        days=pilot.days,
        seed=seed,
        model_uri=pilot.champion_uri,
        experiments=config,
        limit=pilot.limit,
        with_truth=with_truth,
    )
    report = uplift_report(config.experiments[0], result.decisions, result.events, CHAMPION)
    arm = next(arm for arm in report.arms if arm.arm == CHALLENGER)
    assert arm.lift is not None and arm.lift_ci is not None and arm.mde is not None
    true_lift = pilot.true_lift
    if with_truth:
        true_lift = (
            result.truth[CHALLENGER].redemptions_per_member
            - result.truth[CHAMPION].redemptions_per_member
        )
    return LiftTrial(
        seed=seed,
        members=sum(arm.members for arm in report.arms),
        lift=arm.lift,
        lift_ci=arm.lift_ci,
        mde=arm.mde,
        true_lift=true_lift,
        srm_p_value=report.srm_p_value,
    )
