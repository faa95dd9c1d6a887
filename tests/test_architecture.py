"""The package's shape: no import cycles between perkrank modules, and serving free of training.

The import graph is read from the source (`ast`): an edge A → B when module A imports module B
(or a name from B) when A is imported, that is outside functions and `if TYPE_CHECKING:`.
"""

import ast
import importlib
import importlib.util
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

PACKAGES = (
    "perkrank",
    "perkrank.configs",
    "perkrank.features",
    "perkrank.models",
    "perkrank.training",
    "perkrank.serving",
)
HEAVY_MODULES = ("mlflow", "pandas", "implicit", "lightfm", "perkrank.training")
"""What serving must not import while it starts (its request path never needs them)."""


def perkrank_modules() -> dict[str, Path]:
    """Every module of perkrank.* by name, with its source file."""
    modules = {}
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        modules[package_name] = Path(package.__file__)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."):
            spec = importlib.util.find_spec(info.name)
            modules[info.name] = Path(spec.origin)
    return modules


def imported_at_import_time(tree: ast.Module, module: str, is_package: bool) -> set[str]:
    """Names of modules (and of names inside modules) `module` imports at import time."""
    found: set[str] = set()
    for node in top_level_statements(tree.body):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = resolve_relative(node, module, is_package)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def top_level_statements(body: list[ast.stmt]) -> list[ast.stmt]:
    """Statements run at import: the body, into `if`/`try`/`with` blocks, not functions,
    classes' methods or `if TYPE_CHECKING:` blocks."""
    statements = []
    for node in body:
        statements.append(node)
        if isinstance(node, ast.If):
            if not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
                statements += top_level_statements(node.body)
            statements += top_level_statements(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                statements += top_level_statements(block)
            for handler in node.handlers:
                statements += top_level_statements(handler.body)
        elif isinstance(node, ast.With | ast.ClassDef):
            statements += top_level_statements(node.body)
    return statements


def resolve_relative(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    parts = module.split(".")
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def import_graph() -> dict[str, set[str]]:
    """perkrank module → the perkrank modules it imports at import time."""
    modules = perkrank_modules()
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = imported_at_import_time(tree, name, path.name == "__init__.py")
        graph[name] = {target for target in names if target in modules and target != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle_and_accepts_a_chain():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_the_graph_reads_imports_run_at_import_time_only():
    source = (
        "from typing import TYPE_CHECKING\n"
        "import perkrank.models.factors\n"
        "from perkrank.features import vocabulary\n"
        "if TYPE_CHECKING:\n    import perkrank.serving.api\n"
        "def later():\n    import perkrank.training.pipeline\n"
    )

    found = imported_at_import_time(ast.parse(source), "perkrank.x", is_package=False)

    assert {"perkrank.models.factors", "perkrank.features.vocabulary"} <= found
    assert not {"perkrank.serving.api", "perkrank.training.pipeline"} & found


def test_perkrank_modules_import_each_other_without_cycles():
    graph = import_graph()

    assert len(graph) > 40  # every package was walked
    assert cycles(graph) == []


def test_serving_never_imports_training_even_lazily():
    modules = perkrank_modules()
    offenders = []
    for name, path in modules.items():
        if not name.startswith("perkrank.serving"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            imported = []
            if isinstance(node, ast.Import):
                imported = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                imported = [resolve_relative(node, name, path.name == "__init__.py")]
            offenders += [(name, target) for target in imported if "training" in target]

    assert offenders == []


def test_importing_serving_loads_no_training_library_pandas_or_mlflow():
    serving = sorted(name for name in perkrank_modules() if name.startswith("perkrank.serving"))
    program = (
        "import importlib, json, sys\n"
        "loaded = {}\n"
        f"for name in {serving!r}:\n"
        "    importlib.import_module(name)\n"
        f"    heavy = sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules)\n"
        "    if heavy:\n"
        "        loaded[name] = heavy\n"
        "        break\n"
        "print(json.dumps(loaded))\n"
    )

    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )

    assert len(serving) > 10
    assert json.loads(result.stdout) == {}
