"""The serving process imports no training library and no pandas on the request path."""

import json
import subprocess
import sys

REQUEST_PATH_MODULES = (
    "perkrank.serving.app",
    "perkrank.serving.server",
    "perkrank.serving.ranking",
    "perkrank.serving.catalog",
    "perkrank.serving.memory_store",
    "perkrank.serving.redis_store",
)
HEAVY_MODULES = ("mlflow", "pandas", "implicit", "lightfm")


def test_serving_modules_import_no_training_libraries_and_no_pandas():
    program = (
        "import importlib, json, sys\n"
        f"for name in {REQUEST_PATH_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(json.dumps(sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules)))\n"
    )

    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )

    assert json.loads(result.stdout) == []
