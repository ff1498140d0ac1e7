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
# The menu read model: rendering, publishing, how a menu call is answered; run by Flask's
# route and, outside Flask, by the warm path, the publisher process, the CLI and the bench.
MENUS = SCHEMAS | {"presto.menus"}
API = MENUS | {"presto.api"}
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
    "presto.menus": MENUS,
    "presto.api": API,
    "presto.app": APP,
    "presto.serving": SERVING,
    # Telemetry counts what the rest of serving does and reports the state of the menu
    # cache and the database; it never reaches into the app or the request handling.
    "presto.serving.telemetry": STORAGE | {"presto.serving.cache"},
    # The demo loads its menu documents through the schemas and the import service.
    "presto.demo": SCHEMAS,
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
    assert "presto.api" not in ALLOWED[part_of("presto.menus.publishing")]
    assert "presto.menus" not in ALLOWED[part_of("presto.schemas.output")]
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
        "presto.menus.publishing",
        "presto.serving.fastpath",
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
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{module_name(path)}.{node.name}: {lines} lines")
    assert long == []


# The layers from the bottom up: a module's rank is its layer's place here.
LAYER_ORDER = (
    ("presto.storage",),
    ("presto.services",),
    ("presto.schemas", "presto.schema_fields"),
    ("presto.menus",),
    ("presto.api",),
    ("presto.app",),
    ("presto.serving",),
)
MENU_ROUTE = "presto.api.menu_routes"


def layer_rank(name: str) -> int:
    """The place of `name`'s layer in `LAYER_ORDER`; -1 for the modules under every layer."""
    for rank, prefixes in enumerate(LAYER_ORDER):
        if any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes):
            return rank
    return -1


def import_graph() -> dict[str, set[str]]:
    """Each presto module and the presto modules it imports (names resolved to modules:
    `from presto.x import y` is an edge to `presto.x.y` when that is a module, else to
    `presto.x`)."""
    modules = {module_name(path): path for path in package_modules()}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = set()
        for imported in presto_imports(path):
            while imported not in modules and "." in imported:
                imported = imported.rsplit(".", 1)[0]
            if imported in modules and imported != name and not name.startswith(imported + "."):
                edges.add(imported)
        graph[name] = edges
    return graph


def reachable(graph: dict[str, set[str]], start: str) -> dict[str, list[str]]:
    """Every module reachable from `start`, each with one import path that reaches it."""
    paths = {start: [start]}
    stack = [start]
    while stack:
        name = stack.pop()
        for target in sorted(graph[name]):
            if target not in paths:
                paths[target] = [*paths[name], target]
                stack.append(target)
    return paths


def test_the_menu_call_miss_path_goes_only_down_after_the_route() -> None:
    """route -> read model -> services -> storage: what the route calls for the menu is
    below `api`, and nothing below it climbs back to `api` (or a peer of the route)."""
    graph = import_graph()
    below = {target for target in graph[MENU_ROUTE] if layer_rank(target) < layer_rank(MENU_ROUTE)}
    # The miss path: the published body (or rendering and publishing it), then its rules
    # and its rows.
    assert {"presto.menus.publishing", "presto.menus.rendering"} <= below
    assert "presto.services.published" in graph["presto.menus.publishing"]
    assert "presto.services.menus" in graph["presto.menus.publishing"]
    assert "presto.storage.published_menus" in graph["presto.services.published"]
    # The route's own layer gives it only request plumbing, never the menu's work.
    peers = {target for target in graph[MENU_ROUTE] if layer_rank(target) == layer_rank(MENU_ROUTE)}
    assert peers == {
        "presto.api.blueprint",
        "presto.api.conditional",
        "presto.api.content_coding",
        "presto.api.session",
    }
    for start in sorted(below):
        for name, path in reachable(graph, start).items():
            assert layer_rank(name) <= layer_rank(start), f"climbs back up: {' -> '.join(path)}"
            assert layer_rank(name) < layer_rank(MENU_ROUTE), " -> ".join([MENU_ROUTE, *path])


def test_the_miss_path_check_sees_a_climb_back() -> None:
    graph = {
        MENU_ROUTE: {"presto.services.published"},
        "presto.services.published": {"presto.menus.publishing"},
        "presto.menus.publishing": set(),
    }
    climbs = [
        name
        for name in reachable(graph, "presto.services.published")
        if layer_rank(name) > layer_rank("presto.services.published")
    ]
    assert climbs == ["presto.menus.publishing"]


def test_serving_imports_no_route_module() -> None:
    """The warm path answers the menu call by the read model's rules, not the route's."""
    graph = import_graph()
    routes = {
        (name, target)
        for name, edges in graph.items()
        if layer_rank(name) == layer_rank("presto.serving")
        for target in edges
        if target.rsplit(".", 1)[-1].endswith("_routes")
    }
    assert routes == set()
    assert "presto.menus.representation" in graph["presto.serving.fastpath"]
    assert "presto.menus.representation" in graph["presto.serving.cache"]
