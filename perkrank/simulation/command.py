"""`perkrank simulate`: a simulated pilot through the real service, written for analysis."""

from __future__ import annotations

import argparse
from pathlib import Path

from perkrank.arguments import existing_dir, int_range, output_dir
from perkrank.config import CONFIG_DIR

MAX_DAYS = 366
MEMORY = "memory"
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def store(text: str) -> str:
    """`memory` or a Redis URL (argparse reports anything else as a usage error)."""
    if text != MEMORY and not text.startswith(REDIS_SCHEMES):
        raise argparse.ArgumentTypeError(f"{text!r}: use memory or a redis:// URL")
    return text


def add_simulate_command(parser: argparse.ArgumentParser) -> None:
    """The options of `perkrank simulate` on `parser`."""
    parser.add_argument("--data", type=existing_dir, required=True, help="a generate directory")
    parser.add_argument("--days", type=int_range(1, MAX_DAYS), required=True, help="days of visits")
    parser.add_argument("--out", type=output_dir, required=True, help="where results go")
    parser.add_argument("--experiments", type=Path, help="an experiments YAML file to put in force")
    parser.add_argument("--seed", type=int_range(0), default=0, help="visits and responses")
    parser.add_argument(
        "--store", type=store, default=MEMORY, help="memory (default) or a Redis URL (redis://…)"
    )
    parser.add_argument("--model", help="model URI or bundle directory (default: serve.yaml's)")
    parser.add_argument("--limit", type=int_range(1, 50), default=5, help="offers per visit")
    parser.set_defaults(handler=run_simulate_command)


def run_simulate_command(arguments: argparse.Namespace) -> int:
    """Run the pilot, write decisions.parquet, events.parquet and truth.json, print the truth."""
    from perkrank.config import ServeConfig, load_config
    from perkrank.experiment_config import ExperimentsConfig
    from perkrank.simulation.pilot import simulate

    experiments = (
        None
        if arguments.experiments is None
        else load_config(ExperimentsConfig, arguments.experiments)
    )
    model_uri = arguments.model or load_config(ServeConfig, CONFIG_DIR / "serve.yaml").model_uri
    result = simulate(
        arguments.data,
        days=arguments.days,
        seed=arguments.seed,
        model_uri=model_uri,
        experiments=experiments,
        redis_url=None if arguments.store == MEMORY else arguments.store,
        limit=arguments.limit,
    )
    paths = result.write(arguments.out)
    written = ", ".join(str(path) for path in paths.values())
    print(f"{result.visits} visits, {len(result.events)} events: {written}")
    for arm, truth in result.truth.items():
        print(
            f"{arm}: true redemption rate {truth.redemption_rate:.4f} per impression, "
            f"{truth.redemptions_per_member:.4f} per member"
        )
    return 0
