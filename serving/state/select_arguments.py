"""select.lua's ARGV for one call: the offer records once, then each member's request.

A call decides one member (`RedisStateStore.select`) or many in order (`select_many`). The
candidates' records (`Candidate.record`) go once per call; a member's candidate lists are
the records' numbers (1-based, comma-separated), and a fallback list equal to the previous
member's is `=`: a campaign's members share most offers and their segment's fallback order.
The arguments are encoded as they are added (`script_pipe.Packed`), those the members share
(channel, rules, sensitive categories, numbers) once per call. The layout is select.lua's
header comment.

A call of one member (`RedisStateStore.select`) numbers its two lists as a fresh call would;
`NumberedLists` keeps that numbering by the lists' identity: a kept member's lists
(`MemberCache`) and a segment's shared orders are the same list objects from request to
request (lists the ranker built are never changed).
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Sequence
from operator import attrgetter

from perkrank.serving.domain.row_selection import RowBatch
from perkrank.serving.domain.selection import Candidate, SelectionRequest
from perkrank.serving.state.script_pipe import Packed, bulk

RECORD = attrgetter("record")
MAX_ENCODED_RECORDS = 65_536
"""Encoded records kept (a catalog has a few thousand; a publish brings new ones)."""
MEMBER_ARGUMENTS = 9
"""ARGV entries per member (select.lua's MEMBER_ARGS)."""
SAME_FALLBACK = bulk("=")
MEMBER_FRAME = b"$%d\r\n%b\r\n$%d\r\n%b\r\n%b$%d\r\n%b\r\n%b$%d\r\n%b\r\n"
"""A member's arguments in RESP: id, decision id, the shared ones (encoded), personalized,
fallback (encoded), offer-state."""
"""A fallback list equal to the previous member's."""
MAX_NUMBERED_LISTS = 4096
"""Pairs of lists `NumberedLists` keeps (a few KB each)."""


class SelectCall:
    """The ARGV of one select.lua call, built member by member (`add`), then `arguments`."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._numbers: dict[str, str] = {}
        """Record → its number in this call, as text."""
        self._records: list[bytes] = []
        self._members: list[bytes] = []
        """Each member's arguments, encoded."""
        self._shared: dict[tuple[str, ...], bytes] = {}
        """The encoded arguments 3-6 (numbers, channel, rules, sensitive) by their values."""
        self._fallback: Sequence[Candidate] | None = None
        self._sensitive: frozenset[str] | None = None
        self._sensitive_text = ""

    def add(self, request: SelectionRequest, rules_text: str, cluster_state: str = "") -> None:
        """Append `request`, its rules as `RedisStateStore._rules_text` encodes them and, on
        Cluster, its offers' state (`offer_slots.offer_state_text`)."""
        previous, self._fallback = self._fallback, request.fallback
        if previous is not None and (request.fallback is previous or request.fallback == previous):
            fallback = SAME_FALLBACK
            personalized = self._numbered(request.personalized).encode()
        else:
            personalized, fallback = self.numbered_lists(request)
        self.add_numbered(request, rules_text, personalized, fallback, cluster_state)

    def numbered_lists(self, request: SelectionRequest) -> tuple[bytes, bytes]:
        """`request`'s lists numbered in this call (the fallback first, records new to the
        call added): the personalized numbers encoded, the fallback's as a bulk string."""
        fallback = bulk(self._numbered(request.fallback))
        return self._numbered(request.personalized).encode(), fallback

    def add_numbered(
        self,
        request: SelectionRequest,
        rules_text: str,
        personalized: bytes,
        fallback: bytes,
        cluster_state: str = "",
    ) -> None:
        """`add` of a request whose lists are numbered already (`numbered_lists`)."""
        if request.sensitive is not self._sensitive:
            self._sensitive = request.sensitive
            self._sensitive_text = "\x1e".join(sorted(request.sensitive))
        values = (
            f"{request.limit},{request.max_per_partner},{request.local_slots},"
            f"{request.decision_ttl_seconds}",
            request.channel,
            rules_text,
            self._sensitive_text,
        )
        shared = self._shared.get(values)
        if shared is None:
            shared = self._shared[values] = b"".join(map(bulk, values))
        member, decision = request.member_id.encode(), request.decision_id.encode()
        state = cluster_state.encode()
        self._members.append(
            MEMBER_FRAME
            % (
                *(len(member), member, len(decision), decision, shared),
                *(len(personalized), personalized, fallback, len(state), state),
            )
        )

    def arguments(self) -> Packed:
        """The call's ARGV: prefix, record count, records, each member's entries."""
        head = bulk(self._prefix) + bulk(len(self._records))
        count = 2 + len(self._records) + MEMBER_ARGUMENTS * len(self._members)
        return Packed(count, b"".join([head, *self._records, *self._members]))

    @property
    def records(self) -> list[bytes]:
        """The encoded records numbered so far, in number order."""
        return self._records

    def with_records(self, records: list[bytes]) -> None:
        """Start this (empty) call with `records` numbered already (shared, not copied: add
        only `add_numbered` requests to it)."""
        self._records = records

    def _numbered(self, candidates: Sequence[Candidate]) -> str:
        """`candidates` as their records' numbers, records new to this call added."""
        numbers = self._numbers
        try:
            return ",".join(map(numbers.__getitem__, map(RECORD, candidates)))
        except KeyError:
            for record in map(RECORD, candidates):
                if record not in numbers:
                    self._records.append(encoded_record(record))
                    numbers[record] = str(len(self._records))
            return ",".join([numbers[candidate.record] for candidate in candidates])


class NumberedLists:
    """One-member calls' numbering of their two lists, kept by the lists' identity (LRU)."""

    def __init__(self, size: int = MAX_NUMBERED_LISTS) -> None:
        self._size = size
        self._kept: OrderedDict[tuple[int, int], tuple] = OrderedDict()

    def arguments(
        self, prefix: str, request: SelectionRequest, rules_text: str, cluster_state: str = ""
    ) -> Packed:
        """`SelectCall(prefix)` with `request` added: its ARGV, the same bytes."""
        personalized, fallback = request.personalized, request.fallback
        key = (id(personalized), id(fallback))
        kept = self._kept.get(key)
        if kept is None or kept[0] is not personalized or kept[1] is not fallback:
            numbering = SelectCall(prefix)
            kept = (personalized, fallback, numbering.records, *numbering.numbered_lists(request))
            self._kept[key] = kept
            if len(self._kept) > self._size:
                self._kept.popitem(last=False)
        else:
            self._kept.move_to_end(key)
        call = SelectCall(prefix)
        call.with_records(kept[2])
        call.add_numbered(request, rules_text, kept[3], kept[4], cluster_state)
        return call.arguments()

    def __len__(self) -> int:
        return len(self._kept)


@functools.lru_cache(maxsize=MAX_ENCODED_RECORDS)
def encoded_record(record: str) -> bytes:
    """A record as a RESP bulk string, encoded once per record (a catalog's records repeat
    in every call)."""
    return bulk(record)


def row_calls(prefix: str, batch: RowBatch, rules_text: str, per_call: int) -> list[Packed]:
    """select.lua's ARGV for `batch`, `per_call` members a call: the records of the rows the
    call's members name (numbered by row), then each member's entries, a fallback list
    equal to the member before's as `=`."""
    candidates, texts = batch.candidates, [""] * len(batch.candidates)
    numbers = f"{batch.limit},{batch.max_per_partner},0,{batch.decision_ttl_seconds}"
    sensitive = "\x1e".join(sorted(batch.sensitive))
    shared = b"".join(map(bulk, (numbers, batch.channel, rules_text, sensitive)))
    number, members, calls = texts.__getitem__, batch.members, []
    for start in range(0, len(members), per_call):
        chunk = members[start : start + per_call]
        named: set[int] = set()
        for member in chunk:
            named.update(member.personalized)
            named.update(member.fallback)
        rows = sorted(named)
        for row_number, row in enumerate(rows, start=1):
            texts[row] = str(row_number)
        frames = [bulk(prefix), bulk(len(rows))]
        frames += [encoded_record(candidates[row].record) for row in rows]
        previous = None
        for member_id, decision_id, personalized, fallback in chunk:
            if previous is not None and (fallback is previous or fallback == previous):
                fallen = SAME_FALLBACK
            else:
                fallen = bulk(",".join(map(number, fallback)))
            previous = fallback
            member, decision = member_id.encode(), decision_id.encode()
            chosen = ",".join(map(number, personalized)).encode()
            frames.append(
                MEMBER_FRAME
                % (
                    *(len(member), member, len(decision), decision, shared),
                    *(len(chosen), chosen, fallen, 0, b""),
                )
            )
        calls.append(Packed(2 + len(rows) + MEMBER_ARGUMENTS * len(chunk), b"".join(frames)))
    return calls
