"""The parsers of the `perkrank` commands that speak to a running service's admin endpoints
(caps, experiments, levers, offers, events, decisions, consents, members): each command's
name and help; its actions come from admin_client, setting_client and privacy_client."""

from __future__ import annotations

import argparse


def add_admin_commands(commands: argparse._SubParsersAction) -> None:
    """`caps`, `experiments`, `levers`, `offers`, `events` and `decisions`, in that order."""
    _add_caps(commands)
    _add_experiments(commands)
    _add_levers(commands)
    _add_offers(commands)
    _add_events(commands)
    _add_decisions(commands)


def _add_caps(commands: argparse._SubParsersAction) -> None:
    from perkrank.setting_client import add_caps_commands

    help_text = (
        "Show, change (set), preview (diff) and audit (history) the frequency caps of a "
        "running service; every process applies a change within a second (admin key)."
    )
    add_caps_commands(commands.add_parser("caps", help=help_text, description=help_text))


def _add_experiments(commands: argparse._SubParsersAction) -> None:
    from perkrank.setting_client import add_experiments_commands

    help_text = (
        "Show, change (set), preview (diff) and audit (history) the experiments of a running "
        "service: arms by a salted hash of the member (or region); every process follows a "
        "change within a second (admin key)."
    )
    add_experiments_commands(
        commands.add_parser("experiments", help=help_text, description=help_text)
    )


def _add_levers(commands: argparse._SubParsersAction) -> None:
    from perkrank.setting_client import add_levers_commands

    help_text = (
        "Show, change (set), preview (diff) and audit (history) the marketer levers of a "
        "running service: boost or bury a partner, category or offer, with optional start and "
        "end dates; every process follows a change within a second (admin key)."
    )
    add_levers_commands(commands.add_parser("levers", help=help_text, description=help_text))


def _add_offers(commands: argparse._SubParsersAction) -> None:
    from perkrank.admin_client import add_offers_commands

    help_text = "Publish a new offer catalog to a running service (admin key)."
    add_offers_commands(commands.add_parser("offers", help=help_text, description=help_text))


def _add_events(commands: argparse._SubParsersAction) -> None:
    from perkrank.admin_client import add_events_commands

    help_text = "Export the impressions, clicks and redemptions a running service kept (admin key)."
    add_events_commands(commands.add_parser("events", help=help_text, description=help_text))


def _add_decisions(commands: argparse._SubParsersAction) -> None:
    from perkrank.admin_client import add_decisions_commands

    help_text = (
        "Export the decision log of a running service: every offers response, its experiment "
        "and arm, and each offer's rank, score and propensity (admin key)."
    )
    add_decisions_commands(commands.add_parser("decisions", help=help_text, description=help_text))


def add_privacy_commands(commands: argparse._SubParsersAction) -> None:
    """`consents` and `members`."""
    from perkrank.privacy_client import add_consents_commands, add_members_commands

    help_text = "Export every consent record of members' preference changes (admin key)."
    add_consents_commands(commands.add_parser("consents", help=help_text, description=help_text))
    help_text = (
        "Forget members, and export the members training leaves out (forgotten or "
        "personalization off, by hashed id) for `perkrank train --exclusions` (admin key)."
    )
    add_members_commands(commands.add_parser("members", help=help_text, description=help_text))
