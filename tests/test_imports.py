"""Who may import whom, read from the source without importing anything (docs/architecture.md).

The receiving edge never needs the workers; the look-alike and the migrations stand alone; nothing
of the product imports the tests or the benchmarks; and the packages form no cycle. A node of the
graph is a top-level package, except in `workers/`, where each subpackage and each loose module is
one. Imports inside functions and under TYPE_CHECKING count: they are dependencies too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from itertools import pairwise
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The look-alike, one node of the graph.
SANDBOX = "sandbox"
PACKAGES = ("events", "workers", "api", "scripts", "migrations", "bench", "tests", "sandbox")
NOT_FOR_THE_PRODUCT = {"tests", "bench"}

# For each package, the packages of ours it must never import.
FORBIDDEN = {
    "events": {"workers", "api", "scripts", "sandbox", "migrations", *NOT_FOR_THE_PRODUCT},
    "workers": {"api", "scripts", "sandbox", *NOT_FOR_THE_PRODUCT},
    # The API reads the store and queues work; only the command that serves it imports it.
    "api": {"scripts", "sandbox", *NOT_FOR_THE_PRODUCT},
    "sandbox": set(PACKAGES) - {"sandbox"},
    "migrations": set(PACKAGES) - {"migrations"},
    "scripts": NOT_FOR_THE_PRODUCT,
}


def node(module: str) -> str:
    """The graph node a dotted module name belongs to."""
    if module == SANDBOX or module.startswith(f"{SANDBOX}."):
        return "sandbox"
    top, _, rest = module.partition(".")
    if top == "workers" and rest:
        return f"workers.{rest.split('.')[0]}"
    return top


@cache
def modules() -> dict[str, Path]:
    """Every module of ours by dotted name."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported_by(name: str, path: Path) -> Iterator[str]:
    """The dotted names `name` imports (a submodule where `from x import y` names one)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for statement in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(statement, ast.Import):
            yield from (alias.name for alias in statement.names)
        elif isinstance(statement, ast.ImportFrom):
            base = statement.module or ""
            if statement.level:
                anchor = package.split(".")[: len(package.split(".")) - statement.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in statement.names:
                submodule = f"{base}.{alias.name}"
                yield submodule if submodule in modules() else base


@cache
def edges() -> dict[str, dict[str, str]]:
    """For each node, the nodes of ours it imports, each with one module that does."""
    graph: dict[str, dict[str, str]] = {}
    for name, path in modules().items():
        source = node(name)
        for target in imported_by(name, path):
            if target.partition(".")[0] in PACKAGES and node(target) != source:
                graph.setdefault(source, {}).setdefault(node(target), f"{name} → {target}")
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle of `graph` as a path that ends where it starts, or [] when there is none."""
    done: set[str] = set()

    def visit(start: str, path: list[str]) -> list[str]:
        for target in sorted(graph.get(start, ())):
            if target in path:
                return [*path[path.index(target) :], target]
            if target not in done and (found := visit(target, [*path, target])):
                return found
        done.add(start)
        return []

    for start in sorted(graph):
        if found := visit(start, [start]):
            return found
    return []


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_imports_only_what_it_may(package: str) -> None:
    breaches = [
        witness
        for source, targets in edges().items()
        if source.partition(".")[0] == package
        for target, witness in targets.items()
        if target.partition(".")[0] in FORBIDDEN[package]
    ]
    assert breaches == []


def test_the_packages_form_no_cycle() -> None:
    cycle = find_cycle({source: set(targets) for source, targets in edges().items()})
    witnesses = [edges()[a][b] for a, b in pairwise(cycle)]
    assert cycle == [], witnesses


def test_the_scan_sees_what_is_imported() -> None:
    graph = edges()
    assert {"events", "sandbox", "api"} <= set(graph["scripts"])
    assert {"events", "workers.store"} <= set(graph["api"])
    assert {"events", "workers", "scripts", "sandbox", "migrations"} <= {
        target.partition(".")[0] for target in graph["tests"]
    }
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []
