"""The `perkrank decide` subcommand: arguments, and the run over a freshly started serving
context (the store's live caps, catalog and experiments applied first)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import get_args

from perkrank.arguments import existing_dir, int_range
from perkrank.config import CONFIG_DIR
from perkrank.mechanics_config import ChannelName


def add_decide_command(command: argparse.ArgumentParser) -> None:
    """`perkrank decide`'s arguments on `command`."""
    command.add_argument(
        "--members", type=Path, required=True, help="member ids, one a line (header member_id)"
    )
    command.add_argument("--channel", choices=get_args(ChannelName), required=True)
    command.add_argument(
        "--out", type=Path, required=True, help="JSON Lines output; a rerun resumes it"
    )
    command.add_argument(
        "--campaign",
        help="names the send: decision ids derive from it (default: the --out file's path)",
    )
    command.add_argument("--limit", type=int_range(1), help="offers per member (default: config)")
    command.add_argument(
        "--chunk", type=int_range(1, 100_000), default=1000, help="members per store call"
    )
    command.add_argument(
        "--data", type=existing_dir, required=True, help="members, partners, offers"
    )
    command.add_argument("--config", type=Path, default=CONFIG_DIR / "serve.yaml")
    command.add_argument("--model", help="MLflow model URI or bundle directory")
    command.set_defaults(handler=decide)


def decide(arguments: argparse.Namespace) -> int:
    """Decide the members file's members; print what was done and the rate."""
    from perkrank.campaign_run import CampaignFileError, read_members, run_campaign
    from perkrank.config import ServeConfig, load_config
    from perkrank.progress import step
    from perkrank.serving.bootstrap import bootstrap
    from perkrank.serving.domain.context import ContextHolder
    from perkrank.serving.live import LiveRefresher

    settings = load_config(ServeConfig, arguments.config)
    if arguments.model:
        settings = settings.model_copy(update={"model_uri": arguments.model})
    campaign = arguments.campaign or str(arguments.out.resolve())
    try:
        members = read_members(arguments.members)
        with step("loading model, members and offers"):
            context = bootstrap(settings, arguments.data).context
            refresher = LiveRefresher(ContextHolder(context), settings)
            refresher.refresh_settings()
        limit = min(arguments.limit or settings.default_limit, settings.max_limit)
        with step(f"deciding {len(members)} members on {arguments.channel}"):
            run = run_campaign(
                refresher.context,
                members,
                campaign=campaign,
                channel=arguments.channel,
                out=arguments.out,
                limit=limit,
                chunk=arguments.chunk,
            )
    except CampaignFileError as error:
        print(f"perkrank decide: {error}", file=sys.stderr)
        return 2
    print(
        f"decided {run.decided} members ({run.with_offers} with offers), "
        f"skipped {run.skipped} already in {arguments.out}, "
        f"{run.seconds:.1f}s, {run.rate:.0f} members/s"
    )
    return 0
