"""Fast failure while the store is down: one call at a time tries it, the others fail at once.

redis-py's blocking client gives every thread its own connection, so while Redis is frozen
each waiting call would spend a full timeout on a connection of its own (and the threads
running them would queue behind one another). `Breaker` lets one call at a time go to a
store that just failed; calls made meanwhile raise ConnectionError at once. The first call
that gets an answer closes it again, so recovery needs no timer and no restart.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import redis

T = TypeVar("T")
UNREACHABLE = (redis.ConnectionError, redis.TimeoutError)
"""Errors that mean the store did not answer (an error reply is an answer)."""


class Breaker:
    """Guards calls to one store from any number of threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failed = False
        self._probing = False
        self.probes = 0
        """Calls let through to a store that had failed (each one at a time)."""

    def call(self, command: Callable[..., T], *arguments: Any) -> T:
        """`command(*arguments)`, unless the store failed and another call is trying it."""
        with self._lock:
            probe = self._failed
            if probe:
                if self._probing:
                    raise redis.ConnectionError("the store failed; another call is trying it")
                self._probing = True
                self.probes += 1
        failed: bool | None = None
        try:
            result = command(*arguments)
            failed = False
        except UNREACHABLE:
            failed = True
            raise
        finally:
            with self._lock:
                if failed is not None:
                    self._failed = failed
                if probe:
                    self._probing = False
        return result
