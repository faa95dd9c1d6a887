"""Write each offers decision to the store's decision log without making requests wait for it.

Requests hand their `Decision` to `DecisionRecorder.record` (a deque append); a daemon thread
writes what queued up to `StateStore.record_decisions` every `FLUSH_SECONDS`, in batches of at
most `BATCH`, one store round trip each, and once more at shutdown. `flush` writes the queue
now (the admin read of the log calls it first, so this process's decisions are all there). A
batch the store refuses is logged and dropped: the log is for analysis, and offers must not
wait for it. The queue holds at most `MAX_QUEUED` decisions (the oldest are dropped).
"""

from __future__ import annotations

import logging
import threading
from collections import deque

from perkrank.serving.domain.context import ContextHolder
from perkrank.serving.domain.decisions import Decision
from perkrank.serving.state.ports import StateStoreError

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.1
"""How often queued decisions are written to the store."""
BATCH = 1000
"""Decisions per store round trip."""
MAX_QUEUED = 100_000
"""Decisions waiting for the store at most; beyond it the oldest are dropped."""


class DecisionRecorder:
    """Queues one process's decisions and writes them to its store: `start`, then `stop`."""

    def __init__(self, holder: ContextHolder, max_queued: int = MAX_QUEUED) -> None:
        self._holder = holder
        self._queue: deque[Decision] = deque(maxlen=max_queued)
        self._flushing = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def record(self, decision: Decision) -> None:
        """Queue `decision` for the decision log (safe from any thread)."""
        self._queue.append(decision)

    def flush(self) -> int:
        """Write every queued decision to the store now; how many were written."""
        written = 0
        with self._flushing:
            while self._queue:
                batch = [self._queue.popleft() for _ in range(min(BATCH, len(self._queue)))]
                try:
                    self._holder.current.store.record_decisions(batch)
                except StateStoreError as error:
                    log.warning("%d decisions not logged: %s", len(batch), error)
                    continue
                written += len(batch)
        return written

    def start(self) -> None:
        """Write queued decisions every `FLUSH_SECONDS` from a daemon thread."""
        self._thread = threading.Thread(target=self._follow, name="perkrank-decisions", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread after a last flush."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.flush()

    def _follow(self) -> None:
        while not self._stopping.wait(FLUSH_SECONDS):
            self.flush()
