"""Serving's layers import in one direction: domain and state know no HTTP, and domain no state
adapter. (No training library or pandas anywhere in serving: tests/test_architecture.py.)"""

import json
import subprocess
import sys

DOMAIN_MODULES = (
    "perkrank.serving.domain.attribution",
    "perkrank.serving.domain.cap_preview",
    "perkrank.serving.domain.catalog",
    "perkrank.serving.domain.catalog_diff",
    "perkrank.serving.domain.catalog_file",
    "perkrank.serving.domain.context",
    "perkrank.serving.domain.decisions",
    "perkrank.serving.domain.events",
    "perkrank.serving.domain.experiments",
    "perkrank.serving.domain.explain",
    "perkrank.serving.domain.offer_checks",
    "perkrank.serving.domain.ranking",
    "perkrank.serving.domain.reasons",
    "perkrank.serving.domain.rules",
    "perkrank.serving.domain.selection",
    "perkrank.serving.domain.windows",
)
STATE_AND_LIVE_MODULES = (
    "perkrank.serving.state.ports",
    "perkrank.serving.state.memory",
    "perkrank.serving.state.redis_store",
    "perkrank.serving.bootstrap",
    "perkrank.serving.live",
    "perkrank.serving.recorder",
    "perkrank.serving.explaining",
    "perkrank.serving.caps_preview",
)


def imported_after(modules: tuple[str, ...], watched: tuple[str, ...]) -> list[str]:
    """Which of `watched` a fresh interpreter has imported after importing `modules`."""
    program = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(json.dumps(sorted(m for m in {watched!r} if m in sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)


def test_domain_imports_neither_http_nor_state_adapters():
    watched = (
        "fastapi",
        "starlette",
        "redis",
        "perkrank.serving.api",
        "perkrank.serving.state.memory",
        "perkrank.serving.state.redis_store",
        "perkrank.serving.state.ports",
    )
    assert imported_after(DOMAIN_MODULES, watched) == []


def test_state_bootstrap_and_live_import_no_http():
    assert (
        imported_after(STATE_AND_LIVE_MODULES, ("fastapi", "starlette", "perkrank.serving.api"))
        == []
    )
