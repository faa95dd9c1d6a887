"""The decision recorder: requests queue decisions, flushes write them to the store in order,
a store failure drops the batch it hit (logged) and never reaches requests."""

import logging

from perkrank.serving.domain.context import ContextHolder
from perkrank.serving.domain.decisions import Decision
from perkrank.serving.recorder import BATCH, DecisionRecorder
from perkrank.serving.state.memory import MemoryStateStore
from perkrank.serving.state.ports import StateStoreError


def decision(n: int) -> Decision:
    return Decision(f"d-{n}", "alice", "app", float(n), "v1", None, None, "personalized", True, ())


class Context:
    """What the recorder reads of a serving context: its store."""

    def __init__(self, store) -> None:
        self.store = store


class FailingOnce(MemoryStateStore):
    def __init__(self) -> None:
        super().__init__()
        self.failures = 1

    def record_decisions(self, decisions):
        if self.failures:
            self.failures -= 1
            raise StateStoreError("Redis at nowhere failed while recording decisions")
        super().record_decisions(decisions)


def test_queued_decisions_reach_the_store_in_order_in_batches():
    store = MemoryStateStore()
    recorder = DecisionRecorder(ContextHolder(Context(store)))
    decisions = [decision(n) for n in range(BATCH + 5)]
    for item in decisions:
        recorder.record(item)

    assert store.read_decisions("0-0", 10) == []
    assert recorder.flush() == BATCH + 5
    assert [kept.decision for kept in store.read_decisions("0-0", 2 * BATCH)] == decisions
    assert recorder.flush() == 0


def test_a_refused_batch_is_logged_and_dropped_and_the_next_one_is_written(caplog):
    store = FailingOnce()
    recorder = DecisionRecorder(ContextHolder(Context(store)))
    recorder.record(decision(1))

    with caplog.at_level(logging.WARNING, "perkrank.serving.recorder"):
        assert recorder.flush() == 0
    recorder.record(decision(2))
    assert recorder.flush() == 1

    assert "1 decisions not logged" in caplog.text
    assert [kept.decision for kept in store.read_decisions("0-0", 10)] == [decision(2)]


def test_stop_writes_what_is_queued_and_the_queue_is_bounded():
    store = MemoryStateStore()
    recorder = DecisionRecorder(ContextHolder(Context(store)), max_queued=3)
    recorder.start()
    recorder.stop()
    for n in range(5):
        recorder.record(decision(n))

    recorder.stop()

    assert [kept.decision for kept in store.read_decisions("0-0", 10)] == [
        decision(n) for n in (2, 3, 4)
    ]
