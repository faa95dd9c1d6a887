"""Checks across rows and tables: unique ids, known references, regions, validity periods."""

import numpy as np
import pandas as pd

from perkrank.features.columns import Columns
from perkrank.features.parsing import ParsedTable, isin
from perkrank.features.problems import Problems, quote
from perkrank.features.schema import MEMBERS, OFFERS, PARTNERS, TABLES


def check_tables(loaded: dict[str, ParsedTable | None], problems: Problems) -> None:
    """Every check of `load_dataset` on the tables that could be read (missing ones are None)."""
    members, purchases, partners, offers = (loaded[table.name] for table in TABLES)
    for table in (MEMBERS, PARTNERS, OFFERS):
        check_unique_ids(loaded[table.name], table.id_column, problems)
    check_known(purchases, members, MEMBERS.id_column, problems)
    check_known(purchases, partners, PARTNERS.id_column, problems)
    check_known(offers, partners, PARTNERS.id_column, problems)
    _check_local_partners_have_regions(partners, problems)
    check_offer_regions(offers, partners, problems)
    check_validity_periods(offers, problems)


def check_unique_ids(table: ParsedTable | None, id_column: str, problems: Problems) -> None:
    if table is None or not table.has(id_column):
        return
    ids = table.frame[id_column]
    duplicate = (ids.duplicated() & (ids != "")).to_numpy()
    if not duplicate.any():
        return
    codes, _ = pd.factorize(ids)
    _, first_positions = np.unique(codes, return_index=True)
    first_rows = table.rows[first_positions[codes]]
    messages = (
        f"{quote(value)} is a duplicate of row {first_row}"
        for value, first_row in zip(ids[duplicate], first_rows[duplicate], strict=True)
    )
    problems.add_rows(table.file, id_column, table.rows[duplicate], messages)


def check_known(
    referring: ParsedTable | None, referred: ParsedTable | None, id_column: str, problems: Problems
) -> None:
    """Every non-empty `id_column` value of `referring` is an id of `referred`."""
    if referring is None or referred is None:
        return
    if not (referring.has(id_column) and referred.has(id_column)):
        return
    values = referring.frame[id_column]
    unknown = ~isin(values, referred.frame[id_column]) & (values != "").to_numpy()
    messages = (f"{quote(value)} is not in {referred.file}" for value in values[unknown])
    problems.add_rows(referring.file, id_column, referring.rows[unknown], messages)


def _check_local_partners_have_regions(partners: ParsedTable | None, problems: Problems) -> None:
    if partners is None or not partners.has(Columns.scope, Columns.regions):
        return
    frame = partners.frame
    without = (
        (frame[Columns.scope] == "local") & (frame[Columns.regions].map(len) == 0)
    ).to_numpy()
    messages = ["a local partner needs at least one region"] * int(without.sum())
    problems.add_rows(partners.file, Columns.regions, partners.rows[without], messages)


def check_offer_regions(
    offers: ParsedTable | None, partners: ParsedTable | None, problems: Problems
) -> None:
    """An offer of a local partner may only name regions the partner operates in."""
    if offers is None or partners is None:
        return
    if not (
        offers.has(Columns.partner_id, Columns.regions)
        and partners.has(Columns.partner_id, Columns.scope, Columns.regions)
    ):
        return
    local_regions = {
        partner_id: regions
        for partner_id, scope, regions in zip(
            partners.frame[Columns.partner_id],
            partners.frame[Columns.scope],
            partners.frame[Columns.regions],
            strict=True,
        )
        if scope == "local" and regions
    }
    rows, messages = [], []
    offer_columns = (offers.rows, offers.frame[Columns.partner_id], offers.frame[Columns.regions])
    for row, partner_id, regions in zip(*offer_columns, strict=True):
        allowed = local_regions.get(partner_id, ())
        outside = [region for region in regions if allowed and region not in allowed]
        if outside:
            rows.append(row)
            messages.append(
                f"{', '.join(outside)} not among the regions of local partner {partner_id} "
                f"({', '.join(allowed)})"
            )
    problems.add_rows(offers.file, Columns.regions, np.array(rows, dtype=int), messages)


def check_validity_periods(offers: ParsedTable | None, problems: Problems) -> None:
    if offers is None or not offers.has(Columns.valid_from, Columns.valid_to):
        return
    starts, ends = offers.frame[Columns.valid_from], offers.frame[Columns.valid_to]
    backwards = (ends < starts).to_numpy()
    messages = (
        f"{end:%Y-%m-%d} is before valid_from {start:%Y-%m-%d}"
        for start, end in zip(starts[backwards], ends[backwards], strict=True)
    )
    problems.add_rows(offers.file, Columns.valid_to, offers.rows[backwards], messages)
