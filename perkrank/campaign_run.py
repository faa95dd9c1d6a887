"""`perkrank decide`: a campaign's decisions for a list of members, into a JSON Lines file.

Members are decided a chunk at a time (`serving.campaign.decide_chunk`); each chunk's lines
are appended to the output file and synced to disk before the next chunk starts. A rerun of
the same command resumes: members with a line in the output file are skipped, a partly
written last line (the run was killed while writing it) is cut off, and a member decided but
not written (killed between the store call and the write) gets the same decision id again,
which the store counts once. The decision log may then hold that member's decision twice
(same `decision_id`).
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import orjson
from threadpoolctl import threadpool_limits

from perkrank.progress import Counter, every_quarter
from perkrank.serving.campaign import CAMPAIGN_ID, MEMBER_ID, DecisionLines, decide_chunk
from perkrank.serving.domain.context import ServingContext
from perkrank.serving.domain.row_selection import RowBatch, SelectReply, select_rows
from perkrank.serving.domain.selection import BatchSelector, Selection, SelectionRequest

CHUNK = 1000
"""Members per chunk: one store round trip and one synced write each."""
IN_FLIGHT = 2
"""Chunks decided at once: one in the store while the next one is ranked."""
MEMBERS_HEADER = "member_id"
COLLECT_EVERY = 20
"""Chunks written between two collections of cyclic garbage (a chunk makes next to none)."""


class CampaignFileError(ValueError):
    """A members or output file this command cannot use; the message names file and line."""


@dataclass(frozen=True)
class CampaignRun:
    """What one run did: members decided now, skipped (already in the output file), decided
    with at least one offer, and the run's wall seconds."""

    decided: int
    skipped: int
    with_offers: int
    seconds: float

    @property
    def rate(self) -> float:
        """Members decided per second of this run."""
        return self.decided / self.seconds if self.seconds > 0 else 0.0


def read_members(path: Path) -> list[str]:
    """The member ids of `path`, one a line (a first line `member_id` is a header; blank
    lines are skipped; a member listed twice is decided once)."""
    members: dict[str, None] = {}
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            member_id = line.strip()
            if not member_id or (number == 1 and member_id == MEMBERS_HEADER):
                continue
            if not MEMBER_ID.fullmatch(member_id):
                raise CampaignFileError(
                    f"{path}:{number}: member_id {member_id[:80]!r} is not 1-64 letters, "
                    "digits or _ . : -"
                )
            members[member_id] = None
    return list(members)


def decided_members(out: Path, campaign: str) -> set[str]:
    """Members the output file already holds a decision for, in `campaign`. A last line
    without its newline (a write cut off) is removed from the file."""
    if not out.exists():
        return set()
    data = out.read_bytes()
    complete = data.rfind(b"\n") + 1
    if complete < len(data):
        with out.open("r+b") as file:
            file.truncate(complete)
            file.flush()
            os.fsync(file.fileno())
    done = set()
    for number, line in enumerate(data[:complete].splitlines(), start=1):
        try:
            record = orjson.loads(line)
            member_id, found = record["member_id"], record["campaign"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as error:
            raise CampaignFileError(f"{out}:{number}: not a decision line ({error})") from None
        if found != campaign:
            raise CampaignFileError(
                f"{out}:{number}: campaign {found!r}, not {campaign!r}: "
                "give another --out or the same --campaign"
            )
        done.add(member_id)
    return done


def run_campaign(
    context: ServingContext,
    members: Sequence[str],
    *,
    campaign: str,
    channel: str,
    out: Path,
    limit: int,
    chunk: int = CHUNK,
    before_write: Callable[[int], None] | None = None,
) -> CampaignRun:
    """Decide every member of `members` not yet in `out` and append their lines to it, then
    close the context's store. `before_write(chunk_number)` runs after a chunk was decided,
    before it is written."""
    if not CAMPAIGN_ID.fullmatch(campaign):
        raise CampaignFileError(f"campaign {campaign[:80]!r}: 1-200 visible ASCII characters")
    done = decided_members(out, campaign)
    todo = [member_id for member_id in members if member_id not in done]
    started = time.perf_counter()
    # a chunk's small products: more threads only contend
    with threadpool_limits(1, "blas"), _collections_per_chunks():
        with_offers = asyncio.run(
            _decide_all(context, todo, campaign, channel, out, limit, chunk, before_write)
        )
    seconds = time.perf_counter() - started
    return CampaignRun(len(todo), len(members) - len(todo), with_offers, seconds)


@contextmanager
def _collections_per_chunks() -> Iterator[None]:
    """The cyclic garbage collector off while the chunks are decided (its automatic runs
    kept walking the chunks in flight, about a third of the CPU of deciding), on again after;
    `_decide_all` collects the young generations every `COLLECT_EVERY` chunks written."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


async def _decide_all(
    context: ServingContext,
    members: Sequence[str],
    campaign: str,
    channel: str,
    out: Path,
    limit: int,
    chunk: int,
    before_write: Callable[[int], None] | None,
) -> int:
    """Decide the chunks in order, `IN_FLIGHT` at once (the store works on one while the
    next is ranked), writing each in order once decided; the number decided with offers."""
    chunks = [members[start : start + chunk] for start in range(0, len(members), chunk)]
    progress = Counter("members", len(chunks), every=max(every_quarter(len(chunks)) // 5, 1))
    pending: deque[asyncio.Task[list]] = deque()
    in_order = _InOrder(context.store)
    decision_lines = DecisionLines(campaign)
    started = with_offers = 0
    try:
        with out.open("ab") as file:
            for number, member_ids in enumerate(chunks):
                while started < len(chunks) and len(pending) < IN_FLIGHT:
                    pending.append(
                        asyncio.ensure_future(
                            decide_chunk(
                                context,
                                campaign,
                                chunks[started],
                                channel,
                                limit,
                                time.time(),
                                in_order,
                                decision_lines,
                            )
                        )
                    )
                    started += 1
                decided = await pending.popleft()
                context.store.record_decisions([decision for decision, _ in decided])
                if before_write is not None:
                    before_write(number)
                file.write(b"".join([line for _, line in decided]))
                file.flush()
                os.fsync(file.fileno())
                with_offers += sum(1 for decision, _ in decided if decision.offers)
                progress.advance(f"{number * chunk + len(member_ids)} members")
                if number % COLLECT_EVERY == COLLECT_EVERY - 1:
                    gc.collect(1)  # cycles of the chunks, if any (`_collections_per_chunks`)
    finally:  # chunks in flight finish (counted, not written: a rerun shows them again)
        await asyncio.gather(*pending, return_exceptions=True)
        await context.store.close()
    return with_offers


class _InOrder:
    """The store's `select_many` and `select_rows`, one call at a time in the order they were
    made: a chunk ranked ahead waits for the chunk before it, so members are counted in list
    order."""

    def __init__(self, store: BatchSelector) -> None:
        self._store = store
        self._turn = asyncio.Lock()  # wakes its waiters first come, first served

    async def select_many(self, requests: Sequence[SelectionRequest]) -> list[Selection]:
        async with self._turn:
            return await self._store.select_many(requests)

    async def select_rows(self, batch: RowBatch) -> list[SelectReply]:
        async with self._turn:
            return await select_rows(self._store, batch)
