"""Experiments as marketers configure them: arms, their shares, policies, models and
exploration (validated like every config; stored and audited as a live setting)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from perkrank.config_base import Section

ExperimentName = Annotated[str, Field(pattern=r"^[a-z0-9_]{1,64}$")]
SHARE_TOLERANCE = 1e-9


class SoftmaxExploration(Section):
    """Show offers drawn without replacement with probability ∝ exp(score / temperature)."""

    kind: Literal["softmax"]
    temperature: float = Field(gt=0, le=1e6)


class EpsilonExploration(Section):
    """At each rank: with probability `epsilon` a uniformly drawn offer, else the best left."""

    kind: Literal["epsilon"]
    epsilon: float = Field(gt=0, le=1)


Exploration = Annotated[SoftmaxExploration | EpsilonExploration, Field(discriminator="kind")]


class ExperimentArm(Section):
    """One arm: its share of the units, the policy it serves them, with which model, and how
    it explores (serving.domain.exploration)."""

    name: ExperimentName
    share: float = Field(gt=0, le=1)
    policy: Literal["personalized", "popular", "none"] = "personalized"
    """`personalized`: the served model (or `model`); `popular`: the non-personalized regional
    popularity order (the ranker's fallback); `none`: no offers at all."""
    model: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")] | None = None
    """A registry alias (e.g. `challenger`) of the served model's name; None: the served one."""
    exploration: Exploration | None = None
    """None: the order as ranked (propensity 1)."""

    @model_validator(mode="after")
    def _fits_policy(self) -> ExperimentArm:
        if self.model is not None and self.policy != "personalized":
            raise ValueError("only a personalized arm names a model")
        if self.exploration is not None and self.policy == "none":
            raise ValueError("an arm of policy none shows nothing to explore")
        return self


class Experiment(Section):
    """Units (members, or regions) split into arms by a salted hash (serving.domain.experiments)."""

    name: ExperimentName
    salt: str | None = Field(None, min_length=1, max_length=64)
    """The hash salt (None: the name); a new salt reshuffles every unit."""
    unit: Literal["member", "region"] = "member"
    arms: tuple[ExperimentArm, ...] = Field(min_length=1, max_length=100)

    @field_validator("arms")
    @classmethod
    def _valid_split(cls, arms: tuple[ExperimentArm, ...]) -> tuple[ExperimentArm, ...]:
        names = [arm.name for arm in arms]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"duplicate arm names: {', '.join(duplicates)}")
        total = sum(arm.share for arm in arms)
        if abs(total - 1) > SHARE_TOLERANCE:
            raise ValueError(f"the arms' shares must sum to 1, not {total:g}")
        return arms


class ExperimentsConfig(Section):
    """The experiments in force: a `PUT /v1/experiments` body (none: every member gets the
    personalized policy). One experiment at a time for now."""

    experiments: tuple[Experiment, ...] = Field((), max_length=1)
