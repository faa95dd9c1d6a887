"""Schemathesis fuzzes every operation of the app's OpenAPI schema in process (memory and
Redis store; app key and admin key): no answer is a 5xx, and every answer is documented (status
code, content type, headers, body schema)."""

import asyncio
import gzip
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.python.asgi import ASGIClient

from perkrank.config import ServeConfig
from perkrank.features.loader import load_dataset
from perkrank.serving.api.app import create_app
from perkrank.serving.state.memory import MemoryStateStore
from perkrank.serving.state.redis_store import RedisStateStore

KEYS = {"app": "app-key-for-tests-0001", "admin": "admin-key-for-tests-0001"}
"""small_app's keys."""
MAX_EXAMPLES = 25
"""Random cases per operation, store and key, besides the schema's examples and the coverage
phase's boundary cases; `deterministic`: the same cases every run."""
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    # "negative_data_rejection" stays off: it counts as failures what the API rightly does
    # (ignores unknown query parameters, refuses random Parquet bytes and unknown offer ids
    # with 4xx). Wrong JSON types in bodies are refused: test_limits.py checks that.
)
CONFIG = {
    "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True},
    "phases": {"stateful": {"enabled": False}},
    "checks": {"enabled": False} | {check: {"enabled": True} for check in CHECKS},
}
SETTINGS = ServeConfig(app_api_keys=f"tests:{KEYS['app']}", admin_api_keys=f"ops:{KEYS['admin']}")
SPEC = create_app(SETTINGS, data_dir=Path(__file__).parent).openapi()
"""The OpenAPI document of the app `perkrank serve` builds (never started, so nothing is
loaded); `fuzzed_app` checks that small_app serves the very same document."""
schema = schemathesis.openapi.from_dict(SPEC, config=schemathesis.Config.from_dict(CONFIG))
schemathesis.serializer.alias(
    ["application/vnd.apache.parquet", "application/x-parquet"], "application/octet-stream"
)


@schemathesis.serializer("application/gzip")
def gzipped(context: schemathesis.SerializationContext, value: str | bytes) -> bytes:
    """Generated offers-file text, gzipped: the CSV reader behind gzip gets fuzzed too."""
    return gzip.compress(value.encode() if isinstance(value, str) else value)


@pytest.fixture(params=["memory", "redis"])
def fuzzed_app(
    request: pytest.FixtureRequest, make_small_app, small_service_files
) -> Iterator[ASGIClient]:
    """A client of small_app (no lifespan: no live refresher) over each store in turn, with
    the partners of its data files so that uploaded catalogs get parsed."""
    if request.param == "memory":
        store = MemoryStateStore()
    else:
        url, prefix = (request.getfixturevalue(name) for name in ("redis_url", "redis_key_prefix"))
        store = RedisStateStore(url, prefix, 2000)
    partners = load_dataset(small_service_files["data"]).partners
    app = make_small_app(store, partners=partners)
    assert app.openapi() == SPEC
    yield ASGIClient(app)
    asyncio.run(store.close())


@pytest.fixture(params=sorted(KEYS))
def api_key(request: pytest.FixtureRequest) -> str:
    """Each key in turn: the app key gets 403 from admin operations, the admin key gets in."""
    return KEYS[request.param]


@schema.parametrize()
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # one app per operation
def test_every_answer_is_documented_and_none_is_a_server_error(case, fuzzed_app, api_key):
    case.call_and_validate(
        session=fuzzed_app, base_url=fuzzed_app.base_url, headers={"X-API-Key": api_key}
    )
