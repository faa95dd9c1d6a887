"""The parsers of the `perkrank` commands that speak to a running service's admin endpoints
(caps, experiments, levers, offers, events, decisions, consents, members): each command's
name and help; its actions come from admin_client, setting_client and privacy_client."""

from __future__ import annotations

import argparse
from collections.abc import Callable

AddActions = Callable[[argparse.ArgumentParser], None]

HELP = {
    "caps": (
        "Show, change (set), preview (diff) and audit (history) the frequency caps of a "
        "running service; every process applies a change within a second (admin key)."
    ),
    "experiments": (
        "Show, change (set), preview (diff) and audit (history) the experiments of a running "
        "service: arms by a salted hash of the member (or region); every process follows a "
        "change within a second (admin key)."
    ),
    "levers": (
        "Show, change (set), preview (diff) and audit (history) the marketer levers of a "
        "running service: boost or bury a partner, category or offer, with optional start and "
        "end dates; every process follows a change within a second (admin key)."
    ),
    "offers": "Publish a new offer catalog to a running service (admin key).",
    "events": "Export the impressions, clicks and redemptions a running service kept (admin key).",
    "decisions": (
        "Export the decision log of a running service: every offers response, its experiment "
        "and arm, and each offer's rank, score and propensity (admin key)."
    ),
    "consents": "Export every consent record of members' preference changes (admin key).",
    "members": (
        "Forget members, and export the members training leaves out (forgotten or "
        "personalization off, by hashed id) for `perkrank train --exclusions` (admin key)."
    ),
}
"""Each command's help, also its description."""


def add_admin_commands(commands: argparse._SubParsersAction) -> None:
    """`caps`, `experiments`, `levers`, `offers`, `events` and `decisions`, in that order."""
    from perkrank.admin_client import (
        add_decisions_commands,
        add_events_commands,
        add_offers_commands,
    )
    from perkrank.setting_client import (
        add_caps_commands,
        add_experiments_commands,
        add_levers_commands,
    )

    _add(commands, "caps", add_caps_commands)
    _add(commands, "experiments", add_experiments_commands)
    _add(commands, "levers", add_levers_commands)
    _add(commands, "offers", add_offers_commands)
    _add(commands, "events", add_events_commands)
    _add(commands, "decisions", add_decisions_commands)


def add_privacy_commands(commands: argparse._SubParsersAction) -> None:
    """`consents` and `members`."""
    from perkrank.privacy_client import add_consents_commands, add_members_commands

    _add(commands, "consents", add_consents_commands)
    _add(commands, "members", add_members_commands)


def _add(commands: argparse._SubParsersAction, name: str, add_actions: AddActions) -> None:
    add_actions(commands.add_parser(name, help=HELP[name], description=HELP[name]))
