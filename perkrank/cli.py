"""The `perkrank` command: one subcommand per job, each importing only what it needs."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from perkrank.admin_cli import add_admin_commands, add_privacy_commands
from perkrank.arguments import existing_dir, int_range, iso_date, output_dir
from perkrank.config import CONFIG_DIR, ConfigError
from perkrank.evaluation_cli import add_evaluate_offline, add_log_options, print_offline_estimate
from perkrank.import_cli import add_import_complete_journey

Handler = Callable[[argparse.Namespace], int]
MAX_MEMBERS = 10_000_000
MAX_MONTHS = 120
MAX_WORKERS = 64


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, run one subcommand, return its exit code."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    parser = build_parser()
    arguments = parser.parse_args(argv)
    try:
        return arguments.handler(arguments)
    except ConfigError as error:
        print(f"config error:\n{error}", file=sys.stderr)
        return 2
    except OSError as error:  # a file the job reads or writes: no traceback for that
        print(f"perkrank: {error}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="perkrank",
        description="Personalized, capped, opt-out-safe offers for loyalty programs.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {metadata.version('perkrank')}"
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    _add_generate(commands)
    add_import_complete_journey(commands)
    _add_validate(commands)
    _add_train(commands)
    _add_promote(commands)
    add_evaluate_offline(commands)
    _add_serve(commands)
    add_admin_commands(commands)
    _add_decide(commands)
    add_privacy_commands(commands)
    _add_demo(commands)
    _add_simulate(commands)
    return parser


def _command(commands: argparse._SubParsersAction, name: str, help_text: str, handler: Handler):
    command = commands.add_parser(name, help=help_text, description=help_text)
    command.set_defaults(handler=handler)
    return command


def _add_generate(commands: argparse._SubParsersAction) -> None:
    command = _command(
        commands,
        "generate",
        "Write a synthetic loyalty data set (members, purchases, "
        "partners, offers) with planted tastes, regions, tiers and a monthly catalog.",
        _generate,
    )
    command.add_argument(
        "--members", type=int_range(1, MAX_MEMBERS), default=10_000, help="number of members"
    )
    command.add_argument(
        "--months", type=int_range(1, MAX_MONTHS), default=12, help="months of purchase history"
    )
    command.add_argument(
        "--seed", type=int_range(0), default=7, help="same seed and --start, identical files"
    )
    command.add_argument(
        "--start",
        type=iso_date,
        help="first day of the history (YYYY-MM-DD); default: the history ends last month, "
        "so the catalog of its last month covers today",
    )
    command.add_argument("--out", type=output_dir, required=True, help="output directory")


def _generate(arguments: argparse.Namespace) -> int:
    from perkrank.demo import history_start
    from perkrank.features.synthetic import generate

    start = arguments.start or history_start(datetime.now(UTC).date(), arguments.months)
    if start.year + (start.month + arguments.months + 1) // 12 > 9999:
        print(f"perkrank generate: --start {start} runs past the year 9999", file=sys.stderr)
        return 2
    summary = generate(
        arguments.out,
        members=arguments.members,
        months=arguments.months,
        seed=arguments.seed,
        start=start,
    )
    for table, rows in summary.items():
        print(f"{table}: {rows} rows")
    return 0


def _add_validate(commands: argparse._SubParsersAction) -> None:
    command = _command(
        commands,
        "validate",
        "Check a data directory against the data contract; "
        "list every problem with file, row and field.",
        _validate,
    )
    command.add_argument(
        "data", type=existing_dir, help="directory with members, purchases, partners, offers"
    )


def _validate(arguments: argparse.Namespace) -> int:
    from perkrank.features.loader import DataValidationError, load_dataset

    try:
        dataset = load_dataset(arguments.data)
    except DataValidationError as error:
        print(error, file=sys.stderr)
        return 1
    for table, rows in dataset.row_counts().items():
        print(f"{table}: {rows} rows ok")
    return 0


def _add_train(commands: argparse._SubParsersAction) -> None:
    command = _command(
        commands,
        "train",
        "Validate data, build features, fit ALS, BPR, LightFM and baselines, "
        "evaluate on a time split, log to MLflow and register the blend as `challenger`.",
        _train,
    )
    command.add_argument(
        "--data", type=existing_dir, required=True, help="validated data directory"
    )
    command.add_argument("--config", type=Path, default=CONFIG_DIR / "train.yaml")
    command.add_argument(
        "--out",
        type=output_dir,
        default=Path("var/train"),
        help="where the bundle and the evaluation report are written",
    )
    command.add_argument("--no-register", action="store_true", help="skip MLflow")
    command.add_argument(
        "--exclusions",
        type=Path,
        help="members to leave out (forgotten, personalization off), as `perkrank members "
        "exclusions` writes them",
    )
    command.add_argument(
        "--events",
        type=Path,
        help="an events export (perkrank events export or simulate): redemptions join purchases",
    )
    command.add_argument(
        "--coupons",
        type=existing_dir,
        help="Complete Journey raw files: add the campaign coupon stage (config coupons.source)",
    )


def _train(arguments: argparse.Namespace) -> int:
    from perkrank.config import CouponConfig, TrainConfig, load_config
    from perkrank.features.loader import DataValidationError
    from perkrank.training.coupon_step import CouponSourceError
    from perkrank.training.pipeline import train

    config = load_config(TrainConfig, arguments.config)
    if arguments.coupons is not None:
        config = config.model_copy(update={"coupons": CouponConfig(source=arguments.coupons)})
    try:
        result = train(
            arguments.data,
            config,
            output_dir=arguments.out,
            register=not arguments.no_register,
            exclusions=arguments.exclusions,
            events=arguments.events,
        )
    except (DataValidationError, CouponSourceError) as error:
        print(error, file=sys.stderr)
        return 1
    print(f"bundle: {result.bundle_dir}")
    print(f"report: {', '.join(str(path) for path in result.report_files)}")
    if result.registered_version:
        print(f"registered version {result.registered_version} (alias challenger)")
    return 0


def _add_promote(commands: argparse._SubParsersAction) -> None:
    command = _command(
        commands,
        "promote",
        "Move the `champion` alias to the challenger (or --version) only if it beats the "
        "champion on the challenger's test window (both re-scored there; paired bootstrap CI "
        "of the configured metric above the configured margin).",
        _promote,
    )
    command.add_argument("--config", type=Path, default=CONFIG_DIR / "train.yaml")
    command.add_argument("--version", help="model version to promote (default: challenger)")
    command.add_argument(
        "--force",
        action="store_true",
        help="promote even if it is worse, not comparable, or trained on different data",
    )
    add_log_options(command, required=False)


def _promote(arguments: argparse.Namespace) -> int:
    from perkrank.config import TrainConfig, load_config
    from perkrank.models.registry import RegistryError
    from perkrank.training.promotion import promote

    config = load_config(TrainConfig, arguments.config)
    logs = (arguments.data, arguments.decisions, arguments.events)
    if any(logs) and not all(logs):
        print("perkrank promote: --data, --decisions and --events go together", file=sys.stderr)
        return 2
    try:
        decision = promote(config.registry, version=arguments.version, force=arguments.force)
    except RegistryError as error:
        print(error, file=sys.stderr)
        return 2
    print(decision.reason)
    if all(logs):
        registry = config.registry
        version = arguments.version or "@challenger"
        separator = "" if version.startswith("@") else "/"
        model = f"models:/{registry.model_name}{separator}{version}"
        print_offline_estimate(arguments, model, registry.tracking_uri)
    return 0 if decision.promoted else 3


def _add_serve(commands: argparse._SubParsersAction) -> None:
    command = _command(
        commands,
        "serve",
        "Serve ranked offers over HTTP: the `champion` model (or a bundle "
        "directory) and the members and offer catalog of --data.",
        _serve,
    )
    command.add_argument(
        "--data", type=existing_dir, required=True, help="members, partners, offers"
    )
    command.add_argument("--config", type=Path, default=CONFIG_DIR / "serve.yaml")
    command.add_argument(
        "--train-config",
        type=Path,
        default=CONFIG_DIR / "train.yaml",
        help="its registry settings: the metric and margin the console's promote button uses",
    )
    command.add_argument("--host", help="bind address (default from config: 127.0.0.1)")
    command.add_argument(
        "--port", type=int_range(1, 65535), help="port (default from config: 8000)"
    )
    command.add_argument("--model", help="MLflow model URI or bundle directory")
    command.add_argument(
        "--workers",
        type=int_range(1, MAX_WORKERS),
        default=1,
        help="processes; more than one needs PERKRANK_REDIS_URL",
    )


def _serve(arguments: argparse.Namespace) -> int:
    from perkrank.config import ServeConfig, TrainConfig, load_config
    from perkrank.serving.server import run
    from perkrank.training.registry_console import WORKER_FACTORY, registry_for_serving

    settings = load_config(ServeConfig, arguments.config)
    overrides = {"host": arguments.host, "port": arguments.port, "model_uri": arguments.model}
    settings = settings.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    registry = registry_for_serving(settings, load_config(TrainConfig, arguments.train_config))
    run(
        settings,
        arguments.data,
        workers=arguments.workers,
        model_registry=registry,
        worker_factory=WORKER_FACTORY,
    )
    return 0


def _add_decide(commands: argparse._SubParsersAction) -> None:
    from perkrank.decide_cli import add_decide_command

    help_text = (
        "A campaign send: one decision per member of a list (eligibility, opt-outs, "
        "experiments and caps as for offers requests), into a JSON Lines file; a rerun resumes."
    )
    add_decide_command(commands.add_parser("decide", help=help_text, description=help_text))


def _add_simulate(commands: argparse._SubParsersAction) -> None:
    from perkrank.simulation.command import add_simulate_command

    help_text = (
        "Simulate a pilot: members' visits through the real service, responses drawn from the "
        "synthetic data's response model; writes the decision log, events and each arm's truth."
    )
    add_simulate_command(commands.add_parser("simulate", help=help_text, description=help_text))


def _add_demo(commands: argparse._SubParsersAction) -> None:
    command = _command(
        commands,
        "demo",
        "The whole job on synthetic data: generate, train, register, "
        "promote, then serve on 127.0.0.1:8000 (or print three members' offers).",
        _demo,
    )
    command.add_argument("--work-dir", type=output_dir, default=Path("var/demo"))
    command.add_argument("--members", type=int_range(1, MAX_MEMBERS), default=20_000)
    command.add_argument(
        "--no-serve",
        action="store_true",
        help="print three members' offers and exit instead of serving",
    )


def _demo(arguments: argparse.Namespace) -> int:
    from perkrank.demo import run_demo

    return run_demo(arguments.work_dir, members=arguments.members, serve=not arguments.no_serve)


__all__ = ["CONFIG_DIR", "main"]

if __name__ == "__main__":
    raise SystemExit(main())
