"""One Lua script called over one pipelined Redis connection: the offers request's store call.

redis-py's asyncio client spends more CPU per call than select.lua spends in Redis (a
connection pool, retry and timeout wrappers, command packing). Here every call is one
EVALSHA written to a single connection, with any number of calls in flight; Redis answers a
connection's commands in order, so replies (parsed by hiredis) resolve the waiting calls in
order. Calls made in the same event loop turn go out in one write.

Errors are redis-py's: `ConnectionError` when the connection cannot be made or breaks,
`TimeoutError` when a reply is later than the timeout (in a batch, `call_many`: when no
reply came for the timeout), `ResponseError` for an error reply.
A broken or timed-out connection fails every call in flight (none is retried: it may have
run) and the next call connects again. Reconnecting is one attempt at a time, shared: calls
made while it is pending wait for it (at most the timeout, which bounds the whole attempt)
and all get its result, so a frozen Redis costs each call one timeout, never a queue of them.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections import deque
from collections.abc import Sequence
from typing import Any, NamedTuple, cast

import hiredis
import redis
from redis.connection import SSLConnection, parse_url

Argument = str | int | bytes


class Packed(NamedTuple):
    """A script's ARGV already in the Redis protocol: `count` bulk strings (`bulk`), `body`."""

    count: int
    body: bytes


Arguments = Sequence[Argument] | Packed


class ScriptPipe:
    """Calls of one script on one Redis server, pipelined; use from one event loop only."""

    def __init__(self, url: str, script: str, timeout: float) -> None:
        """`url`: redis://, rediss:// or unix:// with optional user, password and database."""
        self._url = parse_url(url)
        self._script = script.encode()
        self._sha = hashlib.sha1(self._script).hexdigest().encode()
        self._timeout = timeout
        self._connection: _Connection | None = None
        self._connecting: asyncio.Task[_Connection] | None = None
        self.connection_attempts = 0
        """Connections tried so far (each shared by the calls waiting for it)."""

    async def call(self, arguments: Arguments) -> object:
        """The script's reply to `arguments` (its ARGV; it names no KEYS)."""
        connection = await self._connected()
        reply = await connection.request(script_call(b"EVALSHA", self._sha, arguments))
        if isinstance(reply, hiredis.ReplyError) and str(reply).startswith("NOSCRIPT"):
            reply = await connection.request(script_call(b"EVAL", self._script, arguments))
        if isinstance(reply, hiredis.ReplyError):
            raise redis.ResponseError(str(reply))
        return reply

    async def call_many(self, calls: Sequence[Arguments]) -> list[object]:
        """The script's replies to several calls sent at once, each in its place; an error
        reply is a ResponseError in its place (a broken connection raises)."""
        connection = await self._connected()
        futures = connection.request_many([script_call(b"EVALSHA", self._sha, a) for a in calls])
        if not futures:
            return []
        try:  # replies come in order: once the last one is in, all are
            await futures[-1]
        finally:  # (cancelled: the replies still due are read and dropped)
            for future in futures:
                if not future.done():
                    future.add_done_callback(_drop)
            errors = [f.exception() for f in futures if f.done() and not f.cancelled()]
        if any(errors):
            raise next(error for error in errors if error)
        replies = [future.result() for future in futures]
        for index, reply in enumerate(replies):
            if isinstance(reply, hiredis.ReplyError) and str(reply).startswith("NOSCRIPT"):
                frame = script_call(b"EVAL", self._script, calls[index])
                reply = replies[index] = await connection.request(frame)
            if isinstance(reply, hiredis.ReplyError):
                replies[index] = redis.ResponseError(str(reply))
        return replies

    def close(self) -> None:
        """Close the connection; calls in flight fail with ConnectionError."""
        if self._connecting is not None:
            self._connecting.cancel()
        if self._connection is not None:
            self._connection.fail(redis.ConnectionError("the store was closed"))
            self._connection = None

    async def _connected(self) -> _Connection:
        """The open connection, else the result of the one connection attempt in progress
        (started now if none is): a call never waits for more than one attempt."""
        connection = self._connection
        if connection is not None and connection.open:
            return connection
        attempt = self._connecting
        if attempt is None:
            self.connection_attempts += 1
            attempt = self._connecting = asyncio.ensure_future(self._connect())
            attempt.add_done_callback(self._connect_done)
        try:
            # Shielded: a waiter that is cancelled (its client left) leaves the attempt running.
            return await asyncio.shield(attempt)
        except redis.RedisError as error:
            raise _copy(error) from None

    def _connect_done(self, attempt: asyncio.Task[_Connection]) -> None:
        """Keep the attempt's connection, or forget the failed attempt (its error is read)."""
        self._connecting = None
        if not attempt.cancelled() and attempt.exception() is None:
            self._connection = attempt.result()

    async def _connect(self) -> _Connection:
        """A new connection, authenticated, on the URL's database, with the script loaded,
        all within the timeout."""
        connection: _Connection | None = None
        try:
            async with asyncio.timeout(self._timeout):
                connection = await self._open()
                await self._set_up(connection)
        except TimeoutError:
            error = redis.TimeoutError(f"no connection within {self._timeout * 1000:.0f} ms")
            if connection is not None:
                connection.fail(error)
            raise error from None
        except OSError as error:
            raise redis.ConnectionError(f"connecting: {error!r}") from error
        return connection

    async def _set_up(self, connection: _Connection) -> None:
        """Authenticate, select the URL's database and load the script (one write)."""
        url = self._url
        setup = [pack(b"SCRIPT", b"LOAD", self._script)]
        if url.get("password"):
            user = (url["username"],) if url.get("username") else ()
            setup.insert(0, pack(b"AUTH", *user, url["password"]))
        if url.get("db"):
            setup.append(pack(b"SELECT", url["db"]))
        for reply in await asyncio.gather(*map(connection.request, setup)):
            if isinstance(reply, hiredis.ReplyError):
                connection.fail(redis.ConnectionError(str(reply)))
                raise redis.ResponseError(str(reply))

    async def _open(self) -> _Connection:
        loop, url = asyncio.get_running_loop(), self._url
        options: dict[str, Any] = {}
        if "path" in url:
            _, connection = await loop.create_unix_connection(
                lambda: _Connection(self._timeout), url["path"]
            )
            return connection
        if url.get("connection_class") is SSLConnection:
            options["ssl"] = ssl.create_default_context()
        _, connection = await loop.create_connection(
            lambda: _Connection(self._timeout),
            url.get("host", "localhost"),
            url.get("port", 6379),
            **options,
        )
        return connection


class _Connection(asyncio.Protocol):
    """One socket: requests written in order, replies matched to them in order."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._reader = hiredis.Reader()
        self._waiting: deque[tuple[asyncio.Future[object], asyncio.TimerHandle | None]] = deque()
        """Futures in the order of their requests, each with its timeout (None: one of a
        batch, covered by `_stall`)."""
        self._stall: asyncio.TimerHandle | None = None
        """Armed while batch requests wait: fires after the timeout without any reply."""
        self._outgoing: list[bytes] = []
        self._error: redis.RedisError | None = None

    @property
    def open(self) -> bool:
        return self._error is None

    def request(self, frame: bytes) -> asyncio.Future[object]:
        """The future reply to `frame` (a packed command)."""
        future = self._loop.create_future()
        if self._error is not None:
            future.set_exception(_copy(self._error))
            return future
        expiry = self._loop.call_later(self._timeout, self._expire)
        self._waiting.append((future, expiry))
        self._outgoing.append(frame)
        if len(self._outgoing) == 1:
            self._loop.call_soon(self._flush)
        return future

    def request_many(self, frames: Sequence[bytes]) -> list[asyncio.Future[object]]:
        """The future replies to `frames`, written together. A batch has no timeout per
        request: the connection fails when no reply came for the timeout (`_stall`), so a
        long batch that Redis keeps answering is not cut off."""
        futures = [self._loop.create_future() for _ in frames]
        if self._error is not None:
            for future in futures:
                future.set_exception(_copy(self._error))
            return futures
        if not frames:
            return futures
        self._waiting.extend((future, None) for future in futures)
        if self._stall is None:
            self._stall = self._loop.call_later(self._timeout, self._expire)
        if not self._outgoing:
            self._loop.call_soon(self._flush)
        self._outgoing += frames
        return futures

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        while (reply := self._next_reply()) is not False:
            if not self._waiting:
                self.fail(redis.ConnectionError("Redis sent a reply nobody asked for"))
                return
            future, expiry = self._waiting.popleft()
            if expiry is not None:
                expiry.cancel()
            if not future.done():
                future.set_result(reply)
        if self._stall is not None:  # progress: the batch gets another timeout
            self._stall.cancel()
            self._stall = (
                self._loop.call_later(self._timeout, self._expire) if self._waiting else None
            )

    def _next_reply(self) -> object:
        """The next complete reply, False when none is (a garbled stream fails the socket)."""
        try:
            return self._reader.gets()
        except hiredis.ProtocolError as error:
            self.fail(redis.ConnectionError(f"unreadable reply from Redis: {error}"))
            return False

    def connection_lost(self, exception: Exception | None) -> None:
        self.fail(redis.ConnectionError(f"connection lost: {exception or 'closed by Redis'}"))

    def fail(self, error: redis.RedisError) -> None:
        """Fail every request in flight with `error`, and all later ones; close the socket."""
        if self._error is None:
            self._error = error
        if self._stall is not None:
            self._stall.cancel()
            self._stall = None
        while self._waiting:
            future, expiry = self._waiting.popleft()
            if expiry is not None:
                expiry.cancel()
            if not future.done():
                future.set_exception(_copy(self._error))
        self._outgoing.clear()
        if self._transport is not None:
            self._transport.abort()

    def _flush(self) -> None:
        if self._outgoing and self._transport is not None and self._error is None:
            self._transport.write(b"".join(self._outgoing))
        self._outgoing.clear()

    def _expire(self) -> None:
        error = redis.TimeoutError(f"no reply within {self._timeout * 1000:.0f} ms")
        self.fail(error)


def _drop(future: asyncio.Future[object]) -> None:
    """Read a reply nobody waits for any more (its error is not logged as unretrieved)."""
    if not future.cancelled():
        future.exception()


def _copy(error: redis.RedisError) -> redis.RedisError:
    """A fresh exception per waiting call: one raised in many tasks would pile up tracebacks."""
    return type(error)(*error.args)


_NATIVE = frozenset((str, bytes, int, float))
"""Types hiredis packs as `str()` would; it refuses numpy ints and bools and writes a numpy
float's repr ("np.float64(2.5)"), so anything else is packed in Python."""


def pack(*arguments: Argument) -> bytes:
    """A command in the Redis protocol (RESP): an array of bulk strings (str as UTF-8, any
    other value as its `str()`), written by hiredis in C when every argument is a plain type."""
    if all(type(argument) in _NATIVE for argument in arguments):
        return hiredis.pack_command(arguments)
    return b"*%d\r\n%b" % (len(arguments), b"".join(map(bulk, arguments)))


def bulk(argument: Argument) -> bytes:
    """One argument as a RESP bulk string."""
    if type(argument) is str:
        data = argument.encode()
    else:
        data = argument if type(argument) is bytes else str(argument).encode()
    return b"$%d\r\n%b\r\n" % (len(data), data)


def script_call(command: bytes, script: bytes, arguments: Arguments) -> bytes:
    """EVALSHA `sha` or EVAL `source` of a script without KEYS, with `arguments`."""
    if isinstance(arguments, Packed):
        head = (command, script, b"0")
        return b"*%d\r\n%b%b" % (3 + arguments.count, b"".join(map(bulk, head)), arguments.body)
    return pack(command, script, 0, *arguments)
