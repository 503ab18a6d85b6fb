"""The package's shape: role folders, one import direction, no package-level cycle.

The direction, lowest first (docs/architecture.md draws it):

    core  <-  logs, fsinfo, zones, httpserve, openfile  <-  config, store, media, tiktok, mediahost  <-  intake
          <-  daemon  <-  ops  <-  commands  <-  cli

A module may import its own package and any lower layer, never a higher one, and packages of the
same layer do not import each other. The emulator is a separate program: the product never imports
it, except ``cli`` (its subcommand) and ``commands.demo`` (which runs it), and it imports nothing of
the product.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "watchfolder"

LAYERS: dict[str, int] = {
    "core": 0,
    "logs": 1, "fsinfo": 1, "httpserve": 1, "openfile": 1, "zones": 1,
    "config": 2, "store": 2, "media": 2, "tiktok": 2, "mediahost": 2,
    "intake": 3,
    "daemon": 4,
    "ops": 5,
    "commands": 6,
    "cli": 7, "__main__": 8, "__init__": 8,
}
EMULATOR_USERS = {"cli", "commands.demo"}


def unit_of(module: str) -> str:
    """``watchfolder.daemon.pipeline`` → ``daemon``; ``watchfolder.logs`` → ``logs``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        name = ".".join(rel.parts)
        found[name.removesuffix(".__init__") if name != "watchfolder.__init__" else "watchfolder.__init__"] = path
    return found


def imports_of(module: str, path: Path) -> set[str]:
    """Every ``watchfolder.*`` module this one imports, at any depth of the file (lazy imports too)."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("watchfolder"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            if base.startswith("watchfolder"):
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in node.names)
    known = modules()
    return {name for name in found if name in known and name != "watchfolder"} | (
        {"watchfolder.__init__"} if any(n == "watchfolder" for n in found) else set())


PRODUCT = {name: path for name, path in modules().items() if not name.startswith("watchfolder.emulator")}


def test_every_product_module_belongs_to_a_layer() -> None:
    unknown = sorted(name for name in PRODUCT if unit_of(name) not in LAYERS)
    assert unknown == [], f"modules outside the role folders (add them to a layer in this test and the docs): {unknown}"


@pytest.mark.parametrize("module", sorted(PRODUCT))
def test_imports_run_one_way(module: str) -> None:
    here = unit_of(module)
    wrong = []
    for target in sorted(imports_of(module, PRODUCT[module])):
        there = unit_of(target)
        if there == "emulator":
            if module.removeprefix("watchfolder.") not in EMULATOR_USERS:
                wrong.append(f"{target} (the emulator is not part of the product)")
            continue
        if there == "__init__" or there == here:
            continue
        if LAYERS[there] >= LAYERS[here]:
            wrong.append(f"{target} (layer {there}={LAYERS[there]} is not below {here}={LAYERS[here]})")
    assert wrong == [], f"{module} imports against the layers: {wrong}"


def test_the_emulator_imports_nothing_of_the_product() -> None:
    emulator = {name: path for name, path in modules().items() if name.startswith("watchfolder.emulator")}
    wrong = {name: sorted(t for t in imports_of(name, path) if not t.startswith("watchfolder.emulator")
                          and t != "watchfolder.__init__")
             for name, path in emulator.items()}
    assert {k: v for k, v in wrong.items() if v} == {}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            members = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                members.append(top)
                if top == node:
                    break
            if len(members) > 1:
                found.append(sorted(members))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_layer_check_sees_a_cycle_when_there_is_one() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_between_packages() -> None:
    """Package level: ``daemon`` → ``intake`` → ``daemon`` would be a cycle even through different modules."""
    graph: dict[str, set[str]] = {}
    for name, path in modules().items():
        unit = unit_of(name)
        graph.setdefault(unit, set()).update(unit_of(t) for t in imports_of(name, path) if unit_of(t) != unit
                                             and unit_of(t) != "__init__")
    assert _cycles(graph) == []


def test_no_import_cycle_inside_the_emulator() -> None:
    """Module level: the handlers, the server and the state are written against the state object only, so
    ``core`` → ``server`` → ``api_*`` → ``state`` runs one way. The package ``__init__`` only re-exports."""
    emulator = {name: path for name, path in modules().items()
                if name.startswith("watchfolder.emulator") and name != "watchfolder.emulator"}
    graph = {name: {t for t in imports_of(name, path) if t in emulator} for name, path in emulator.items()}
    assert _cycles(graph) == []
