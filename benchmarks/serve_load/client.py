"""A minimal asyncio HTTP/1.1 client for the load generators: a bounded pool of keep-alive
connections, one request at a time on each, GET only, responses framed by Content-Length.

It records, for measured requests, the latency from each request's scheduled send time (not
from when a connection became free) and errors by kind.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque

Request = tuple[float, bool]
"""A request that is out: its scheduled time (time.perf_counter) and whether it is measured."""


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection carrying one request at a time."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.request: Request | None = None
        """Scheduled time and whether it is measured, while a request is out."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, path: str, scheduled: float, measured: bool) -> None:
        self.request = (scheduled, measured)
        self.transport.write(self.client.request_bytes(path))  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        header_end = self.buffer.find(b"\r\n\r\n")
        if header_end < 0:
            return
        head = bytes(self.buffer[:header_end]).lower()
        length_at = head.find(b"\r\ncontent-length:")
        if length_at < 0:
            self.fail("response without content-length")
            return
        line_end = head.find(b"\r\n", length_at + 2)
        length = int(head[length_at + 17 : line_end if line_end >= 0 else None])
        if len(self.buffer) < header_end + 4 + length:
            return
        del self.buffer[: header_end + 4 + length]
        request, self.request = self.request, None
        keep_alive = b"\r\nconnection: close" not in head
        self.client.finished(self, request, int(head[9:12]), keep_alive)  # type: ignore[arg-type]

    def fail(self, kind: str) -> None:
        request, self.request = self.request, None
        self.client.failed(self, request, kind)
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, error: Exception | None) -> None:
        if self.request is not None:
            self.fail("connection lost")
        self.client.closed(self)


class Client:
    """A bounded pool of connections; requests wait in a queue for a free one."""

    def __init__(self, host: str, port: int, connections: int, api_key: str) -> None:
        self.host, self.port, self.size = host, port, connections
        self.headers = f" HTTP/1.1\r\nHost: {host}:{port}\r\nX-API-Key: {api_key}\r\n\r\n"
        self.idle: list[Connection] = []
        self.open_count = 0
        self.waiting: deque[tuple[str, float, bool]] = deque()
        self.in_flight = 0
        self.latencies: list[float] = []
        self.scheduled: list[float] = []
        """The scheduled send time (time.perf_counter) of each of `latencies`."""
        self.errors: Counter[str] = Counter()
        self.responses = 0
        """HTTP responses received, warm-up included (what the server's CPU is divided by)."""
        self.all_answered = asyncio.Event()
        """Set when nothing is in flight any more, once `schedule_done` is true."""
        self.schedule_done = False

    def request_bytes(self, path: str) -> bytes:
        return f"GET {path}{self.headers}".encode()

    async def open(self) -> None:
        """Open connections until the pool is full."""
        loop = asyncio.get_running_loop()
        while self.open_count < self.size:
            self.open_count += 1
            try:
                _, connection = await loop.create_connection(
                    lambda: Connection(self), self.host, self.port
                )
            except OSError:
                self.open_count -= 1
                raise
            self.release(connection)

    def send(self, path: str, scheduled: float, measured: bool) -> None:
        self.in_flight += 1
        if self.idle:
            self.idle.pop().send(path, scheduled, measured)
        else:
            self.waiting.append((path, scheduled, measured))

    def release(self, connection: Connection) -> None:
        if self.waiting:
            connection.send(*self.waiting.popleft())
        else:
            self.idle.append(connection)

    def finished(
        self, connection: Connection, request: Request, status: int, keep_alive: bool
    ) -> None:
        self.answered()
        self.responses += 1
        scheduled, measured = request
        if measured:
            if status == 200:
                self.latencies.append(time.perf_counter() - scheduled)
                self.scheduled.append(scheduled)
            else:
                self.errors[f"HTTP {status}"] += 1
        if keep_alive:
            self.release(connection)
        else:
            connection.transport.close()  # type: ignore[union-attr]

    def failed(self, connection: Connection, request: Request | None, kind: str) -> None:
        if request is None:
            return
        self.answered()
        if request[1]:
            self.errors[kind] += 1

    def answered(self) -> None:
        self.in_flight -= 1
        if self.schedule_done and self.in_flight == 0:
            self.all_answered.set()

    def closed(self, connection: Connection) -> None:
        if connection in self.idle:
            self.idle.remove(connection)
        self.open_count -= 1
        asyncio.get_running_loop().create_task(self.reopen())

    async def reopen(self) -> None:
        try:
            await self.open()
        except OSError:
            self.errors["cannot connect"] += 1
