"""A non-editable install runs the whole path from another directory: the configs it needs are
package data, not files of the source tree.

The wheel is built from a copy of the project's files and installed with `pip --target` into a
private directory that comes first on PYTHONPATH; the test's working directory holds no source.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

PROJECT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "perkrank", "configs", "features", "models")
SOURCES += ("training", "serving")
APP_KEY = "packaging-app-key-0001"
LISTENING_LINE = "Uvicorn running on"
"""What uvicorn logs once it listens (after the app's startup)."""


def run(command: list[str], cwd: Path, environment: dict[str, str]) -> str:
    """Run a command, failing the test with its output when it fails."""
    result = subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The `perkrank` command of a wheel installed into a private directory, and its env."""
    root = tmp_path_factory.mktemp("packaging")
    source = root / "source"
    for name in SOURCES:
        path = PROJECT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            source.mkdir(exist_ok=True)
            shutil.copy2(path, source / name)
    wheels, site = root / "wheels", root / "site"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    environment = {  # nothing of other tests' settings (mlflow exports its tracking URI)
        key: value
        for key, value in os.environ.items()
        if key != "PYTHONPATH" and not key.startswith(("PERKRANK_", "MLFLOW_"))
    }
    run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), "."], source,
        environment)
    (wheel,) = wheels.glob("perkrank-*.whl")
    run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], root, environment)
    shutil.rmtree(source)  # nothing of the source tree is left to lean on
    environment |= {"PYTHONPATH": str(site), "PERKRANK_APP_API_KEYS": f"tests:{APP_KEY}"}
    return site, environment


def test_installed_package_loads_its_default_configs_from_package_data(installed, tmp_path):
    site, environment = installed
    program = "import perkrank.config as c; print(c.__file__); print(c.CONFIG_DIR)"

    module_file, config_dir = run([sys.executable, "-c", program], tmp_path, environment).split()

    assert Path(module_file).is_relative_to(site)
    assert Path(config_dir).is_relative_to(site)
    assert {"train.yaml", "serve.yaml", "caps.yaml"} <= {p.name for p in Path(config_dir).iterdir()}


def test_installed_package_generates_trains_promotes_and_serves_from_another_directory(
    installed, tmp_path
):
    site, environment = installed
    perkrank = [str(site / "bin" / "perkrank")]
    environment = environment | {"PERKRANK_CATALOG_DATE": "2025-06-15"}

    run([*perkrank, "generate", "--out", "data", "--members", "800", "--months", "6"],
        tmp_path, environment)
    trained = run([*perkrank, "train", "--data", "data"], tmp_path, environment)
    promoted = run([*perkrank, "promote"], tmp_path, environment)
    with serving(perkrank, tmp_path, environment) as url:
        response = httpx.get(
            f"{url}/v1/members/M000001/offers",
            params={"channel": "app", "limit": 3},
            headers={"X-API-Key": APP_KEY},
        )

    assert "registered version 1 (alias challenger)" in trained
    assert "no champion yet" in promoted
    assert response.status_code == 200, response.text
    assert response.json()["model_version"] == "perkrank-offers/1"
    assert len(response.json()["offers"]) == 3


@contextmanager
def serving(perkrank: list[str], cwd: Path, environment: dict[str, str]) -> Iterator[str]:
    """`perkrank serve --data data` (the champion of ./var/mlflow) on a free port of
    127.0.0.1; yields its URL once it listens, stops it afterwards."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [*perkrank, "serve", "--data", "data", "--port", str(port)]
    process = subprocess.Popen(
        command, cwd=cwd, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True,
    )
    log = []
    try:
        for line in process.stderr:  # ends when the process does
            log.append(line)
            if LISTENING_LINE in line:
                break
        assert process.poll() is None, "".join(log)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
