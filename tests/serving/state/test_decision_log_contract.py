"""The decision log port and the experiments live setting in both state stores: decisions kept
in order, whole, page by page and bounded; experiments versioned and audited; events keep the
decision id they name.

Each test runs against MemoryStateStore and RedisStateStore (the `store` fixture) unless it
names the stores it builds.
"""

import asyncio

from perkrank.experiment_config import Experiment, ExperimentArm, ExperimentsConfig
from perkrank.serving.domain.decisions import DecidedOffer, Decision
from perkrank.serving.domain.events import OfferEvent
from perkrank.serving.state.memory import MemoryStateStore
from perkrank.serving.state.redis_store import RedisStateStore

NOW = 1_780_000_000.0
HOLDOUT = ExperimentsConfig(
    experiments=(
        Experiment(
            name="lift",
            arms=(
                ExperimentArm(name="holdout", share=0.05, policy="popular"),
                ExperimentArm(name="personalized", share=0.95),
            ),
        ),
    )
)
EVEN = ExperimentsConfig(
    experiments=(
        Experiment(
            name="lift",
            salt="lift-v2",
            unit="region",
            arms=(
                ExperimentArm(name="holdout", share=0.5, policy="none"),
                ExperimentArm(name="personalized", share=0.5),
            ),
        ),
    )
)


def decision(n: int, offers: int = 2) -> Decision:
    shown = tuple(
        DecidedOffer(f"offer-{n}-{rank}", rank, 1.25 - rank / 3, 1.0)
        for rank in range(1, offers + 1)
    )
    return Decision(
        decision_id=f"d-{n}",
        member_id=f"member-{n}",
        channel="app",
        ts=NOW + n + 0.125,
        model_version="perkrank-offers/7",
        experiment="lift" if n % 2 else None,
        arm="holdout" if n % 2 else None,
        policy="popular" if n % 2 else "personalized",
        personalized=not n % 2,
        offers=shown,
    )


def test_decisions_come_back_whole_in_order_page_by_page(store):
    decisions = [decision(n, offers=n % 3) for n in range(5)]
    store.record_decisions(decisions[:3])
    store.record_decisions(decisions[3:])

    first = store.read_decisions("0-0", 2)
    second = store.read_decisions(first[-1].stream_id, 2)
    third = store.read_decisions(second[-1].stream_id, 2)

    assert [kept.decision for kept in first + second + third] == decisions
    assert len(third) == 1
    assert store.read_decisions(third[-1].stream_id, 2) == []
    assert store.read_decisions(f"{2**64 - 1}-{2**64 - 1}", 10) == []


def test_a_fresh_store_holds_no_decisions_and_an_empty_batch_adds_none(store):
    store.record_decisions([])

    assert store.read_decisions("0-0", 10) == []


def test_the_oldest_decisions_are_dropped_beyond_decisions_kept(redis_url, redis_key_prefix):
    stores = [
        MemoryStateStore(decisions_kept=10),
        RedisStateStore(redis_url, redis_key_prefix, 2000, decisions_kept=10),
    ]
    decisions = [decision(n) for n in range(300)]
    for state_store in stores:
        for start in range(0, 300, 100):
            state_store.record_decisions(decisions[start : start + 100])

    memory, redis_store = (state_store.read_decisions("0-0", 1000) for state_store in stores)
    assert [kept.decision for kept in memory] == decisions[-10:]
    # Redis trims whole stream nodes (MAXLEN ~): at least 10 stay, the oldest go.
    assert 10 <= len(redis_store) < 300
    assert [kept.decision for kept in redis_store] == decisions[-len(redis_store) :]
    asyncio.run(stores[1].close())


def test_events_keep_the_decision_id_they_name(store):
    named = OfferEvent("click", "member-1", "offer-a", "P1", "food", "app", NOW, "e-1", "d-1")
    unnamed = OfferEvent("click", "member-1", "offer-a", "P1", "food", "app", NOW, "e-2")
    store.record_events([named, unnamed], (), NOW)

    kept = [stored.event for stored in store.read_events("0-0", 10)]

    assert kept == [named, unnamed]
    assert [event.decision_id for event in kept] == ["d-1", None]


def test_no_experiments_are_stored_at_first(store):
    assert store.get_experiments() is None
    assert store.experiments_history(10) == []
    assert store.live_versions().experiments == 0


def test_experiments_are_versioned_and_audited_old_to_new(store):
    first = store.put_experiments(HOLDOUT, "ops", NOW)
    second = store.put_experiments(EVEN, "analyst", NOW + 5)
    ended = store.put_experiments(ExperimentsConfig(), "ops", NOW + 9)

    assert (first.version, first.experiments, first.actor, first.at) == (1, HOLDOUT, "ops", NOW)
    assert (second.version, second.experiments) == (2, EVEN)
    assert store.get_experiments() == ended
    assert ended.experiments == ExperimentsConfig()
    assert store.live_versions().experiments == 3
    assert store.live_versions().caps == 0  # other settings keep their own versions
    history = store.experiments_history(10)
    assert [(change.version, change.actor) for change in history] == [
        (3, "ops"),
        (2, "analyst"),
        (1, "ops"),
    ]
    assert history[2].old is None
    assert history[1].old == HOLDOUT.model_dump(mode="json")
    assert history[1].new == EVEN.model_dump(mode="json")
    assert history[0].new == {"experiments": []}
    assert [change.version for change in store.experiments_history(1)] == [3]
