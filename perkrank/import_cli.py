"""`perkrank import-complete-journey`: 84.51°'s Complete Journey raw files as the four contract
tables (`features.complete_journey`); the same directory, given to `perkrank train --coupons`,
trains the campaign coupon stage."""

from __future__ import annotations

import argparse
import sys

from perkrank.arguments import existing_dir, output_dir


def add_import_complete_journey(commands: argparse._SubParsersAction) -> None:
    help_text = (
        "Import 84.51°'s Complete Journey raw files (the R package's tables as CSV) as "
        "members, purchases, partners and offers; train with --coupons on the same directory "
        "to add the campaign coupon stage."
    )
    command = commands.add_parser("import-complete-journey", help=help_text, description=help_text)
    command.set_defaults(handler=_import_complete_journey)
    command.add_argument("--source", type=existing_dir, required=True, help="raw files")
    command.add_argument("--out", type=output_dir, required=True, help="contract tables")


def _import_complete_journey(arguments: argparse.Namespace) -> int:
    from perkrank.features.complete_journey import import_complete_journey, missing_raw_files
    from perkrank.features.loader import DataValidationError

    if missing := missing_raw_files(arguments.source):
        print(f"{arguments.source}: missing {', '.join(missing)}", file=sys.stderr)
        return 1
    try:
        rows = import_complete_journey(arguments.source, arguments.out)
    except DataValidationError as error:
        print(error, file=sys.stderr)
        return 1
    for table, count in rows.items():
        print(f"{table}: {count} rows")
    return 0
