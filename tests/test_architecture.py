"""The layout holds: imports go one way, no module imports itself round a cycle, no module is
too long to read.

Packages: `api`/`evals` → `retrieval` → `rca` → `prompts`; nothing imports `api` or `evals`.
Inside rca, each room (subpackage) may import only the rooms below it (`ROOMS`), as the
docstrings of their `__init__.py` say.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import ROOT

PACKAGES = ("rca", "retrieval", "prompts", "api", "evals")
ALLOWED: dict[str, set[str]] = {
    "prompts": set(),
    "rca": {"prompts"},
    "retrieval": {"rca", "prompts"},
    "api": {"retrieval", "rca", "prompts"},
    "evals": {"retrieval", "rca", "prompts"},
}
# rca's rooms, lowest first: each may import those of a lower layer (and itself).
ROOMS: dict[str, int] = {
    "rca": 0,  # the package's own modules: errors, config, the offline switch
    "rca.domain": 1,
    "rca.ports": 2,
    "rca.redaction": 2,
    "rca.integrations": 2,
    "rca.testing": 3,
    "rca.store": 3,
    "rca.llm": 3,
    "rca.formats": 4,
    "rca.drafting": 4,
    "rca.review": 5,
    "rca.insights": 5,
    "rca.cli": 6,
}
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> Iterator[tuple[str, int]]:
    """Every module of ours that `name` imports (at any depth of the file), with the line."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                if not is_package:
                    anchor = anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                yield (sub if sub in MODULES else base), node.lineno


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        graph[name] = {
            target for target, _ in _imports(name, path) if target in MODULES and target != name
        }
    return graph


def _room(module: str) -> str:
    if module == "rca.__main__":
        return "rca.cli"  # `python -m rca` runs the command line
    parts = module.split(".")
    if len(parts) >= 2 and ".".join(parts[:2]) in ROOMS:
        return ".".join(parts[:2])
    return "rca"


def test_every_package_imports_only_the_packages_below_it() -> None:
    wrong = []
    for name, path in MODULES.items():
        own = name.split(".")[0]
        for target, line in _imports(name, path):
            top = target.split(".")[0]
            if top in PACKAGES and top != own and top not in ALLOWED[own]:
                wrong.append(f"{path.relative_to(ROOT)}:{line}: {own} imports {target}")
    assert wrong == []


def test_every_room_of_rca_imports_only_the_rooms_below_it() -> None:
    wrong = []
    for name, path in MODULES.items():
        if not name.startswith("rca"):
            continue
        mine = _room(name)
        for target, line in _imports(name, path):
            if target.split(".")[0] != "rca" or target not in MODULES:
                continue
            theirs = _room(target)
            if theirs != mine and ROOMS[theirs] >= ROOMS[mine]:
                wrong.append(f"{path.relative_to(ROOT)}:{line}: {mine} imports {theirs}")
    assert wrong == []


def test_every_room_of_rca_is_known() -> None:
    rooms = {
        f"rca.{p.name}" if p.is_dir() else f"rca.{p.stem}"
        for p in (ROOT / "rca").iterdir()
        if (p.is_dir() and (p / "__init__.py").exists()) or p.suffix == ".py"
    }
    top_modules = {"rca.__init__", "rca.__main__", "rca.errors", "rca.config"}
    assert rooms - top_modules - set(ROOMS) == set()


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_no_module_imports_itself_round_a_cycle() -> None:
    assert _cycles(_graph()) == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_is_longer_than_the_guideline(name: str) -> None:
    lines = len(MODULES[name].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{MODULES[name].relative_to(ROOT)} has {lines} lines"


def test_the_checks_see_a_wrong_import_and_a_cycle(tmp_path: Path) -> None:
    """The walker itself: a relative import resolves, and a cycle is found."""
    path = tmp_path / "mod.py"
    path.write_text("from . import x\nfrom ..y import z\nimport api.app\n")
    seen = [target for target, _ in _imports("rca.sub.mod", path)]
    assert seen == ["rca.sub", "rca.y", "api.app"]
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
