"""The data contract: the four input tables, their columns and the allowed values.

Column names are constants here and nowhere else (see docs/data.md for the prose version).
"""

from dataclasses import dataclass
from enum import StrEnum

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
    id_column="member_id",
    columns=(
        Column("member_id", Kind.TEXT),
        Column("region", Kind.TEXT),
        Column("tier", Kind.TEXT, choices=TIERS),
        Column("birth_date", Kind.DATE, required=False),
        Column("signup_date", Kind.DATE),
    ),
)

PURCHASES = Table(
    name="purchases",
    columns=(
        Column("member_id", Kind.TEXT),
        Column("ts", Kind.TIMESTAMP),
        Column("partner_id", Kind.TEXT),
        Column("category", Kind.TEXT),
        Column("amount", Kind.NUMBER),
        Column("channel", Kind.TEXT, choices=CHANNELS),
    ),
)

PARTNERS = Table(
    name="partners",
    id_column="partner_id",
    columns=(
        Column("partner_id", Kind.TEXT),
        Column("name", Kind.TEXT),
        Column("scope", Kind.TEXT, choices=SCOPES),
        Column("regions", Kind.LIST, required=False),
        Column("categories", Kind.LIST),
    ),
)

OFFERS = Table(
    name="offers",
    id_column="offer_id",
    columns=(
        Column("offer_id", Kind.TEXT),
        Column("partner_id", Kind.TEXT),
        Column("category", Kind.TEXT),
        Column("title", Kind.TEXT),
        Column("regions", Kind.LIST, required=False),
        Column("min_tier", Kind.TEXT, choices=TIERS),
        Column("valid_from", Kind.DATE),
        Column("valid_to", Kind.DATE),
        Column("budget", Kind.INTEGER, required=False),
        Column("reward", Kind.TEXT),
    ),
)

TABLES: tuple[Table, ...] = (MEMBERS, PURCHASES, PARTNERS, OFFERS)
