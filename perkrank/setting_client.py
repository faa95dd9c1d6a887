"""`perkrank caps …`, `perkrank experiments …` and `perkrank levers …`: show, set, diff and
audit (history) a live setting of a running service through its admin endpoints (see
admin_client for the service options, the exit codes and the experiments report)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from perkrank.admin_client import (
    Handler,
    call_service,
    experiments_report,
    read_yaml,
    reporting,
    service_options,
)
from perkrank.arguments import int_range
from perkrank.config import CONFIG_DIR, CapsConfig, load_config
from perkrank.experiment_config import ExperimentsConfig
from perkrank.lever_config import LeversConfig
from perkrank.setting_diffs import experiment_changes, lever_changes, rule_changes

MAX_HISTORY = 100
"""The service's bound of `GET /v1/caps/history?limit=`."""


def add_caps_commands(parser: argparse.ArgumentParser) -> None:
    """`caps show | set FILE | diff FILE | history | preview FILE | rollback VERSION`."""
    from perkrank.console_client import add_caps_console

    handlers = _setting_handlers(CAPS)
    file_help = "a rule set like configs/caps.yaml"
    add_caps_console(_add_setting_commands(parser, "caps", "rules", file_help, handlers))


def add_experiments_commands(parser: argparse.ArgumentParser) -> None:
    """`experiments show | set FILE | diff FILE | history`."""
    handlers = _setting_handlers(EXPERIMENTS)
    file_help = "experiments as YAML: {experiments: [{name, salt, unit, arms}]}"
    actions = _add_setting_commands(parser, "experiments", "experiments", file_help, handlers)
    report = actions.add_parser("report", help="each arm's uplift over the holdout, from exports")
    report.add_argument("experiment", help="the experiment's name")
    for option, help_text in (
        ("--experiments", file_help + " (the arms' intended shares)"),
        ("--decisions", "`perkrank decisions export` file (.csv or .parquet)"),
        ("--events", "`perkrank events export` file (.csv or .parquet)"),
    ):
        report.add_argument(option, type=Path, required=True, help=help_text)
    report.add_argument("--holdout", default="holdout", help="the arm others are compared with")
    report.add_argument("--json", type=Path, help="also write the report as JSON here")
    report.add_argument(
        "--mlflow",
        action="store_true",
        help="also log it as an MLflow run (metrics per arm, JSON, lift chart) where "
        "--config's registry says",
    )
    report.add_argument("--config", type=Path, default=CONFIG_DIR / "train.yaml")
    report.set_defaults(handler=partial(reporting, experiments_report))


def add_levers_commands(parser: argparse.ArgumentParser) -> None:
    """`levers show | set FILE | diff FILE | history`."""
    file_help = "levers as YAML: {levers: [{name, target, value, multiplier, start, end}]}"
    _add_setting_commands(parser, "levers", "levers", file_help, _setting_handlers(LEVERS))


def _setting_handlers(setting: LiveSettingCommands) -> tuple[Handler, Handler, Handler, Handler]:
    show, set_, diff, history = (
        partial(handler, setting)
        for handler in (show_setting, set_setting, diff_setting, setting_history)
    )
    return show, set_, diff, history


def _add_setting_commands(
    parser: argparse.ArgumentParser,
    setting: str,
    parts: str,
    file_help: str,
    handlers: tuple[Handler, Handler, Handler, Handler],
) -> argparse._SubParsersAction:
    """`show | set FILE | diff FILE | history` of a live setting, with its four handlers; the
    actions, for more."""
    show_handler, set_handler, diff_handler, history_handler = handlers
    actions = parser.add_subparsers(required=True, metavar="ACTION")
    service = service_options()
    show = actions.add_parser("show", parents=[service], help=f"print the {setting} in force")
    show.set_defaults(handler=partial(reporting, show_handler))
    for name, handler, help_text in (
        ("set", set_handler, f"make FILE the {setting} of every process; print what changed"),
        ("diff", diff_handler, f"print what FILE would change, by {parts} (exit 1: changes)"),
    ):
        action = actions.add_parser(name, parents=[service], help=help_text)
        action.add_argument("file", type=Path, help=file_help)
        action.set_defaults(handler=partial(reporting, handler))
    history = actions.add_parser(
        "history", parents=[service], help=f"who changed the {setting}, when"
    )
    history.add_argument(
        "--limit",
        type=int_range(1, MAX_HISTORY),
        default=10,
        help="changes to show, newest first",
    )
    history.set_defaults(handler=partial(reporting, history_handler))
    return actions


@dataclass(frozen=True)
class LiveSettingCommands:
    """How `show | set | diff | history` speak about one live setting of the service."""

    name: str
    """As messages name it: `caps`, `experiments`."""
    path: str
    field: str
    """The body's list: `rules`, `experiments`."""
    config: type[CapsConfig] | type[ExperimentsConfig] | type[LeversConfig]
    changes: Callable[[Sequence[Any], Sequence[Any]], list[str]]
    unchanged: str
    extras: tuple[str, ...] = ()
    """Settings beside the list (caps: `local_floor`, `max_per_partner`); null: unset."""

    def items(self, body: dict[str, Any]) -> tuple[Any, ...]:
        """The validated rules or experiments of a response body."""
        return getattr(self.config.model_validate({self.field: body[self.field]}), self.field)

    def shown(self, body: dict[str, Any]) -> dict[str, Any]:
        """The list and the extras that are set, as a file would hold them."""
        extras = {name: body[name] for name in self.extras if body.get(name) is not None}
        return {self.field: body[self.field], **extras}

    def all_changes(self, old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
        """The list's changes by name, then `~ extra: old → new` per changed extra."""
        lines = self.changes(() if old is None else self.items(old), self.items(new))
        for name in self.extras:
            before, after = (old or {}).get(name), new.get(name)
            if before != after:
                lines.append(f"~ {name}: {_inline(before)} → {_inline(after)}")
        return lines


CAPS = LiveSettingCommands(
    "caps",
    "/v1/caps",
    "rules",
    CapsConfig,
    rule_changes,
    "no rule changed",
    ("local_floor", "max_per_partner"),
)
EXPERIMENTS = LiveSettingCommands(
    "experiments",
    "/v1/experiments",
    "experiments",
    ExperimentsConfig,
    experiment_changes,
    "no experiment changed",
)
LEVERS = LiveSettingCommands(
    "levers", "/v1/levers", "levers", LeversConfig, lever_changes, "no lever changed"
)


def show_setting(setting: LiveSettingCommands, arguments: argparse.Namespace) -> int:
    current = call_service(arguments, "GET", setting.path)
    header = f"# {setting.name} version {current['version']}, by {current['actor']}"
    print(f"{header}, {_when(current['at'])}")
    print(yaml.safe_dump(setting.shown(current), sort_keys=False), end="")
    return 0


def set_setting(setting: LiveSettingCommands, arguments: argparse.Namespace) -> int:
    body = read_yaml(arguments.file)  # the service checks it and names every bad field
    old = call_service(arguments, "GET", setting.path)
    stored = call_service(arguments, "PUT", setting.path, json.dumps(body, default=str))
    for line in setting.all_changes(old, stored) or [setting.unchanged]:
        print(line)
    print(f"{setting.name} version {stored['version']} in force (was {old['version']})")
    return 0


def diff_setting(setting: LiveSettingCommands, arguments: argparse.Namespace) -> int:
    new = load_config(setting.config, arguments.file).model_dump(mode="json")
    current = call_service(arguments, "GET", setting.path)
    changes = setting.all_changes(current, new)
    print(f"against {setting.name} version {current['version']}:")
    for line in changes or ["no differences"]:
        print(line)
    return 1 if changes else 0


def setting_history(setting: LiveSettingCommands, arguments: argparse.Namespace) -> int:
    path = f"{setting.path}/history?limit={arguments.limit}"
    for change in call_service(arguments, "GET", path):
        print(f"version {change['version']}, by {change['actor']}, {_when(change['at'])}:")
        for line in setting.all_changes(change["old"], change["new"]) or [setting.unchanged]:
            print(f"  {line}")
    return 0


def _when(at: float | None) -> str:
    if at is None:
        return "never set"
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")


def _inline(value: Any) -> str:
    """A setting's value on one line: `unset` for null, else compact JSON."""
    return "unset" if value is None else json.dumps(value, separators=(", ", ": "))
