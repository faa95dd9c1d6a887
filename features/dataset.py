"""The validated input tables, as produced by `features.loader.load_dataset`."""

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Dataset:
    """The four tables of the data contract after validation.

    members:   member_id, region, tier (str); birth_date (datetime64, NaT if unknown); signup_date.
    purchases: member_id, partner_id, category, channel (str); ts (datetime64, naive UTC); amount.
    partners:  partner_id, name, scope (str); regions, categories (tuples of str).
    offers:    offer_id, partner_id, category, title, min_tier, reward (str); regions (tuple of
               str, empty = wherever the partner operates); valid_from, valid_to (datetime64,
               dates, both days included); budget (pandas Int64, <NA> = unlimited).
    """

    members: pd.DataFrame
    purchases: pd.DataFrame
    partners: pd.DataFrame
    offers: pd.DataFrame

    def row_counts(self) -> dict[str, int]:
        """Rows per table, in contract order."""
        return {
            "members": len(self.members),
            "purchases": len(self.purchases),
            "partners": len(self.partners),
            "offers": len(self.offers),
        }
