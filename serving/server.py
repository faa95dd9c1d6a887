"""Run the HTTP API with uvicorn (what `perkrank serve` calls).

Every process (one, or each of `--workers`) builds its app with `create_app(settings,
data_dir=...)`, whose startup runs `perkrank.serving.bootstrap.bootstrap`; with several workers
each one is built by `worker_factory` (the composition root's, which wires the console's model
registry the same way), reading its setup with `worker_setup`.
"""

import json
import os
import tempfile
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from perkrank.config import ConfigError, ServeConfig
from perkrank.serving.api.app import create_app
from perkrank.serving.api.logs import logging_config
from perkrank.serving.api.observability import MULTIPROCESS_VARIABLE
from perkrank.serving.model_registry import ModelRegistry

WORKER_SETUP_VARIABLE = "PERKRANK_SERVE_WORKER_SETUP"
"""How `run` hands settings and data directory to worker processes."""


def run(
    settings: ServeConfig,
    data_dir: Path,
    *,
    workers: int = 1,
    model_registry: ModelRegistry | None = None,
    worker_factory: str = f"{__name__}:worker_app",
) -> None:
    """Serve on `settings.host`:`settings.port` until interrupted (raises ConfigError).

    Logs are JSON lines (perkrank.serving.api.logs); uvicorn's access log is off (request paths
    hold member ids) and perkrank logs its own access lines. Several workers share one fresh
    PROMETHEUS_MULTIPROC_DIR (unless it is set), so /metrics covers all of them. Requests past
    `settings.max_in_flight` queue in the app (`perkrank.serving.api.admission`); past
    `settings.max_connections` open connections, uvicorn answers 503 at once. More than one
    worker needs `redis_url`, since the in-process store would count caps per worker.
    """
    if workers > 1 and settings.redis_url is None:
        raise ConfigError(
            "more than one worker needs redis_url: with the in-process store every worker "
            "would keep its own cap counters and preferences"
        )
    app = create_app(settings, data_dir=data_dir, model_registry=model_registry)
    options = {
        "host": settings.host,
        "port": settings.port,
        "limit_concurrency": settings.max_connections,
        "access_log": False,
        "log_level": "info",
        "log_config": logging_config(),
    }
    if workers == 1:
        uvicorn.run(app, **options)
        return
    setup = {"settings": settings.model_dump(mode="json"), "data_dir": str(data_dir)}
    os.environ[WORKER_SETUP_VARIABLE] = json.dumps(setup)
    with tempfile.TemporaryDirectory(prefix="perkrank-metrics-") as metrics_dir:
        os.environ.setdefault(MULTIPROCESS_VARIABLE, metrics_dir)
        uvicorn.run(worker_factory, factory=True, workers=workers, **options)


def worker_setup() -> tuple[ServeConfig, Path]:
    """The settings and data directory `run` put in the environment for its workers."""
    setup = json.loads(os.environ[WORKER_SETUP_VARIABLE])
    return ServeConfig(**setup["settings"]), Path(setup["data_dir"])


def worker_app() -> FastAPI:
    """The app of one worker process (without a model registry for the console)."""
    settings, data_dir = worker_setup()
    return create_app(settings, data_dir=data_dir)
