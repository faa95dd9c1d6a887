"""`perkrank caps preview | rollback` and `perkrank offers publish --dry-run | rollback`: the
marketer's safety nets, through a running service's admin endpoints (see admin_client)."""

from __future__ import annotations

import argparse
import json
from functools import partial
from pathlib import Path
from typing import Any

from perkrank.admin_client import (
    OFFERS_CONTENT_TYPES,
    call_service,
    read_yaml,
    reporting,
    service_options,
)
from perkrank.arguments import int_range
from perkrank.config import ConfigError
from perkrank.setting_client import CAPS

MAX_PREVIEW_DAYS = 90
"""The service's bound of `POST /v1/admin/caps/preview?days=`."""
LISTED = 20
"""Offers a preview lists, those whose showings change most first."""
FIGURES = (
    ("members_reached", "members reached"),
    ("offers_shown", "offers shown"),
    ("offers_shown_freeing_room", "shown, freeing room*"),
    ("expected_redemptions", "expected redemptions"),
    ("reward_cost", "reward cost"),
)
FREEING_ROOM_NOTE = (
    "offers shown: the logged showings each rule set keeps, every logged one counting against "
    "the caps, so a lowered cap never shows more; *freeing room: a hidden showing no longer "
    "counts, so later logged ones may come back: with interacting caps a lowered cap can show "
    "more there"
)


def add_caps_console(actions: argparse._SubParsersAction) -> None:
    """`caps preview FILE [--days N] [--costs FILE]` and `caps rollback VERSION`."""
    preview = actions.add_parser(
        "preview",
        parents=[service_options()],
        help="what FILE's rules would do: diff, warnings, the last days replayed (saves nothing)",
    )
    preview.add_argument("file", type=Path, help="a rule set like configs/caps.yaml")
    preview.add_argument(
        "--days", type=int_range(1, MAX_PREVIEW_DAYS), default=7, help="days of log replayed"
    )
    preview.add_argument(
        "--costs", type=Path, help="YAML or JSON: offer id → cost of one redemption"
    )
    preview.set_defaults(handler=partial(reporting, caps_preview))
    rollback = actions.add_parser(
        "rollback", parents=[service_options()], help="bring caps VERSION back as a new version"
    )
    rollback.add_argument("version", type=int_range(1, 2**31), help="a version of `caps history`")
    rollback.set_defaults(handler=partial(reporting, caps_rollback))


def add_offers_console(
    actions: argparse._SubParsersAction, publish: argparse.ArgumentParser
) -> None:
    """`offers publish --dry-run | --allow-none-valid` and `offers rollback VERSION`."""
    publish.add_argument(
        "--dry-run", action="store_true", help="check FILE and print what it would change"
    )
    publish.add_argument(
        "--allow-none-valid",
        action="store_true",
        help="publish even when no offer of FILE is valid today",
    )
    rollback = actions.add_parser(
        "rollback", parents=[service_options()], help="publish catalog VERSION again"
    )
    rollback.add_argument("version", type=int_range(1, 2**31), help="a version of the history")
    rollback.set_defaults(handler=partial(reporting, offers_rollback))


def caps_preview(arguments: argparse.Namespace) -> int:
    body = read_yaml(arguments.file)
    if not isinstance(body, dict):
        raise ConfigError(f"{arguments.file}: expected a mapping with `rules`")
    if arguments.costs is not None:
        body = body | {"reward_costs": read_yaml(arguments.costs)}
    path = f"/v1/admin/caps/preview?days={arguments.days}"
    result = call_service(arguments, "POST", path, json.dumps(body, default=str))
    print(f"against the caps in force, {result['decisions']} decisions of {arguments.days} days:")
    for line in result["changes"] or ["no rule changed"]:
        print(f"  {line}")
    for line in result["warnings"]:
        print(f"warning: {line}")
    print(f"{'':24}{'in force':>12}{'proposed':>12}")
    for name, label in FIGURES:
        current, proposed = result[name]
        print(f"{label:24}{_number(current):>12}{_number(proposed):>12}")
    print(f"({FREEING_ROOM_NOTE})")
    for title, rows in (("partner", result["by_partner"]), ("offer", result["by_offer"])):
        print(f"shown by {title} (in force → proposed; expected redemptions):")
        ordered = sorted(rows.items(), key=lambda item: -abs(_change(item[1])))
        for key, row in ordered[:LISTED]:
            current, proposed = row["current"], row["proposed"]
            print(
                f"  {key}: {current['shown']} → {proposed['shown']}; "
                f"{_number(current['expected_redemptions'])} → "
                f"{_number(proposed['expected_redemptions'])}"
            )
    return 0


def caps_rollback(arguments: argparse.Namespace) -> int:
    old = call_service(arguments, "GET", CAPS.path)
    body = json.dumps({"version": arguments.version})
    stored = call_service(arguments, "POST", "/v1/admin/caps/rollback", body)
    for line in CAPS.all_changes(old, stored) or [CAPS.unchanged]:
        print(line)
    print(
        f"caps version {stored['version']} in force: the rules of version {arguments.version} "
        f"(was {old['version']})"
    )
    return 0


def offers_dry_run(arguments: argparse.Namespace, content: bytes, content_type: str) -> int:
    """Print what publishing would change; 1 when the service would refuse it."""
    result = call_service(arguments, "POST", "/v1/admin/offers/dry-run", content, content_type)
    print(f"{arguments.file}: {result['offers']} offers, nothing published")
    print(f"  added ({len(result['added'])}): {', '.join(result['added']) or '-'}")
    print(f"  removed ({len(result['removed'])}): {', '.join(result['removed']) or '-'}")
    print(f"  changed ({len(result['changed'])}):")
    for changed in result["changed"]:
        fields = "; ".join(
            f"{name} {old!r} → {new!r}" for name, (old, new) in changed["fields"].items()
        )
        print(f"    {changed['offer_id']}: {fields}")
    print(f"  unchanged: {result['unchanged']}")
    print(f"valid today ({result['today']}): {result['valid_today']}; by region and tier:")
    for region, tiers in result["valid_by_region_tier"].items():
        print(f"  {region}: " + ", ".join(f"{tier} {count}" for tier, count in tiers.items()))
    if result["refused"] is not None:
        print(f"would be refused: {result['refused']}")
        return 1
    return 0


def offers_rollback(arguments: argparse.Namespace) -> int:
    body = json.dumps({"version": arguments.version})
    published = call_service(arguments, "POST", "/v1/admin/offers/rollback", body)
    print(
        f"catalog version {published['version']} in force: the {published['offers']} offers of "
        f"version {arguments.version}"
    )
    return 0


def offers_file(path: Path) -> tuple[bytes, str]:
    """An offers file's content and content type (ConfigError for another kind or no file)."""
    content_type = OFFERS_CONTENT_TYPES.get(path.suffix)
    if content_type is None:
        raise ConfigError(f"{path}: use a .csv, .csv.gz or .parquet file")
    try:
        return path.read_bytes(), content_type
    except OSError as error:
        raise ConfigError(f"{path}: cannot be read: {error.strerror}") from None


def _change(row: dict[str, Any]) -> int:
    return row["proposed"]["shown"] - row["current"]["shown"]


def _number(value: float | int | None) -> str:
    if value is None:
        return "unknown"
    return f"{value:g}" if isinstance(value, float) else str(value)
