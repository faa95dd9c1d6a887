"""The data contract: the four input tables, their columns and the allowed values.

Column names come from `columns.Columns` (see docs/data.md for the prose version).
"""

from dataclasses import dataclass
from enum import StrEnum

from perkrank.features.columns import Columns

TIERS: tuple[str, ...] = ("base", "silver", "gold", "vip")
"""Lowest first: an offer open to a tier is open to every tier above it."""
CHANNELS: tuple[str, ...] = ("store", "app", "web")
SCOPES: tuple[str, ...] = ("federal", "local")
LIST_SEPARATOR = ";"
"""Separator inside list-valued cells (partner regions and categories, offer regions)."""


_TIER_RANKS = {tier: rank for rank, tier in enumerate(TIERS)}


def tier_rank(tier: str) -> int:
    """Position of `tier` in `TIERS` (base < silver < gold < vip)."""
    return _TIER_RANKS[tier]


class Kind(StrEnum):
    """How a column's cells are parsed."""

    TEXT = "text"
    DATE = "date"
    TIMESTAMP = "timestamp"
    NUMBER = "number"
    INTEGER = "integer"
    LIST = "list"


@dataclass(frozen=True)
class Column:
    """One column of an input table."""

    name: str
    kind: Kind
    required: bool = True
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Table:
    """One input table: its file stem, columns and id column (if any)."""

    name: str
    columns: tuple[Column, ...]
    id_column: str | None = None

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)


MEMBERS = Table(
    name="members",
    id_column=Columns.member_id,
    columns=(
        Column(Columns.member_id, Kind.TEXT),
        Column(Columns.region, Kind.TEXT),
        Column(Columns.tier, Kind.TEXT, choices=TIERS),
        Column(Columns.birth_date, Kind.DATE, required=False),
        Column(Columns.signup_date, Kind.DATE),
    ),
)

PURCHASES = Table(
    name="purchases",
    columns=(
        Column(Columns.member_id, Kind.TEXT),
        Column(Columns.ts, Kind.TIMESTAMP),
        Column(Columns.partner_id, Kind.TEXT),
        Column(Columns.category, Kind.TEXT),
        Column(Columns.amount, Kind.NUMBER),
        Column(Columns.channel, Kind.TEXT, choices=CHANNELS),
    ),
)

PARTNERS = Table(
    name="partners",
    id_column=Columns.partner_id,
    columns=(
        Column(Columns.partner_id, Kind.TEXT),
        Column(Columns.name, Kind.TEXT),
        Column(Columns.scope, Kind.TEXT, choices=SCOPES),
        Column(Columns.regions, Kind.LIST, required=False),
        Column(Columns.categories, Kind.LIST),
    ),
)

OFFERS = Table(
    name="offers",
    id_column=Columns.offer_id,
    columns=(
        Column(Columns.offer_id, Kind.TEXT),
        Column(Columns.partner_id, Kind.TEXT),
        Column(Columns.category, Kind.TEXT),
        Column(Columns.title, Kind.TEXT),
        Column(Columns.regions, Kind.LIST, required=False),
        Column(Columns.min_tier, Kind.TEXT, choices=TIERS),
        Column(Columns.valid_from, Kind.DATE),
        Column(Columns.valid_to, Kind.DATE),
        Column(Columns.budget, Kind.INTEGER, required=False),
        Column(Columns.reward, Kind.TEXT),
    ),
)

TABLES: tuple[Table, ...] = (MEMBERS, PURCHASES, PARTNERS, OFFERS)
