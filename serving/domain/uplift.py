"""The uplift report of an experiment from decision and event rows: `perkrank experiments
report` reads them from exports, `GET /v1/admin/experiments/{name}/report` from the store.

Members are the units: a member belongs to the arm their decisions of the experiment name.
An event counts for the arm of the decision it names (`decision_id`, when that decision is one
of the experiment's), else for its member's arm; events of members the experiment never
answered are left out. Per arm: members, decisions, impressions, clicks, redemptions, click
and redemption rates (per impression) and redemptions per member. Each arm's lift over the
holdout is the difference of redemptions per member, with a 95 % normal (Welch) interval, and
relative to the holdout with a delta-method interval. The minimum detectable effect is the
absolute difference a two-sided 5 % test finds with 80 % power at the current members and
variances. The split is checked for a sample ratio mismatch (`srm_p_value`). Pure functions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from perkrank.experiment_config import Experiment
from perkrank.serving.domain.experiments import SRM_P_VALUE, srm_p_value

Z_95 = 1.959963984540054
"""The two-sided 5 % normal quantile."""
Z_80 = 0.8416212335729143
"""The one-sided 80 % power quantile."""


@dataclass(frozen=True)
class ArmReport:
    """One arm's counts, rates and (but for the holdout) its lift over the holdout."""

    arm: str
    members: int
    decisions: int
    impressions: int
    clicks: int
    redemptions: int
    click_rate: float
    redemption_rate: float
    redemptions_per_member: float
    lift: float | None = None
    lift_ci: tuple[float, float] | None = None
    relative_lift: float | None = None
    relative_lift_ci: tuple[float, float] | None = None
    mde: float | None = None


@dataclass(frozen=True)
class UpliftReport:
    """Every arm's report, the holdout's name and the split's SRM p-value."""

    experiment: str
    holdout: str
    arms: tuple[ArmReport, ...]
    srm_p_value: float

    def record(self) -> dict[str, Any]:
        """The report as JSON values."""
        return asdict(self)


def uplift_report(
    experiment: Experiment,
    decisions: Iterable[Mapping[str, Any]],
    events: Iterable[Mapping[str, Any]],
    holdout: str,
) -> UpliftReport:
    """The report of `experiment` from decision rows (one per offer shown, as exported) and
    event rows, against arm `holdout`."""
    arm_of_member: dict[str, str] = {}
    arm_of_decision: dict[str, str] = {}
    for row in decisions:
        if row["experiment"] == experiment.name and row["arm"]:
            arm_of_member.setdefault(row["member_id"], row["arm"])
            arm_of_decision[row["decision_id"]] = row["arm"]
    names = [arm.name for arm in experiment.arms]
    counts = {name: dict.fromkeys(("impression", "click", "redemption"), 0) for name in names}
    per_member: dict[str, int] = {}
    for event in events:
        arm = arm_of_decision.get(event.get("decision_id") or "") or arm_of_member.get(
            event["member_id"]
        )
        if arm in counts and event["type"] in counts[arm]:
            counts[arm][event["type"]] += 1
            if event["type"] == "redemption":
                per_member[event["member_id"]] = per_member.get(event["member_id"], 0) + 1
    values: dict[str, list[int]] = {name: [] for name in names}
    for member, arm in arm_of_member.items():
        if arm in values:
            values[arm].append(per_member.get(member, 0))
    decided = dict.fromkeys(names, 0)
    for arm in arm_of_decision.values():
        if arm in decided:
            decided[arm] += 1
    base = values[holdout]
    arms = tuple(
        _arm_report(
            name, values[name], decided[name], counts[name], None if name == holdout else base
        )
        for name in names
    )
    members = {name: len(values[name]) for name in names}
    shares = {arm.name: arm.share for arm in experiment.arms}
    return UpliftReport(experiment.name, holdout, arms, srm_p_value(members, shares))


def _arm_report(
    name: str, values: list[int], decisions: int, counts: dict[str, int], base: list[int] | None
) -> ArmReport:
    impressions = counts["impression"]
    report = ArmReport(
        arm=name,
        members=len(values),
        decisions=decisions,
        impressions=impressions,
        clicks=counts["click"],
        redemptions=counts["redemption"],
        click_rate=_ratio(counts["click"], impressions),
        redemption_rate=_ratio(counts["redemption"], impressions),
        redemptions_per_member=_ratio(sum(values), len(values)),
    )
    if base is None or len(values) < 2 or len(base) < 2:
        return report
    mean, variance = _mean_variance(values)
    base_mean, base_variance = _mean_variance(base)
    se = math.sqrt(variance / len(values) + base_variance / len(base))
    lift = mean - base_mean
    fields: dict[str, Any] = {
        "lift": lift,
        "lift_ci": (lift - Z_95 * se, lift + Z_95 * se),
        "mde": (Z_95 + Z_80) * se,
    }
    if base_mean > 0:
        relative = mean / base_mean - 1
        relative_se = math.sqrt(
            variance / len(values) / base_mean**2
            + mean**2 * base_variance / len(base) / base_mean**4
        )
        fields["relative_lift"] = relative
        fields["relative_lift_ci"] = (relative - Z_95 * relative_se, relative + Z_95 * relative_se)
    return ArmReport(**asdict(report) | fields)


def _mean_variance(values: list[int]) -> tuple[float, float]:
    """The mean and the sample (n - 1) variance."""
    mean = sum(values) / len(values)
    return mean, sum((value - mean) ** 2 for value in values) / (len(values) - 1)


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def markdown(report: UpliftReport) -> str:
    """The report as a markdown table, with the SRM verdict."""
    lines = [
        f"# Experiment {report.experiment}: uplift over {report.holdout}",
        "",
        "| arm | members | decisions | impressions | click rate | redemption rate | "
        "redemptions/member | lift (95 % CI) | relative lift (95 % CI) | MDE |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|---:|",
    ]
    for arm in report.arms:
        lift = "—" if arm.lift_ci is None else f"{arm.lift:+.4f} ({_interval(arm.lift_ci)})"
        relative = (
            "—"
            if arm.relative_lift_ci is None
            else f"{arm.relative_lift:+.1%} ({_interval(arm.relative_lift_ci, '.1%')})"
        )
        mde = "—" if arm.mde is None else f"{arm.mde:.4f}"
        lines.append(
            f"| {arm.arm} | {arm.members} | {arm.decisions} | {arm.impressions} | "
            f"{arm.click_rate:.2%} | {arm.redemption_rate:.2%} | "
            f"{arm.redemptions_per_member:.4f} | {lift} | {relative} | {mde} |"
        )
    mismatch = report.srm_p_value < SRM_P_VALUE
    verdict = "a sample ratio mismatch" if mismatch else "no sample ratio mismatch"
    lines += ["", f"SRM p-value {report.srm_p_value:.4g}: {verdict}."]
    return "\n".join(lines) + "\n"


def _interval(bounds: tuple[float, float], spec: str = "+.4f") -> str:
    return f"{bounds[0]:{spec}} … {bounds[1]:{spec}}"
