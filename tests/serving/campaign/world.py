"""A campaign's world: a synthetic bundle of `MEMBERS` known members (and a few unknown ones),
`OFFERS` offers over 2026-06-15, a repeat term, and the store's counters read back."""

from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import redis
import scipy.sparse as sp
from redis.cluster import RedisCluster

from benchmarks.capacity_inputs import (
    TODAY,
    catalog_offers,
    member_profiles,
    synthetic_bundle,
)
from perkrank.config import CapRule, CapsConfig, ServeConfig
from perkrank.models.bundle import Bundle
from perkrank.serving.bootstrap import build_context
from perkrank.serving.domain.catalog import build_catalog
from perkrank.serving.domain.context import ServingContext
from perkrank.serving.state.memory import MemoryStateStore
from perkrank.serving.state.ports import StateStore
from perkrank.serving.state.redis_cluster import RedisClusterStateStore, cluster_nodes
from perkrank.serving.state.redis_store import RedisStateStore

MEMBERS, OFFERS = 120, 30
NOW = datetime(2026, 6, 15, 12, tzinfo=UTC).timestamp()
ADMIN_KEY = "admin-key-for-tests-0001"
RULES = [
    CapRule(name="offer_day", scope="member_offer", limit=1, window="day"),
    CapRule(name="email_day", scope="member_channel", limit=8, window="day"),
    CapRule(name="offer_total", scope="offer_total", limit=25, window="total"),
]
"""Member caps, and an offer_total cap that the campaign's members exhaust on popular offers."""


def world_bundle() -> Bundle:
    """`synthetic_bundle` with a repeat term: member n bought item n % OFFERS (n + 1) times."""
    bundle = synthetic_bundle(MEMBERS, OFFERS, np.random.default_rng(7))
    counts = sp.csr_matrix(
        (
            np.arange(1, MEMBERS + 1, dtype=np.float32),
            (np.arange(MEMBERS), np.arange(MEMBERS) % OFFERS),
        ),
        shape=(MEMBERS, OFFERS),
    )
    return replace(bundle, ranker=replace(bundle.ranker, repeat=counts, repeat_weight=0.5))


def member_ids() -> list[str]:
    """Every known member and three the model and the files do not know."""
    return [*member_profiles(MEMBERS), "new-1", "new-2", "new-3"]


def campaign_context(
    store: StateStore, rules=RULES, caps: CapsConfig | None = None, **settings
) -> ServingContext:
    """The world served from `store` under `rules` (or the whole caps document `caps`, whose
    floor then finds every third offer's partner local)."""
    values = {"catalog_date": TODAY, "admin_api_keys": f"ops:{ADMIN_KEY}", "default_limit": 5}
    bundle = world_bundle()
    offers = catalog_offers(bundle)
    if caps is not None:
        offers = [
            replace(offer, scope="local") if number % 3 == 0 else offer
            for number, offer in enumerate(offers)
        ]
    return build_context(
        bundle=bundle,
        model_version="campaign-1",
        catalog=build_catalog(offers, member_profiles(MEMBERS), bundle),
        store=store,
        caps=caps or CapsConfig(rules=list(rules)),
        settings=ServeConfig(**values | settings),
    )


def counters(store: StateStore) -> dict[str, object]:
    """Every cap counter the store holds, by key without the store's prefix (re-show keys
    and streams left out)."""
    if isinstance(store, MemoryStateStore):
        return {
            f"{key.partition(':')[2]}/{field}": count
            for (key, field), (count, _) in store._counters.items()
            if ":cap:" in key
        }
    assert isinstance(store, RedisStateStore)  # read by a client of its own: it may be closed
    if isinstance(store, RedisClusterStateStore):
        client = RedisCluster(startup_nodes=cluster_nodes(store._url)[0], decode_responses=True)
    else:
        client = redis.Redis.from_url(store._url, decode_responses=True)
    found: dict[str, object] = {}
    for key in client.scan_iter(match=f"{store._prefix}:*:cap:*", count=1000):
        name = key.partition(":")[2]
        if client.type(key) == "hash":
            found |= {f"{name}/{field}": int(v) for field, v in client.hgetall(key).items()}
        else:
            found[f"{name}/None"] = int(client.get(key))
    client.close()
    return found


def reopened(store: StateStore) -> StateStore:
    """The store again (`run_campaign` closes the store it ran on)."""
    if isinstance(store, RedisStateStore):
        return type(store)(store._url, store._prefix, 5000)
    return store
