"""Docs that cannot drift: every module the prose names exists.

Reads the README, `doc/*.md`, the upgrade canary's messages and the docstrings and
comments of the package, finds every dotted `presto.x.y` name and every `presto/x/y.py`
path, and resolves each to a module, an attribute of one, or a file. A rename that leaves
a reference behind fails here, with the file and line that names the old place.
"""

from __future__ import annotations

import ast
import importlib
import io
import re
import tokenize
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "presto"
MARKDOWN = [ROOT / "README.md", *sorted((ROOT / "doc").glob("*.md"))]
# Read whole, code included: its assertion messages name the presto files that use a hook.
CANARY = ROOT / "tests" / "test_dependency_hooks.py"

# `presto.` names that are not modules, each with what it is.
NOT_MODULES = {
    "presto.access": "the access log's logger",
    "presto.prefer_gzip": "the WSGI environ key a miss of the fast path sets",
    "presto.db": "the SQLite file of the zero-setup default",
    "presto.env": "the environment file of the systemd unit (deploy/)",
}

# Not preceded by a name, a path or a dot: `deploy/presto.env` and `x.presto` are no references.
DOTTED = re.compile(r"(?<![\w/.-])presto(?:\.[A-Za-z_]\w*)+")
# A name in a path starts with a letter or `_`: `presto/0.1.0` (a user agent) is no path.
NAME = r"[A-Za-z_][\w-]*"
PATH = re.compile(rf"(?<![\w/.-])presto/(?:{NAME}/)*(?:{NAME}\.py|{NAME}/?)")


def prose_of_module(path: Path) -> Iterator[tuple[int, str]]:
    """(line, text) of every docstring and comment of a Python file; code strings aside."""
    source = path.read_text()
    for node in ast.walk(ast.parse(source)):
        if isinstance(
            node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef
        ) and (docstring := ast.get_docstring(node, clean=False)):
            for offset, line in enumerate(docstring.splitlines()):
                yield node.body[0].lineno + offset, line
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string


def prose() -> Iterator[tuple[str, int, str]]:
    """(file, line, text) of the README, `doc/*.md`, the upgrade canary and the package's
    docstrings and comments."""
    for path in [*MARKDOWN, CANARY]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            yield str(path.relative_to(ROOT)), number, line
    for path in sorted(PACKAGE.rglob("*.py")):
        for number, text in prose_of_module(path):
            yield str(path.relative_to(ROOT)), number, text


def resolves(dotted: str) -> bool:
    """Whether `presto.x.y` is a module, or an attribute reached from the longest module."""
    parts = dotted.split(".")
    target: object = None
    for length in range(len(parts), 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:length]))
        except ImportError:
            continue
        break
    for name in parts[length:]:
        if not hasattr(target, name):
            return False
        target = getattr(target, name)
    return True


def references() -> list[tuple[str, int, str]]:
    found = []
    for where, line, text in prose():
        found += [(where, line, match) for match in DOTTED.findall(text)]
        found += [(where, line, match) for match in PATH.findall(text)]
    return found


def test_every_reference_names_a_module_attribute_or_file_that_exists() -> None:
    wrong = []
    for where, line, reference in references():
        if reference in NOT_MODULES:
            continue
        exists = (ROOT / reference).exists() if "/" in reference else resolves(reference)
        if not exists:
            wrong.append(f"{where}:{line}: {reference}")
    assert wrong == []


def test_the_scan_finds_references_and_refuses_a_stale_one() -> None:
    found = {reference for _, _, reference in references()}
    assert {"presto.services.restaurants.bump_menu_version", "presto/storage/models.py"} <= found
    assert "presto/serving/connections.py" in found  # named by the canary
    assert resolves("presto.services.restaurants.bump_menu_version")
    assert resolves("presto.schemas.output")
    assert not resolves("presto.menu.bump_menu_version")
    assert not resolves("presto.services.graph.no_such_rule")
    assert DOTTED.findall("see presto.api.errors.") == ["presto.api.errors"]
    assert DOTTED.findall("deploy/presto.env and x.presto.y") == []


def test_the_names_that_are_not_modules_are_still_used() -> None:
    text = "\n".join(line for _, _, line in prose())
    assert [name for name in NOT_MODULES if name not in text] == []


def subpackages() -> list[Path]:
    return sorted(
        path.parent
        for path in PACKAGE.rglob("__init__.py")
        if "migrations" not in path.relative_to(PACKAGE).parts and path.parent != PACKAGE
    )


@pytest.mark.parametrize("package", subpackages(), ids=lambda path: path.name)
def test_every_subpackage_says_what_it_may_import(package: Path) -> None:
    module: ModuleType = importlib.import_module(".".join(package.relative_to(ROOT).parts))
    assert module.__doc__ is not None
    assert re.search(r"\bmay import\b", module.__doc__, re.IGNORECASE), (
        f"{package.relative_to(ROOT)}/__init__.py does not say what the package may import"
    )
