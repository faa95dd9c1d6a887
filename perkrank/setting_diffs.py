"""What a change of named live settings (cap rules, experiments, levers) does, one line per name."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from perkrank.config import CapRule
from perkrank.experiment_config import Experiment, ExperimentArm

RULE_FIELDS = ("scope", "limit", "window", "counts")
EXPERIMENT_FIELDS = ("unit", "salt", "arms")
LEVER_FIELDS = ("target", "value", "multiplier", "start", "end")


def rule_changes(old: Sequence[CapRule], new: Sequence[CapRule]) -> list[str]:
    """What turns rule set `old` into `new`, by rule name: added, removed, changed fields."""
    return named_changes(old, new, RULE_FIELDS, _plain_text)


def experiment_changes(old: Sequence[Experiment], new: Sequence[Experiment]) -> list[str]:
    """What turns experiments `old` into `new`, by name: added, removed, changed fields."""
    return named_changes(old, new, EXPERIMENT_FIELDS, _experiment_text)


def lever_changes(old: Sequence[Any], new: Sequence[Any]) -> list[str]:
    """What turns levers `old` into `new`, by name: added, removed, changed fields."""
    return named_changes(old, new, LEVER_FIELDS, _plain_text)


def named_changes(
    old: Sequence[Any],
    new: Sequence[Any],
    fields: Sequence[str],
    text: Callable[[Any, str], str],
) -> list[str]:
    """`+ name: …` added, `~ name: field a → b` changed, `- name: …` removed (new's order)."""
    old_by_name = {item.name: item for item in old}
    new_names = {item.name for item in new}

    def describe(item: Any) -> str:
        return ", ".join(f"{field} {text(item, field)}" for field in fields)

    lines = []
    for item in new:
        before = old_by_name.get(item.name)
        if before is None:
            lines.append(f"+ {item.name}: {describe(item)}")
            continue
        changed = [
            f"{field} {text(before, field)} → {text(item, field)}"
            for field in fields
            if getattr(before, field) != getattr(item, field)
        ]
        if changed:
            lines.append(f"~ {item.name}: {', '.join(changed)}")
    lines += [f"- {item.name}: {describe(item)}" for item in old if item.name not in new_names]
    return lines


def _plain_text(item: Any, field: str) -> str:
    return str(getattr(item, field))


def _experiment_text(experiment: Experiment, field: str) -> str:
    if field == "arms":
        return " / ".join(_arm_text(arm) for arm in experiment.arms)
    return str(getattr(experiment, field))


def _arm_text(arm: ExperimentArm) -> str:
    """`name share policy`, then `@alias` and the exploration when the arm has them."""
    text = f"{arm.name} {arm.share:g} {arm.policy}"
    if arm.model is not None:
        text += f"@{arm.model}"
    if arm.exploration is not None:
        setting = "temperature" if arm.exploration.kind == "softmax" else "epsilon"
        text += f" {arm.exploration.kind} {setting} {getattr(arm.exploration, setting):g}"
    return text
