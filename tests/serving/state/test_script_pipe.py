"""ScriptPipe: many script calls in flight on one connection, each answered with its own reply;
error replies, a flushed script cache, lost connections and silent servers become redis-py
errors, and the next call connects again."""

import asyncio
from collections.abc import Awaitable, Callable

import numpy as np
import pytest
import redis

from perkrank.serving.state.script_pipe import ScriptPipe, pack

ECHO = "return {ARGV[1], ARGV[2]}"
TIMEOUT_SECONDS = 2.0


def run_with(url: str, script: str, body: Callable[[ScriptPipe], Awaitable[None]]) -> None:
    """Run `body` with a pipe on a fresh event loop, closing the pipe afterwards."""

    async def main() -> None:
        pipe = ScriptPipe(url, script, TIMEOUT_SECONDS)
        try:
            await body(pipe)
        finally:
            pipe.close()

    asyncio.run(main())


def test_concurrent_calls_each_get_their_own_reply_over_one_connection(redis_url):
    async def body(pipe: ScriptPipe) -> None:
        replies = await asyncio.gather(*(pipe.call([f"call-{n}", n]) for n in range(300)))
        assert replies == [[f"call-{n}".encode(), str(n).encode()] for n in range(300)]
        assert pipe._connection is not None
        first = pipe._connection
        await pipe.call(["again", 1])
        assert pipe._connection is first

    run_with(redis_url, ECHO, body)


def test_an_error_reply_raises_response_error_and_the_connection_stays_usable(redis_url):
    script = "if ARGV[1] == 'fail' then return redis.error_reply('refused') end return 1"

    async def body(pipe: ScriptPipe) -> None:
        failing, working = await asyncio.gather(
            pipe.call(["fail"]), pipe.call(["ok"]), return_exceptions=True
        )
        assert isinstance(failing, redis.ResponseError)
        assert "refused" in str(failing)
        assert working == 1

    run_with(redis_url, script, body)


def test_call_many_answers_each_call_in_its_place_with_errors_in_theirs(private_redis):
    script = "if ARGV[1] == 'fail' then return redis.error_reply('refused') end return ARGV[1]"

    async def body(pipe: ScriptPipe) -> None:
        replies = await pipe.call_many([["a"], ["fail"], ["c"]])
        assert replies[0] == b"a" and replies[2] == b"c"
        assert isinstance(replies[1], redis.ResponseError) and "refused" in str(replies[1])
        private_redis.client().script_flush()
        assert await pipe.call_many([["d"], ["e"]]) == [b"d", b"e"]

    run_with(private_redis.url, script, body)


def test_a_flushed_script_cache_is_reloaded(private_redis):
    async def body(pipe: ScriptPipe) -> None:
        assert await pipe.call(["before", 1]) == [b"before", b"1"]
        private_redis.client().script_flush()
        assert await pipe.call(["after", 2]) == [b"after", b"2"]

    run_with(private_redis.url, ECHO, body)


def test_a_killed_connection_fails_calls_and_the_next_call_reconnects(private_redis):
    async def body(pipe: ScriptPipe) -> None:
        assert await pipe.call(["first", 1]) == [b"first", b"1"]
        private_redis.client().client_kill_filter(_type="normal", skipme=True)
        with pytest.raises(redis.ConnectionError):
            # The first call after the kill may be written before the close is seen.
            for _ in range(2):
                await pipe.call(["lost", 2])
        assert await pipe.call(["back", 3]) == [b"back", b"3"]

    run_with(private_redis.url, ECHO, body)


def test_a_server_that_never_answers_times_out_every_call_in_flight():
    async def main() -> None:
        accepted: list[asyncio.StreamWriter] = []

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.append(writer)

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pipe = ScriptPipe(f"redis://127.0.0.1:{port}/0", ECHO, timeout=0.05)
        results = await asyncio.gather(
            *(pipe.call(["waiting", n]) for n in range(5)), return_exceptions=True
        )
        assert all(isinstance(result, redis.TimeoutError) for result in results), results
        pipe.close()
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()

    asyncio.run(main())


def test_nobody_listening_is_a_connection_error():
    async def main() -> None:
        server = await asyncio.start_server(lambda *_: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        pipe = ScriptPipe(f"redis://127.0.0.1:{port}/0", ECHO, TIMEOUT_SECONDS)
        with pytest.raises(redis.ConnectionError):
            await pipe.call(["nobody", 1])

    asyncio.run(main())


def test_password_database_and_unix_socket_urls(locked_redis):
    script = "redis.call('SET', ARGV[1], ARGV[2]) return 1"
    password = locked_redis.password
    tcp = f"redis://:{password}@127.0.0.1:{locked_redis.port}/3"
    unix = f"unix://:{password}@{locked_redis.unix_socket}?db=4"
    for url, key in ((tcp, "over-tcp"), (unix, "over-unix")):
        run_with(url, script, lambda pipe, key=key: pipe.call([key, "stored"]))
    assert locked_redis.client(db=3).get("over-tcp") == b"stored"
    assert locked_redis.client(db=4).get("over-unix") == b"stored"

    wrong = f"redis://:wrong-password@127.0.0.1:{locked_redis.port}/0"
    with pytest.raises(redis.RedisError, match=r"WRONGPASS|invalid"):
        run_with(wrong, script, lambda pipe: pipe.call(["never", "stored"]))


def test_a_garbled_reply_fails_the_calls_in_flight_as_a_connection_error():
    async def main() -> None:
        async def garbling(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(1)
            writer.write(b"$40\r\n" + b"0" * 40 + b"\r\n")  # SCRIPT LOAD's reply
            await reader.read(1)
            writer.write(b"?not redis\r\n")
            await writer.drain()

        server = await asyncio.start_server(garbling, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pipe = ScriptPipe(f"redis://127.0.0.1:{port}/0", ECHO, TIMEOUT_SECONDS)
        with pytest.raises(redis.ConnectionError, match="unreadable reply"):
            await pipe.call(["garbled", 1])
        pipe.close()
        server.close()
        await server.wait_closed()

    asyncio.run(main())


def test_calls_made_while_connecting_share_one_attempt():
    async def main() -> None:
        accepted: list[asyncio.StreamWriter] = []

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.append(writer)

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pipe = ScriptPipe(f"redis://127.0.0.1:{port}/0", ECHO, timeout=0.05)
        results = await asyncio.gather(
            *(pipe.call(["waiting", n]) for n in range(20)), return_exceptions=True
        )
        assert all(isinstance(result, redis.TimeoutError) for result in results), results
        assert pipe.connection_attempts == 1
        assert len(accepted) == 1
        with pytest.raises(redis.TimeoutError):
            await pipe.call(["later", 1])  # a failed attempt is not reused: the next one tries
        assert pipe.connection_attempts == 2
        pipe.close()
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()

    asyncio.run(main())


def test_a_cancelled_caller_leaves_the_shared_attempt_to_the_others(redis_url):
    async def body(pipe: ScriptPipe) -> None:
        leaving = asyncio.ensure_future(pipe.call(["leaving", 1]))

        async def stay() -> object:
            # Tasks run in the order they were made: `leaving` already started the attempt.
            leaving.cancel()
            return await pipe.call(["staying", 2])

        assert await asyncio.ensure_future(stay()) == [b"staying", b"2"]
        assert leaving.cancelled()
        assert pipe.connection_attempts == 1

    run_with(redis_url, ECHO, body)


BUSY = """
local start = redis.call('TIME')
local began = start[1] * 1000000 + start[2]
repeat
  local now = redis.call('TIME')
until now[1] * 1000000 + now[2] - began >= tonumber(ARGV[1])
return ARGV[2]
"""
"""Keeps Redis busy for ARGV[1] microseconds, then answers ARGV[2]."""


def test_a_batch_longer_than_the_timeout_succeeds_while_redis_keeps_answering(redis_url):
    # 30 calls of 40 ms each (2.4 × the timeout in all); each call's padding fills Redis's
    # read buffer, so Redis reads, runs and answers them one after another.
    padding = "x" * 20_000
    calls = [[40_000, n, padding] for n in range(30)]

    async def body(pipe: ScriptPipe) -> None:
        pipe._timeout = 0.5
        assert await pipe.call_many(calls) == [str(n).encode() for n in range(30)]


def test_a_batch_without_any_reply_for_the_timeout_fails(redis_url):
    async def body(pipe: ScriptPipe) -> None:
        await pipe.call_many([[0, "warm", ""]])  # connected, the script loaded
        pipe._connection._timeout = 0.2
        with pytest.raises(redis.TimeoutError):
            await pipe.call_many([[400_000, "slow", ""], [0, "after", ""]])

    run_with(redis_url, BUSY, body)

    run_with(redis_url, BUSY, body)


@pytest.mark.parametrize(
    ("argument", "written"),
    [
        ("é", "é".encode()),
        (b"\x00b", b"\x00b"),
        (-12, b"-12"),
        (2.5, b"2.5"),
        (np.float64(2.5), b"2.5"),
        (np.int64(7), b"7"),
        (np.int32(-3), b"-3"),
        (True, b"True"),
    ],
)
def test_pack_writes_each_argument_as_its_str(argument, written):
    """Plain types go through hiredis, numpy scalars and bools through Python: same bytes."""
    assert pack(b"SET", argument) == b"*2\r\n$3\r\nSET\r\n$%d\r\n%b\r\n" % (
        len(written),
        written,
    )
