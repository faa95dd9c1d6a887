"""A synthetic loyalty program with structure a model can find: regions, partners, tastes, tiers.

The program: regions of Zipf-like sizes; federal partners operate everywhere, local partners in
one or two regions; every partner sells one to three categories (an *item* is a partner ×
category pair). Members have latent tastes; a new purchase picks an item by a softmax over
taste · item factors + regional, tier, seasonal and popularity effects, restricted to items sold
in the member's region. Most purchases repeat an item the member already bought. Activity per
member is lognormal (many light members, few heavy ones); some members churn, some sign up
during the history, some never buy. The offer catalog rotates monthly, one catalog per month of
history plus one for the month after it.

The same arguments always give byte-identical files.
"""

import json
from datetime import date
from pathlib import Path

import numpy as np

from perkrank.features.schema import MEMBERS, OFFERS, PARTNERS, PURCHASES
from perkrank.features.synthetic.catalog import offers_table
from perkrank.features.synthetic.purchases import simulate_purchases
from perkrank.features.synthetic.tables import (
    members_table,
    partners_table,
    purchases_table,
    write_tables,
)
from perkrank.features.synthetic.world import GENERATOR_FILE, draw_world, period_days
from perkrank.progress import report, step

__all__ = ["generate"]


def generate(out_dir: Path, *, members: int, months: int, seed: int, start: date) -> dict[str, int]:
    """Write members, purchases, partners and offers CSV files (and generator.json, the arguments
    that rebuild the hidden world for the response model); return rows per table.

    Parameters
    ----------
    out_dir: directory to write into (created if missing); the four files appear together or
             not at all.
    members: number of members.
    months:  months of purchase history, starting at `start`.
    seed:    the same seed (and other arguments) gives byte-identical files.
    start:   first day of the history.

    Returns
    -------
    Row counts per table, in contract order.
    """
    rng = np.random.Generator(np.random.PCG64(seed))
    # History months, then the catalog month after them, then one more to end its long offers.
    days = period_days(start, months + 2)
    with step("partners and members"):
        program, member_table = draw_world(rng, members, months, days)
        report(f"{len(program.partner_ids)} partners, {len(program.item_partner)} items")
    with step(f"purchases over {months} months"):
        purchases = simulate_purchases(rng, program, member_table, days[: months + 1])
        report(f"{len(purchases.item_idx)} purchases")
    with step("offer catalog"):
        offers = offers_table(rng, program, members, days)
        report(f"{offers.num_rows} offers in {months + 1} monthly catalogs")
    tables = {
        MEMBERS.name: members_table(member_table),
        PURCHASES.name: purchases_table(purchases, program, member_table),
        PARTNERS.name: partners_table(program),
        OFFERS.name: offers,
    }
    with step(f"writing {out_dir}"):
        arguments = {"members": members, "months": months, "seed": seed, "start": str(start)}
        write_tables(Path(out_dir), tables, {GENERATOR_FILE: json.dumps(arguments) + "\n"})
    return {name: table.num_rows for name, table in tables.items()}
