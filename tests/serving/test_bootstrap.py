"""The one composition root: `bootstrap` loads bundle, catalog, caps and store, and the demo's
offers come through it too."""

import asyncio
import json
from datetime import date

from perkrank.config import ServeConfig
from perkrank.demo import print_offers
from perkrank.serving.bootstrap import bootstrap
from perkrank.serving.state.memory import MemoryStateStore
from perkrank.serving.state.redis_store import RedisStateStore

TODAY = date(2026, 6, 15)


def settings_for(files, **overrides) -> ServeConfig:
    values = {
        "model_uri": str(files["bundle"]),
        "caps_path": files["caps"],
        "catalog_date": TODAY,
        "app_api_keys": "tests:app-key-for-tests-0001",
    }
    return ServeConfig(**values | overrides)


def test_bootstrap_loads_bundle_catalog_caps_and_the_in_process_store(small_service_files):
    files = small_service_files
    files["caps"].write_text(
        "rules:\n  - {name: member_offer_day, scope: member_offer, limit: 1, window: day}\n"
    )

    runtime = bootstrap(settings_for(files), files["data"])

    context = runtime.context
    assert context.model_version == "local:bundle"
    assert [offer.offer_id for offer in context.ranker.catalog.offers] == [
        "glow-beauty",
        "fresh-grocery",
        "glow-vip",
    ]
    assert context.ranker.catalog.member("alice") is not None
    assert [rule.name for rule in context.rules()] == ["member_offer_day"]
    assert (context.caps_version, context.catalog_version) == (0, 0)
    assert isinstance(context.store, MemoryStateStore)
    assert sorted(runtime.partners["partner_id"]) == ["P1", "P2"]


def test_bootstrap_opens_redis_when_a_url_is_configured(
    small_service_files, redis_url, redis_key_prefix
):
    settings = settings_for(small_service_files, redis_url=redis_url, key_prefix=redis_key_prefix)

    store = bootstrap(settings, small_service_files["data"]).context.store

    assert isinstance(store, RedisStateStore)
    store.ping()
    asyncio.run(store.close())


def test_demo_prints_offers_from_the_bootstrapped_context(small_service_files, capsys):
    data = small_service_files["data"]
    with (data / "members.csv").open("a", encoding="utf-8") as members:
        members.write("bob,north,base,,2024-01-01\n")

    print_offers(settings_for(small_service_files), data)

    printed = capsys.readouterr().out
    blocks = [json.loads(block) for block in printed.replace("}\n{", "}\n\x00{").split("\x00")]
    assert [block["member_id"] for block in blocks] == ["alice", "bob", "NEW-MEMBER-1"]
    assert {block["model_version"] for block in blocks} == {"local:bundle"}
    assert blocks[0]["offers"][0]["offer_id"] == "glow-beauty"
