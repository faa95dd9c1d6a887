"""`perkrank caps …`, `perkrank experiments …`, `perkrank levers …`, `perkrank offers publish`,
`perkrank events export` and `perkrank decisions export`: live changes through a running
service, and the events and decisions it kept.

They call the admin endpoints over HTTP (stdlib urllib), so they work whichever store the
service uses. The service is `--url` (default http://127.0.0.1:8000); the admin key is
`--api-key` or the environment variable PERKRANK_ADMIN_API_KEY.

Exit codes: 0 done (for `diff`: no differences), 1 rejected by the service (for `diff`:
differences found), 2 the file, the service or the key could not be used.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from perkrank.arguments import http_url, int_range
from perkrank.config import CONFIG_DIR, CapsConfig, ConfigError, TrainConfig, load_config
from perkrank.experiment_config import ExperimentsConfig
from perkrank.lever_config import LeversConfig
from perkrank.setting_diffs import experiment_changes, lever_changes, rule_changes

DEFAULT_URL = "http://127.0.0.1:8000"
API_KEY_VARIABLE = "PERKRANK_ADMIN_API_KEY"
TIMEOUT_SECONDS = 120
OFFERS_CONTENT_TYPES = {
    ".csv": "text/csv",
    ".gz": "application/gzip",
    ".parquet": "application/vnd.apache.parquet",
}
MAX_HISTORY = 100
MAX_PAGE_SIZE = 10_000
"""The service's bounds of `GET /v1/caps/history?limit=` and `GET /v1/admin/events?count=`."""
Handler = Callable[[argparse.Namespace], int]


class ServiceError(RuntimeError):
    """The service could not be reached or refused the request for another reason than 422."""


class RejectedError(RuntimeError):
    """The service answered 422; `problems` says what is wrong where."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


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


def add_offers_commands(parser: argparse.ArgumentParser) -> None:
    """`offers publish FILE [--dry-run] [--allow-none-valid] | rollback VERSION`."""
    from perkrank.console_client import add_offers_console

    help_text = "validate FILE (.csv, .csv.gz, .parquet) and serve it as the catalog everywhere"
    actions = parser.add_subparsers(required=True, metavar="ACTION")
    publish = actions.add_parser("publish", parents=[service_options()], help=help_text)
    publish.add_argument("file", type=Path, help="an offers file as in the data contract")
    publish.set_defaults(handler=partial(reporting, offers_publish))
    add_offers_console(actions, publish)


def add_events_commands(parser: argparse.ArgumentParser) -> None:
    """`events export --out FILE`."""
    help_text = "write the events the service kept to FILE (.csv or .parquet) for training"
    _add_export(parser, "events", help_text, events_export)


def add_decisions_commands(parser: argparse.ArgumentParser) -> None:
    """`decisions export --out FILE`."""
    help_text = "write the decisions the service kept to FILE (.csv or .parquet), a row per offer"
    _add_export(parser, "decisions", help_text, decisions_export)


def _add_export(parser: argparse.ArgumentParser, kind: str, help_text: str, handler: Handler):
    export = only_action(parser, "export", help_text)
    export.add_argument("--out", type=Path, required=True, help="the file to write")
    export.add_argument(
        "--page-size", type=int_range(1, MAX_PAGE_SIZE), default=1000, help=f"{kind} per request"
    )
    export.set_defaults(handler=partial(reporting, handler))


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


def offers_publish(arguments: argparse.Namespace) -> int:
    from perkrank.console_client import offers_dry_run, offers_file

    content, content_type = offers_file(arguments.file)
    if arguments.dry_run:
        return offers_dry_run(arguments, content, content_type)
    path = "/v1/admin/offers" + ("?allow_none_valid=true" if arguments.allow_none_valid else "")
    published = call_service(arguments, "PUT", path, content, content_type)
    print(f"catalog version {published['version']} in force: {published['offers']} offers")
    return 0


def experiments_report(arguments: argparse.Namespace) -> int:
    from perkrank.serving.domain.uplift import markdown, uplift_report
    from perkrank.training.uplift import read_rows

    configured = load_config(ExperimentsConfig, arguments.experiments).experiments
    experiment = next((item for item in configured if item.name == arguments.experiment), None)
    if experiment is None or arguments.holdout not in {arm.name for arm in experiment.arms}:
        raise ConfigError(
            f"{arguments.experiments}: no experiment {arguments.experiment!r} with an arm "
            f"{arguments.holdout!r}"
        )
    report = uplift_report(
        experiment, read_rows(arguments.decisions), read_rows(arguments.events), arguments.holdout
    )
    print(markdown(report), end="")
    if arguments.json is not None:
        arguments.json.write_text(json.dumps(report.record(), indent=2) + "\n", encoding="utf-8")
    if arguments.mlflow:
        from perkrank.training.uplift import log_report

        registry = load_config(TrainConfig, arguments.config).registry
        print(f"MLflow run {log_report(report, registry)} at {registry.tracking_uri}")
    return 0


def events_export(arguments: argparse.Namespace) -> int:
    from perkrank.export import write_events

    count = write_events(_pages(arguments, "events"), arguments.out)
    print(f"{count} events written to {arguments.out}")
    return 0


def decisions_export(arguments: argparse.Namespace) -> int:
    from perkrank.export import write_decisions

    count = write_decisions(_pages(arguments, "decisions"), arguments.out)
    print(f"{count} decisions written to {arguments.out}")
    return 0


def _pages(arguments: argparse.Namespace, kind: str) -> Iterator[list[dict[str, Any]]]:
    """Every page of `GET /v1/admin/<kind>`, oldest first."""
    after = "0-0"
    while True:
        query = f"after={after}&count={arguments.page_size}"
        page = call_service(arguments, "GET", f"/v1/admin/{kind}?{query}")
        yield page[kind]
        if len(page[kind]) < arguments.page_size:
            return
        after = page["next_after"]


def reporting(handler: Handler, arguments: argparse.Namespace) -> int:
    """`handler(arguments)`, with rejections and service errors printed (exit 1 and 2)."""
    try:
        return handler(arguments)
    except RejectedError as rejected:
        print("rejected:", *rejected.problems, sep="\n  ", file=sys.stderr)
        return 1
    except ServiceError as error:
        print(error, file=sys.stderr)
        return 2


def only_action(
    parser: argparse.ArgumentParser, name: str, help_text: str
) -> argparse.ArgumentParser:
    """Give `parser` one ACTION, `name`, taking the service options; return its parser."""
    actions = parser.add_subparsers(required=True, metavar="ACTION")
    return actions.add_parser(name, parents=[service_options()], help=help_text)


def service_options() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "--url", type=http_url, default=DEFAULT_URL, help=f"the service (default {DEFAULT_URL})"
    )
    options.add_argument("--api-key", help=f"an admin key (default: ${API_KEY_VARIABLE})")
    return options


def call_service(
    arguments: argparse.Namespace,
    method: str,
    path: str,
    body: str | bytes | None = None,
    content_type: str = "application/json",
) -> Any:
    """The JSON answer of one admin request; raises RejectedError (422) or ServiceError."""
    api_key = arguments.api_key or os.environ.get(API_KEY_VARIABLE)
    if not api_key:
        raise ServiceError(f"no admin key: pass --api-key or set {API_KEY_VARIABLE}")
    url = arguments.url.rstrip("/") + path
    data = body.encode() if isinstance(body, str) else body
    headers = {"X-API-Key": api_key, "Content-Type": content_type}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        detail = _detail(error.read())
        if error.code == 422 and isinstance(detail, list):
            raise RejectedError([_problem(problem) for problem in detail]) from None
        raise ServiceError(f"{method} {url}: HTTP {error.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise ServiceError(f"cannot reach {arguments.url}: {reason}") from None


def _detail(body: bytes) -> Any:
    try:
        return json.loads(body)["detail"]
    except (ValueError, KeyError, TypeError):
        return body.decode(errors="replace")


def _problem(problem: Any) -> str:
    if isinstance(problem, dict):
        return str(problem.get("message") or problem.get("msg"))
    return str(problem)


def read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{path}: cannot be read: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None


def _when(at: float | None) -> str:
    if at is None:
        return "never set"
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")


def _inline(value: Any) -> str:
    """A setting's value on one line: `unset` for null, else compact JSON."""
    return "unset" if value is None else json.dumps(value, separators=(", ", ": "))
