"""The serving context holder: one context in force, swapped whole."""

import dataclasses
import threading

import pytest

from perkrank.config import CapRule, CapsConfig
from perkrank.serving.domain.context import ContextHolder, ServingContext
from perkrank.serving.state.memory import MemoryStateStore

DAILY = CapRule(name="daily", scope="member_offer", limit=1, window="day")


def context(**fields) -> ServingContext:
    values = {
        "ranker": None,
        "store": MemoryStateStore(),
        "caps": CapsConfig(rules=(DAILY,)),
        "model_version": "v1",
    }
    return ServingContext(**values | fields)


def test_a_context_is_immutable_and_names_its_rules():
    first = context()

    assert first.rules() == (DAILY,)
    assert (first.caps_version, first.catalog_version) == (0, 0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.model_version = "v2"


def test_swap_puts_the_new_context_in_force_and_returns_the_old_one():
    first, second = context(), context(model_version="v2")
    holder = ContextHolder(first)

    previous = holder.swap(second)

    assert previous is first
    assert holder.current is second


def test_concurrent_swaps_lose_no_context():
    contexts = [context(model_version=f"v{n}") for n in range(200)]
    start = context(model_version="v-start")
    holder = ContextHolder(start)
    replaced: list[ServingContext] = []
    lock = threading.Lock()

    def swap(new: ServingContext) -> None:
        old = holder.swap(new)
        with lock:
            replaced.append(old)

    threads = [threading.Thread(target=swap, args=(new,)) for new in contexts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    held = [*replaced, holder.current]
    assert len(held) == 201
    assert {id(item) for item in held} == {id(item) for item in [start, *contexts]}
