"""The data contract: the four input tables, their columns and the allowed values.

Column names come from `columns.Columns` (see docs/data.md for the prose version).
"""

import re
from dataclasses import dataclass
from enum import StrEnum

from perkrank.features.columns import Columns

TIERS: tuple[str, ...] = ("base", "silver", "gold", "vip")
"""Lowest first: an offer open to a tier is open to every tier above it."""
CHANNELS: tuple[str, ...] = ("store", "app", "web", "push", "sms", "email")
"""Where members buy and are shown offers (push, SMS and e-mail since the channels issue)."""
OCCASIONS: tuple[str, ...] = ("birthday", "welcome", "winback", "tier_upgrade")
"""What an occasion offer targets (`features.occasions` says when each applies)."""
SCOPES: tuple[str, ...] = ("federal", "local")
LOCAL_SCOPE = "local"
"""The scope of a partner operating in one or a few regions (the local floor counts them)."""
LIST_SEPARATOR = ";"
"""Separator inside list-valued cells (partner regions and categories, offer regions)."""


NOT_PRINTABLE: tuple[tuple[int, int], ...] = ((0x00, 0x1F), (0x7F, 0x9F), (0x2028, 0x2029))
"""Code point ranges no text or list cell may hold: the C0 controls (tab, line breaks and the
record separators \\x1e and \\x1f that serving's store records use), DEL, the C1 controls
and the line and paragraph separators U+2028 and U+2029."""
NOT_PRINTABLE_RE2 = (
    "[" + "".join(f"\\x{{{low:x}}}-\\x{{{high:x}}}" for low, high in NOT_PRINTABLE) + "]"
)
"""`NOT_PRINTABLE` as an RE2 character class (for pyarrow.compute)."""
ID_MAX_LENGTH = 64
"""Longest id, category or region: what the HTTP API accepts in events, opt-outs and queries."""

_NOT_PRINTABLE = re.compile(
    "[" + "".join(f"{chr(low)}-{chr(high)}" for low, high in NOT_PRINTABLE) + "]"
)
_TIER_RANKS = {tier: rank for rank, tier in enumerate(TIERS)}


def tier_rank(tier: str) -> int:
    """Position of `tier` in `TIERS` (base < silver < gold < vip)."""
    return _TIER_RANKS[tier]


def text_problem(value: str, max_length: int | None = None) -> str | None:
    """Why `value` breaks the text rule (printable, at most `max_length` characters); None if
    it does not. The loader and serving's catalog checks share this rule."""
    found = _NOT_PRINTABLE.search(value)
    if found is not None:
        return f"holds U+{ord(found[0]):04X}, a control character; text must be printable"
    if max_length is not None and len(value) > max_length:
        return f"is longer than {max_length} characters"
    return None


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
    max_length: int | None = None
    """Longest text (each item of a list); ids, categories and regions: `ID_MAX_LENGTH`."""


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
        Column(Columns.member_id, Kind.TEXT, max_length=ID_MAX_LENGTH),
        Column(Columns.region, Kind.TEXT, max_length=ID_MAX_LENGTH),
        Column(Columns.tier, Kind.TEXT, choices=TIERS),
        Column(Columns.birth_date, Kind.DATE, required=False),
        Column(Columns.signup_date, Kind.DATE),
    ),
)

PURCHASES = Table(
    name="purchases",
    columns=(
        Column(Columns.member_id, Kind.TEXT, max_length=ID_MAX_LENGTH),
        Column(Columns.ts, Kind.TIMESTAMP),
        Column(Columns.partner_id, Kind.TEXT, max_length=ID_MAX_LENGTH),
        Column(Columns.category, Kind.TEXT, max_length=ID_MAX_LENGTH),
        Column(Columns.amount, Kind.NUMBER),
        Column(Columns.channel, Kind.TEXT, choices=CHANNELS),
    ),
)

PARTNERS = Table(
    name="partners",
    id_column=Columns.partner_id,
    columns=(
        Column(Columns.partner_id, Kind.TEXT, max_length=ID_MAX_LENGTH),
        Column(Columns.name, Kind.TEXT),
        Column(Columns.scope, Kind.TEXT, choices=SCOPES),
        Column(Columns.regions, Kind.LIST, required=False, max_length=ID_MAX_LENGTH),
        Column(Columns.categories, Kind.LIST, max_length=ID_MAX_LENGTH),
    ),
)

OFFERS = Table(
    name="offers",
    id_column=Columns.offer_id,
    columns=(
        Column(Columns.offer_id, Kind.TEXT, max_length=ID_MAX_LENGTH),
        Column(Columns.partner_id, Kind.TEXT, max_length=ID_MAX_LENGTH),
        Column(Columns.category, Kind.TEXT, max_length=ID_MAX_LENGTH),
        Column(Columns.title, Kind.TEXT),
        Column(Columns.regions, Kind.LIST, required=False, max_length=ID_MAX_LENGTH),
        Column(Columns.min_tier, Kind.TEXT, choices=TIERS),
        Column(Columns.valid_from, Kind.DATE),
        Column(Columns.valid_to, Kind.DATE),
        Column(Columns.budget, Kind.INTEGER, required=False),
        Column(Columns.reward, Kind.TEXT),
        Column(Columns.occasion, Kind.TEXT, required=False, choices=OCCASIONS),
        Column(Columns.exclusive_tier, Kind.TEXT, required=False, choices=TIERS),
        Column(Columns.reward_cost, Kind.NUMBER, required=False),
        Column(Columns.partner_funding, Kind.NUMBER, required=False),
    ),
)

TABLES: tuple[Table, ...] = (MEMBERS, PURCHASES, PARTNERS, OFFERS)
