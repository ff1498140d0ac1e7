"""The package's layers import only downwards, so the tree keeps showing how presto is built.

Each subpackage's `__init__.py` says what it may import; this reads every module's imports
(module level and inside functions alike) and holds them to the table below.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "presto"

# The foundations every layer may use.
BASE = {"presto", "presto.config", "presto.errors", "presto.settings_parser"}
STORAGE = BASE | {"presto.storage"}
SERVICES = STORAGE | {"presto.services"}
SCHEMAS = SERVICES | {"presto.schemas", "presto.schema_fields"}
API = SCHEMAS | {"presto.api"}
APP = API | {"presto.app"}
SERVING = APP | {"presto.serving"}
# Inside `presto.schemas`: each direction builds on the shared values, never on another
# direction (an answer's shape does not depend on a request body's); menu documents are
# items as bodies send them, with their modifier links.
SCHEMA_VALUES = SERVICES | {"presto.schema_fields"}
SCHEMA_DIRECTION = SCHEMA_VALUES | {"presto.schemas.values"}

# What each part of the package may import, by the part a module belongs to.
ALLOWED: dict[str, set[str]] = {
    "presto": set(),
    "presto.config": set(),
    "presto.errors": set(),
    "presto.settings_parser": {"presto.config"},
    "presto.storage": STORAGE,
    "presto.services": SERVICES,
    "presto.schemas": SCHEMAS,
    "presto.schemas.values": SCHEMA_VALUES,
    "presto.schemas.output": SCHEMA_DIRECTION,
    "presto.schemas.queries": SCHEMA_DIRECTION,
    "presto.schemas.bodies": SCHEMA_DIRECTION,
    "presto.schemas.links": SCHEMA_DIRECTION,
    "presto.schemas.operational": SCHEMA_DIRECTION,
    "presto.schemas.documents": SCHEMA_DIRECTION
    | {"presto.schemas.bodies", "presto.schemas.links"},
    "presto.schemas.webhooks": SCHEMA_DIRECTION,
    "presto.schema_fields": STORAGE,
    "presto.api": API,
    "presto.app": APP,
    "presto.serving": SERVING,
    # Telemetry counts what the rest of serving does and reports the state of the menu
    # cache and the database; it never reaches into the app or the request handling.
    "presto.serving.telemetry": STORAGE | {"presto.serving.cache"},
    "presto.demo": STORAGE,
    "presto.wsgi": APP,
    "presto.cli": SERVING | {"presto.cli", "presto.demo"},
    "presto.__main__": {"presto.cli"},
    "presto.bench": SERVING | {"presto.bench"},
}
# Longest a function may be, outside the benchmark harness and migration scripts.
MAX_FUNCTION_LINES = 50


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def part_of(name: str) -> str:
    """The entry of `ALLOWED` that a module belongs to: its longest matching prefix."""
    candidates = [part for part in ALLOWED if name == part or name.startswith(part + ".")]
    return max(candidates, key=len)


def presto_imports(path: Path) -> set[str]:
    """Every presto module `path` imports, resolved to absolute names."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
            found.add(node.module)
    return {name for name in found if name == "presto" or name.startswith("presto.")}


def package_modules() -> list[Path]:
    return sorted(
        path
        for path in PACKAGE.rglob("*.py")
        if "migrations" not in path.relative_to(PACKAGE).parts
    )


def not_allowed(name: str, imported: set[str]) -> list[str]:
    """The imports of module `name` that its part of the table does not allow."""
    allowed = ALLOWED[part_of(name)] | {part_of(name)}
    # "presto" (`from presto import __version__`) names the package itself, not all of it.
    below = allowed - {"presto"}
    return sorted(
        module
        for module in imported
        if module not in ("presto", "presto.__version__")
        and not any(module == part or module.startswith(part + ".") for part in below)
    )


@pytest.mark.parametrize("path", package_modules(), ids=lambda path: module_name(path))
def test_imports_go_down_the_layers(path: Path) -> None:
    name = module_name(path)
    wrong = not_allowed(name, presto_imports(path))
    assert wrong == [], f"{name} ({part_of(name)}) may not import {wrong}"


def test_the_table_refuses_an_upward_import() -> None:
    assert "presto.api" not in ALLOWED[part_of("presto.services.items")]
    assert "presto.schemas.bodies" not in ALLOWED[part_of("presto.schemas.output")]
    assert "presto.serving" not in ALLOWED[part_of("presto.app")]
    assert "presto.app" not in ALLOWED[part_of("presto.api.item_routes")]
    assert "presto.serving.worker" not in ALLOWED[part_of("presto.serving.telemetry.metrics")]


def test_the_check_refuses_an_upward_import() -> None:
    assert not_allowed("presto.services.items", {"presto.api.auth", "presto.storage"}) == [
        "presto.api.auth"
    ]
    assert not_allowed("presto.schemas.output", {"presto.schemas.bodies.BatchSchema"}) == [
        "presto.schemas.bodies.BatchSchema"
    ]
    assert not_allowed("presto.app", {"presto", "presto.__version__", "presto.api.docs"}) == []


def test_no_import_cycle_between_modules() -> None:
    modules = {module_name(path): path for path in package_modules()}
    graph = {
        name: {
            imported
            for imported in presto_imports(path)
            if imported in modules and imported != name
        }
        for name, path in modules.items()
    }
    # A package imports its own `__init__` first: an edge to a parent package is no cycle.
    for name, edges in graph.items():
        graph[name] = {target for target in edges if not name.startswith(target + ".")}
    state: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> list[str] | None:
        state[name] = 1
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target] if target in path else [name, target]
            if target not in state:
                cycle = visit(target, [*path, target])
                if cycle:
                    return cycle
        state[name] = 2
        return None

    for name in sorted(graph):
        if name not in state:
            assert visit(name, [name]) is None


@pytest.mark.parametrize(
    "module",
    [
        "presto.api.item_routes",
        "presto.services.items",
        "presto.serving.server",
        "presto.serving.supervisor",
        "presto.serving.telemetry.metrics",
    ],
)
def test_a_module_imports_on_its_own(module: str) -> None:
    completed = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stderr


def test_no_long_functions() -> None:
    long = []
    for path in package_modules():
        if module_name(path).startswith("presto.bench"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{module_name(path)}.{node.name}: {lines} lines")
    assert long == []
