"""`perkrank offers publish`, `perkrank experiments report`, `perkrank events export` and
`perkrank decisions export`: live changes through a running service, and the events and
decisions it kept; and the service calls every admin command shares (the live settings caps,
experiments and levers are in setting_client).

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
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from perkrank.arguments import http_url, int_range
from perkrank.config import ConfigError, TrainConfig, load_config
from perkrank.experiment_config import ExperimentsConfig

DEFAULT_URL = "http://127.0.0.1:8000"
API_KEY_VARIABLE = "PERKRANK_ADMIN_API_KEY"
TIMEOUT_SECONDS = 120
OFFERS_CONTENT_TYPES = {
    ".csv": "text/csv",
    ".gz": "application/gzip",
    ".parquet": "application/vnd.apache.parquet",
}
MAX_PAGE_SIZE = 10_000
"""The service's bound of `GET /v1/admin/events?count=`."""
Handler = Callable[[argparse.Namespace], int]


class ServiceError(RuntimeError):
    """The service could not be reached or refused the request for another reason than 422."""


class RejectedError(RuntimeError):
    """The service answered 422; `problems` says what is wrong where."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


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
