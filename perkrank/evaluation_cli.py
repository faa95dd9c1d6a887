"""`perkrank evaluate-offline`, and the off-policy estimate `perkrank promote --decisions
--events` prints beside the promotion: the options, and the estimate printed (the work is
`perkrank.training.offline_evaluation`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from perkrank.arguments import existing_dir
from perkrank.config import CONFIG_DIR


def add_log_options(command: argparse.ArgumentParser, required: bool) -> None:
    """--data, --decisions, --events and --serve-config of an off-policy estimate."""
    shown = "" if required else " (with --decisions and --events: the off-policy estimate)"
    command.add_argument(
        "--data", type=existing_dir, required=required, help="members and offers" + shown
    )
    for option, kind in (("--decisions", "decisions"), ("--events", "events")):
        command.add_argument(
            option, type=Path, required=required, help=f"`perkrank {kind} export` file" + shown
        )
    command.add_argument(
        "--serve-config", type=Path, default=CONFIG_DIR / "serve.yaml", help="ranking settings"
    )


def add_evaluate_offline(commands: argparse._SubParsersAction) -> None:
    help_text = (
        "Estimate a model's clicks and redemptions per decision and per impression from the "
        "decision log (IPS, self-normalised IPS, doubly robust, 95 % intervals) before it "
        "gets traffic."
    )
    command = commands.add_parser(
        "evaluate-offline", help=help_text.replace("%", "%%"), description=help_text
    )
    command.set_defaults(handler=_evaluate_offline)
    command.add_argument(
        "--model", required=True, help="registry version, alias, models:/ URI or bundle directory"
    )
    add_log_options(command, required=True)
    command.add_argument("--json", type=Path, help="also write the estimates as JSON here")


def _evaluate_offline(arguments: argparse.Namespace) -> int:
    return print_offline_estimate(arguments, arguments.model)


def print_offline_estimate(
    arguments: argparse.Namespace, model: str, tracking_uri: str | None = None
) -> int:
    import json

    from perkrank.config import ServeConfig, load_config
    from perkrank.training.offline_evaluation import evaluate_files, markdown

    settings = load_config(ServeConfig, arguments.serve_config)
    if tracking_uri is not None:
        settings = settings.model_copy(update={"tracking_uri": tracking_uri})
    evaluation = evaluate_files(
        model, arguments.data, arguments.decisions, arguments.events, settings
    )
    print(markdown(evaluation), end="")
    if getattr(arguments, "json", None) is not None:
        text = json.dumps(evaluation.record(), indent=2) + "\n"
        arguments.json.write_text(text, encoding="utf-8")
    return 0
