"""`perkrank consents export`, `perkrank members forget` and `perkrank members exclusions`:
members' privacy through a running service's admin endpoints (see `perkrank.admin_client` for
`--url`, `--api-key` and the exit codes)."""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from perkrank.admin_client import call_service, only_action, reporting, service_options
from perkrank.arguments import int_range
from perkrank.config import ConfigError

MEMBER_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
MAX_PAGE_SIZE = 10_000
CONSENT_COLUMNS = (
    ("member_id", "text"),
    ("at", "timestamp"),
    ("actor", "text"),
    ("source", "text"),
    ("changed", "text"),
    ("old", "text"),
    ("new", "text"),
)
EXCLUSION_COLUMNS = (("member_hash", "text"), ("reason", "text"), ("at", "timestamp"))


def add_consents_commands(parser: argparse.ArgumentParser) -> None:
    """`consents export --out FILE`."""
    help_text = "write every member's consent records to FILE (.csv or .parquet)"
    _add_export(only_action(parser, "export", help_text), consents_export)


def add_members_commands(parser: argparse.ArgumentParser) -> None:
    """`members forget ID|FILE` and `members exclusions --out FILE`."""
    actions = parser.add_subparsers(required=True, metavar="ACTION")
    forget = actions.add_parser(
        "forget",
        parents=[service_options()],
        help="forget a member (or every member id of FILE, one a line): remove their data, "
        "suppress them in every later training run",
    )
    forget.add_argument("member", help="a member id, or a file of member ids")
    forget.set_defaults(handler=partial(reporting, members_forget))
    exclusions = actions.add_parser(
        "exclusions",
        parents=[service_options()],
        help="write the members training must leave out (forgotten, personalization off; "
        "hashed ids) to FILE for `perkrank train --exclusions`",
    )
    _add_export(exclusions, members_exclusions)


def _add_export(parser: argparse.ArgumentParser, handler: Any) -> None:
    parser.add_argument("--out", type=Path, required=True, help="the file to write")
    parser.add_argument(
        "--page-size", type=int_range(1, MAX_PAGE_SIZE), default=1000, help="rows per request"
    )
    parser.set_defaults(handler=partial(reporting, handler))


def consents_export(arguments: argparse.Namespace) -> int:
    from perkrank.export import write_table

    rows = (
        [_consent_row(record) for record in page] for page in _cursor_pages(arguments, "consents")
    )
    count = write_table(rows, arguments.out, CONSENT_COLUMNS)
    print(f"{count} consent records written to {arguments.out}")
    return 0


def members_exclusions(arguments: argparse.Namespace) -> int:
    from perkrank.export import write_table

    rows = (
        [row | {"at": _iso(row["at"])} for row in page]
        for page in _cursor_pages(arguments, "exclusions")
    )
    count = write_table(rows, arguments.out, EXCLUSION_COLUMNS)
    print(f"{count} members to leave out written to {arguments.out}")
    return 0


def members_forget(arguments: argparse.Namespace) -> int:
    for member_id in member_ids(arguments.member):
        forgotten = call_service(arguments, "DELETE", f"/v1/admin/members/{member_id}")
        removed = ", ".join(f"{count} {kind}" for kind, count in forgotten["removed"].items())
        again = " (forgotten before)" if forgotten["already_suppressed"] else ""
        print(f"forgot {forgotten['member_hash'][:16]}…{again}: removed {removed}")
    return 0


def member_ids(argument: str) -> list[str]:
    """The member id `argument`, or the ids of the file it names (one a line, blanks skipped)."""
    path = Path(argument)
    if path.is_file():
        ids = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        ids = [member_id for member_id in ids if member_id]
    else:
        ids = [argument]
    bad = [member_id for member_id in ids if not MEMBER_ID.match(member_id)]
    if bad:
        raise ConfigError(f"not member ids (1–64 of A-Z a-z 0-9 _ . : -): {bad[:5]}")
    return ids


def _cursor_pages(arguments: argparse.Namespace, kind: str) -> Iterator[list[dict[str, Any]]]:
    """Every page of `GET /v1/admin/<kind>`, following `next_cursor` until "0"."""
    cursor = "0"
    while True:
        page = call_service(
            arguments, "GET", f"/v1/admin/{kind}?cursor={cursor}&count={arguments.page_size}"
        )
        yield page[kind]
        cursor = page["next_cursor"]
        if cursor == "0":
            return


def _consent_row(record: dict[str, Any]) -> dict[str, Any]:
    return record | {
        "at": _iso(record["at"]),
        "changed": ",".join(record["changed"]),
        "old": json.dumps(record["old"], sort_keys=True),
        "new": json.dumps(record["new"], sort_keys=True),
    }


def _iso(at: float | None) -> str | None:
    return None if at is None else datetime.fromtimestamp(at, UTC).isoformat()
