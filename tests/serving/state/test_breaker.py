"""Breaker: after the store failed to answer, one call at a time tries it and the others fail
at once; the first answer closes it. Threads are held by events, never by timing."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from perkrank.serving.state.breaker import Breaker


def failing(error: redis.RedisError):
    def command():
        raise error

    return command


def test_calls_pass_while_the_store_answers_and_error_replies_do_not_open_it():
    breaker = Breaker()
    assert breaker.call(lambda value: value + 1, 1) == 2
    with pytest.raises(redis.ResponseError):
        breaker.call(failing(redis.ResponseError("WRONGTYPE")))
    assert breaker.call(lambda: "still open") == "still open"
    assert breaker.probes == 0


@pytest.mark.parametrize("error", [redis.ConnectionError("refused"), redis.TimeoutError("late")])
def test_after_a_failure_one_probe_at_a_time_and_the_rest_fail_at_once(error):
    breaker = Breaker()
    with pytest.raises(type(error)):
        breaker.call(failing(error))

    probing, release = threading.Event(), threading.Event()

    def slow_probe() -> str:
        probing.set()
        assert release.wait(30)
        return "answered"

    with ThreadPoolExecutor(1) as pool:
        probe = pool.submit(breaker.call, slow_probe)
        assert probing.wait(30)
        for _ in range(5):
            with pytest.raises(redis.ConnectionError, match="another call is trying it"):
                breaker.call(lambda: "never run")
        release.set()
        assert probe.result() == "answered"
    assert breaker.probes == 1
    assert breaker.call(lambda: "closed again") == "closed again"
    assert breaker.probes == 1


def test_a_failed_probe_keeps_it_failed_and_the_next_call_probes_again():
    breaker = Breaker()
    for _ in range(3):
        with pytest.raises(redis.TimeoutError):
            breaker.call(failing(redis.TimeoutError("frozen")))
    assert breaker.probes == 2
    assert breaker.call(lambda: "back") == "back"
