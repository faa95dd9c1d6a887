"""Admission: at most `max_in_flight` requests in progress per process, a short queue after.

A burst above the limit waits in a FIFO queue of `max_queued` requests, each for at most
`queue_timeout_ms`, and runs as soon as a request in progress ends. Only a full queue or a
passed deadline is refused: 503 with `Retry-After` and `{"detail": …}`, the shape of the
store's 503s. The health endpoints skip the queue, so probes answer under overload. Plain ASGI
on the process's one event loop: no locks, a few microseconds per request.
"""

from __future__ import annotations

import asyncio
from collections import deque

import orjson
from prometheus_client import Counter, Gauge
from starlette.types import ASGIApp, Receive, Scope, Send

RETRY_AFTER_SECONDS = 1
UNQUEUED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
"""Never queued nor refused: probes and scrapes must answer while the process is busy."""
BUSY_BODY = orjson.dumps({"detail": "server busy; retry shortly"})
REFUSED = Counter(
    "perkrank_requests_refused",
    "Requests refused with 503 before they ran, by reason: queue_full, queue_timeout.",
    ("reason",),
)
QUEUED = Gauge(
    "perkrank_requests_queued",
    "Requests waiting for a slot to run now.",
    multiprocess_mode="livesum",
)


class AdmissionMiddleware:
    """Runs at most `limit` requests at once; queues `queued` more for `timeout_ms` each."""

    def __init__(self, app: ASGIApp, limit: int, queued: int, timeout_ms: int) -> None:
        self.app = app
        self._free = limit
        self._max_queued = queued
        self._timeout = timeout_ms / 1000
        self._queue: deque[asyncio.Future[bool]] = deque()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNQUEUED_PATHS:
            await self.app(scope, receive, send)
            return
        if self._free > 0 and not self._queue:
            self._free -= 1
        elif len(self._queue) >= self._max_queued:
            await _refuse(send, "queue_full")
            return
        elif not await self._wait():
            await _refuse(send, "queue_timeout")
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self._release()

    async def _wait(self) -> bool:
        """Whether a slot was handed to this request before its deadline."""
        loop = asyncio.get_running_loop()
        turn: asyncio.Future[bool] = loop.create_future()
        self._queue.append(turn)
        QUEUED.set(len(self._queue))
        deadline = loop.call_later(self._timeout, self._expire, turn)
        try:
            return await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled() and turn.result():
                self._release()  # handed a slot just as this request was cancelled
            elif turn in self._queue:
                self._queue.remove(turn)
                QUEUED.set(len(self._queue))
            raise
        finally:
            deadline.cancel()

    def _expire(self, turn: asyncio.Future[bool]) -> None:
        if not turn.done():
            self._queue.remove(turn)
            QUEUED.set(len(self._queue))
            turn.set_result(False)

    def _release(self) -> None:
        """Hand the ended request's slot to the longest waiting request, else free it."""
        while self._queue:
            turn = self._queue.popleft()
            QUEUED.set(len(self._queue))
            if not turn.done():
                turn.set_result(True)
                return
        self._free += 1


async def _refuse(send: Send, reason: str) -> None:
    """A 503 in the store's JSON shape, before the request ran."""
    REFUSED.labels(reason).inc()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(BUSY_BODY)).encode()),
        (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": BUSY_BODY})
