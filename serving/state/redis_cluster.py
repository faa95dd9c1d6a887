"""The Redis state store on Redis Cluster (several primaries), configured by a
`redis+cluster://[user:password@]host:port[,host:port...]` URL.

Every key of one member shares the slot of `{m:<member_id>}`, so a request's select.lua runs
once, on the member's slot; budgets and offer_total caps live in each offer's slot and are
checked and reserved there (`offer_slots`: a pipelined call before the member's script, a
release of what it did not use after it). Shared state has one slot per group (`{events}`,
`{decisions}`, `{live}`, `{privacy}`: `keys.group_tag`). Every multi-key command and script
stays in one slot; what spanned slots on one server (event counting, the personalization-off
set beside a member's preferences, forgetting a member) is a pipeline of single-slot commands
here (see docs/redis_keys.md for what that gives up).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import RedisClusterException
from redis.retry import Retry

from perkrank.config import CapRule
from perkrank.serving.domain.events import EVENT_ID_TTL_SECONDS, EventsRecorded, OfferEvent
from perkrank.serving.domain.row_selection import RowBatch, SelectReply, rows_by_requests
from perkrank.serving.domain.selection import SUPPRESSION_REASONS, Selection, SelectionRequest
from perkrank.serving.state.event_counters import event_counters
from perkrank.serving.state.keys import (
    event_id_key,
    events_key,
    glob_escaped,
    member_tag,
    preferences_key,
    redeemed_key,
    shown_decision_key,
)
from perkrank.serving.state.offer_slots import (
    RELEASE_SCRIPT,
    RESERVE_SCRIPT,
    OfferCheck,
    offer_checks,
    offer_state_text,
)
from perkrank.serving.state.ports import StateStoreError
from perkrank.serving.state.redis_fields import stream_entry
from perkrank.serving.state.redis_persistence import persistence_problem
from perkrank.serving.state.redis_privacy import STREAM_PAGE
from perkrank.serving.state.redis_store import RETRY_ON, SELECT_SCRIPT, RedisStateStore
from perkrank.serving.state.script_pipe import ScriptPipe

CLUSTER_SCHEME = "redis+cluster"
RESHARDED = ("MOVED", "ASK", "non local key", "CLUSTERDOWN", "TRYAGAIN")
"""Error replies after which the slot map is read again (slots moved between primaries)."""

log = logging.getLogger("perkrank.serving")


def cluster_nodes(url: str) -> tuple[list[ClusterNode], dict[str, str]]:
    """The startup nodes of a redis+cluster:// URL and its credentials (username, password)."""
    parts = urlsplit(url)
    credentials, _, hosts = parts.netloc.rpartition("@")
    nodes = []
    for address in filter(None, hosts.split(",")):
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"redis_url {url!r}: expected host:port, got {address!r}")
        nodes.append(ClusterNode(host.strip("[]"), int(port)))
    if parts.scheme != CLUSTER_SCHEME or not nodes:
        raise ValueError(f"redis_url {url!r}: expected {CLUSTER_SCHEME}://host:port[,host:port]")
    login: dict[str, str] = {}
    if credentials:
        user, has_password, password = credentials.partition(":")
        login = {"password": unquote(password)} if has_password else {"password": unquote(user)}
        if has_password and user:
            login["username"] = unquote(user)
    return nodes, login


class RedisClusterStateStore(RedisStateStore):
    """StateStore on Redis Cluster: `RedisStateStore` with single-slot scripts, offer-wide
    limits reserved in their own slots, and cross-slot writes as pipelines."""

    _cluster = True

    def _open_client(self, url: str) -> Any:
        """A RedisCluster client; it reads the slot map from the first node that answers."""
        nodes, login = cluster_nodes(url)
        user = quote(login.get("username", ""), safe="")
        self._login = f"{user}:{quote(login['password'], safe='')}@" if login else ""
        self._pipes: dict[tuple[str, str], ScriptPipe] = {}
        self._releasing: set[asyncio.Task[None]] = set()
        options = {k: v for k, v in self._options.items() if k != "health_check_interval"}
        try:
            return RedisCluster(
                startup_nodes=nodes,
                retry=Retry(NoBackoff(), retries=1, supported_errors=RETRY_ON),
                **login,
                **options,
            )
        except (RedisClusterException, redis.RedisError) as error:
            raise StateStoreError(f"Redis Cluster at {self._location}: {error}") from error

    async def select(self, request: SelectionRequest) -> Selection:
        """Reserve offer-wide limits in the offers' slots, run select.lua on the member's
        slot, release what it did not choose: scripts pipelined per node (`ScriptPipe`)."""
        arguments = self._select_arguments(request)
        try:
            reply = await self._select_in_slots(request, arguments)
        except redis.RedisError as error:
            if any(sign in str(error) for sign in RESHARDED):
                await asyncio.to_thread(self._client.nodes_manager.initialize)
            raise self._error("selecting offers", error) from error
        return self._selection(request, reply)

    async def select_many(self, requests: Sequence[SelectionRequest]) -> list[Selection]:
        """`select` of each request: a member's first request without offer-wide limits all
        at once (the calls to each primary go out together on its pipe, each member's script on
        its slot), then in order those with offer_total caps or budgets, so that the
        reservations of members in flight never leave an offer out as capped (caps exact, as
        on one server), and a member's later requests (counted after its earlier ones)."""
        seen: set[str] = set()
        in_turn = []
        for request in requests:
            in_turn.append(_offer_wide(request) or request.member_id in seen)
            seen.add(request.member_id)
        selections: list[Selection | None] = [None] * len(requests)
        apart = [i for i, waits in enumerate(in_turn) if not waits]
        together = await asyncio.gather(*(self.select(requests[i]) for i in apart))
        for index, selection in zip(apart, together, strict=True):
            selections[index] = selection
        for index in (i for i, waits in enumerate(in_turn) if waits):
            selections[index] = await self.select(requests[index])
        return [selection for selection in selections if selection is not None]

    async def select_rows(self, batch: RowBatch) -> list[SelectReply]:
        """`batch` by `select_many` (`rows_by_requests`): each member in its own slot."""
        return await rows_by_requests(self, batch)

    async def _offer_rules(self, request: SelectionRequest) -> Sequence[CapRule]:
        """The rules the offers' slots check: a re-shown decision (its shown key is in the
        member's slot) is not counted again by rules that count served offers."""
        if not request.decision_id:
            return request.rules
        key = shown_decision_key(self._prefix, request.member_id, request.decision_id)
        if not await asyncio.to_thread(self._client.exists, key):
            return request.rules
        return [rule for rule in request.rules if rule.counts != "served"]

    async def _select_in_slots(self, request: SelectionRequest, arguments: list[Any]) -> Any:
        lists = (request.personalized, request.fallback)
        checks = offer_checks(self._prefix, await self._offer_rules(request), request.now, lists)
        states = await self._reserve(checks)
        held = {c.offer_id: (c, states[c.offer_id][1]) for c in checks if c.served_keys}
        if checks:
            arguments = self._select_arguments(request, offer_state_text(states))
        key = preferences_key(self._prefix, request.member_id)
        try:
            reply = (await self._pipe("select", SELECT_SCRIPT, key).call(arguments))[0]
        except asyncio.CancelledError:  # the client left: release in a task of its own
            self._release_later(list(held.values()))
            raise
        except Exception:
            await self._release(list(held.values()))  # nothing was served
            raise
        walked = request.personalized if reply[0] == 1 else request.fallback
        chosen = Counter(walked[i].offer_id for i in reply[2 + len(SUPPRESSION_REASONS) :])
        await self._release([(c, room - chosen[c.offer_id]) for c, room in held.values()])
        return reply

    async def _reserve(self, checks: Sequence[OfferCheck]) -> dict[str, tuple[int, int]]:
        """Each offer's redemptions and room, the room added to its served counters. When a
        call fails, the reservations the others made are released and its error raised."""
        calls = [("reserve", RESERVE_SCRIPT, check.arguments) for check in checks]
        replies = await self._offer_calls(calls)
        states = {
            check.offer_id: (reply[0], reply[1])
            for check, reply in zip(checks, replies, strict=True)
            if isinstance(reply, list)
        }
        failed = [reply for reply in replies if isinstance(reply, BaseException)]
        if failed:
            held = [(c, states[c.offer_id][1]) for c in checks if c.offer_id in states]
            await self._release([(check, room) for check, room in held if check.served_keys])
            raise failed[0]
        return states

    async def _release(self, unused: Sequence[tuple[OfferCheck, int]]) -> None:
        """Take back `amount` from each check's served counters (nothing for 0)."""
        calls = [
            ("release", RELEASE_SCRIPT, [amount, *check.served_keys])
            for check, amount in unused
            if amount > 0 and check.served_keys
        ]
        for reply in await self._offer_calls(calls):
            if isinstance(reply, BaseException):
                raise reply

    async def _offer_calls(self, calls: list[tuple[str, str, list[Any]]]) -> list[object]:
        """Each (name, script, ARGV) on the primary of its offer's slot (the first key): one
        `call_many` per primary, replies (or errors) in the order of `calls`."""
        if not calls:
            return []
        by_pipe: dict[ScriptPipe, list[int]] = {}
        for index, (name, script, arguments) in enumerate(calls):
            key = arguments[0] if name == "reserve" else arguments[1]
            by_pipe.setdefault(self._pipe(name, script, key), []).append(index)
        groups = list(by_pipe.items())
        answers = await asyncio.gather(
            *(pipe.call_many([calls[i][2] for i in indexes]) for pipe, indexes in groups),
            return_exceptions=True,
        )
        replies: list[object] = [None] * len(calls)
        for (_, indexes), answer in zip(groups, answers, strict=True):
            for position, index in enumerate(indexes):
                replies[index] = answer if isinstance(answer, BaseException) else answer[position]
        return replies

    def _release_later(self, unused: Sequence[tuple[OfferCheck, int]]) -> None:
        """Release in a task of its own: the request was cancelled."""
        if unused:
            task = asyncio.ensure_future(self._release(unused))
            self._releasing.add(task)
            task.add_done_callback(self._releasing.discard)

    def _pipe(self, name: str, script: str, key: str) -> ScriptPipe:
        """The pipe of `script` to the primary holding `key`'s slot, in this event loop."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop, self._pipes = loop, {}
        node = self._client.get_node_from_key(key)
        pipe = self._pipes.get((node.name, name))
        if pipe is None:
            url = f"redis://{self._login}{node.host}:{node.port}/0"
            pipe = ScriptPipe(url, script, self._options["socket_timeout"])
            self._pipes[(node.name, name)] = pipe
        return pipe

    async def close(self) -> None:
        """Close the cluster client and the pipes (those of other event loops are left to
        them)."""
        if self._loop is asyncio.get_running_loop():
            for pipe in self._pipes.values():
                pipe.close()
        self._pipes = {}
        await super().close()

    def record_events(
        self, events: Sequence[OfferEvent], rules: Sequence[CapRule], now: float
    ) -> EventsRecorded:
        """Mark event ids seen (SET NX, one pipeline), then count the new events and append
        them to the stream (a second pipeline). When the second fails, the ids are unmarked
        so that a retry counts them: some counters may then count an event twice (caps and
        budgets err on the safe side), none never."""
        id_keys = [
            None if event.event_id is None else event_id_key(self._prefix, event.event_id)
            for event in events
        ]

        def record() -> EventsRecorded:
            pipeline = self._client.pipeline(transaction=False)
            for key in filter(None, id_keys):
                pipeline.set(key, "1", nx=True, ex=EVENT_ID_TTL_SECONDS)
            fresh = iter(pipeline.execute())
            kept = [
                (e, k) for e, k in zip(events, id_keys, strict=True) if k is None or next(fresh)
            ]
            try:
                self._count(pipeline, [event for event, _ in kept], rules, now)
            except redis.RedisError:
                marked = [key for _, key in kept if key is not None]
                if marked:
                    self._client.delete(*marked)
                raise
            return EventsRecorded(len(kept), len(events) - len(kept))

        return self._call("recording events", record)

    def _count(
        self, pipeline: Any, events: Sequence[OfferEvent], rules: Sequence[CapRule], now: float
    ) -> None:
        stream = events_key(self._prefix, cluster=True)
        for event in events:
            for counter in event_counters(self._prefix, event, rules, now):
                ttl = counter.ttl_seconds or 0
                if counter.field is None:
                    if ttl:  # created with its window's expiry, which INCR keeps
                        pipeline.set(counter.key, 0, nx=True, ex=ttl)
                    pipeline.incr(counter.key)
                else:
                    pipeline.hincrby(counter.key, counter.field, 1)
                    if ttl:
                        pipeline.expire(counter.key, ttl)
            if event.type == "redemption":
                pipeline.incr(redeemed_key(self._prefix, event.offer_id))
            entry = stream_entry(event)
            fields = dict(zip(entry[::2], entry[1::2], strict=True))
            pipeline.xadd(stream, fields, maxlen=self._events_kept, approximate=True)
        pipeline.execute()

    def warn_without_persistence(self) -> None:
        """Log a warning for every primary that forgets opt-outs on restart."""
        for node in self._client.get_primaries():
            problem = persistence_problem(self._client.get_redis_connection(node))
            if problem is not None:
                log.warning("Redis Cluster node %s: %s", node.name, problem)

    def _scan_page(self, cursor: str, pattern: str, count: int) -> tuple[str, list[str]]:
        """One SCAN page of one primary: cursor "<node>:<position>" walks the primaries (by
        name) one after another ("0": the first from its start)."""
        nodes = sorted(self._client.get_primaries(), key=lambda node: node.name)
        index, _, position = cursor.partition(":")
        node = nodes[int(index)]
        client = self._client.get_redis_connection(node)
        after, keys = client.scan(int(position or 0), match=pattern, count=count)
        if after:
            return f"{index}:{after}", keys
        following = int(index) + 1
        return (f"{following}:0" if following < len(nodes) else "0"), keys

    def _member_keys(self, member_id: str) -> Iterator[str]:
        """Every key in the member's hash tag: SCAN MATCH on the primary of its slot."""
        tag = member_tag(self._prefix, member_id)
        client = self._client.get_redis_connection(self._client.get_node_from_key(tag))
        yield from client.scan_iter(match=glob_escaped(tag) + ":*", count=STREAM_PAGE)


def _offer_wide(request: SelectionRequest) -> bool:
    """The request's candidates are under an offer_total cap or a budget."""
    if any(rule.scope == "offer_total" for rule in request.rules):
        return True
    lists = (request.personalized, request.fallback)
    return any(candidate.budget is not None for candidates in lists for candidate in candidates)
