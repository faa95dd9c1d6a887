"""Many members' selects over catalog rows (a campaign's chunk, `campaign_rows`).

`select_many` takes one `SelectionRequest` per member, each with its own candidate objects,
and answers offer ids. A campaign's chunk names the same few hundred offers for every member,
so `RowBatch` names them by catalog row once, and each member's lists are rows; the answer
is select.lua's own reply (`SelectReply`: flags, counts, chosen positions), with nothing
built per offer. A store selects such a batch natively (`RedisStateStore.select_rows`) or by
`select_many` (`rows_by_requests`): the same decisions and counts either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from perkrank.config import CapRule
from perkrank.serving.domain.selection import (
    SUPPRESSION_REASONS,
    BatchSelector,
    Candidate,
    Selection,
    SelectionRequest,
)

SelectReply = list[int]
"""One member's answer, as select.lua replies: personalized (1|0), purchase_reasons (1|0),
the `SUPPRESSION_REASONS` counts, then the chosen candidates' positions (0-based) in the list
it walked (personalized, else fallback)."""
CHOSEN = 2 + len(SUPPRESSION_REASONS)
"""Where a reply's chosen positions start."""


class RowMember(NamedTuple):
    """One member of a batch: id, decision id, and both lists as catalog rows, best first
    (members in a row sharing one fallback list pass the same list object)."""

    member_id: str
    decision_id: str
    personalized: Sequence[int]
    fallback: Sequence[int]


@dataclass(frozen=True)
class RowBatch:
    """What the members of a batch share (a `SelectionRequest`'s fields but the lists and
    ids), then the members, in the order they are counted."""

    candidates: Sequence[Candidate]
    """By catalog row (`Catalog.candidates`)."""
    channel: str
    now: float
    limit: int
    max_per_partner: int
    rules: Sequence[CapRule]
    sensitive: frozenset[str]
    decision_ttl_seconds: int
    members: Sequence[RowMember]


class RowSelector(Protocol):
    """A store that selects a `RowBatch` itself."""

    async def select_rows(self, batch: RowBatch) -> list[SelectReply]:
        """Each member's reply, in order, each counted atomically on its own."""
        ...


async def select_rows(store: BatchSelector, batch: RowBatch) -> list[SelectReply]:
    """`store.select_rows(batch)` where the store has it, else `rows_by_requests`."""
    native = getattr(store, "select_rows", None)
    if native is not None:
        return await native(batch)
    return await rows_by_requests(store, batch)


async def rows_by_requests(store: BatchSelector, batch: RowBatch) -> list[SelectReply]:
    """`batch` as one `SelectionRequest` per member through `store.select_many`, each answer
    as select.lua's reply."""
    candidates = batch.candidates
    requests = [
        SelectionRequest(
            member_id=member.member_id,
            channel=batch.channel,
            now=batch.now,
            limit=batch.limit,
            max_per_partner=batch.max_per_partner,
            personalized=[candidates[row] for row in member.personalized],
            fallback=[candidates[row] for row in member.fallback],
            rules=batch.rules,
            sensitive=batch.sensitive,
            decision_id=member.decision_id,
            decision_ttl_seconds=batch.decision_ttl_seconds,
        )
        for member in batch.members
    ]
    selections = await store.select_many(requests)
    return [_reply(r, s) for r, s in zip(requests, selections, strict=True)]


def _reply(request: SelectionRequest, selection: Selection) -> SelectReply:
    walked = request.personalized if selection.personalized else request.fallback
    positions = {candidate.offer_id: n for n, candidate in enumerate(walked)}
    counts = [selection.suppressed.get(reason, 0) for reason in SUPPRESSION_REASONS]
    flags = [int(selection.personalized), int(selection.purchase_reasons)]
    return [*flags, *counts, *(positions[offer_id] for offer_id in selection.offer_ids)]
