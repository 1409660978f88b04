"""The direction of the code (docs/architecture.md): what the import contracts cannot say.

`lint-imports` (pyproject.toml) checks the layers and the forbidden imports; these tests check
that no two modules import each other through any chain (a cycle), and that no private name
(`_x`) is used outside its module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("etl", "dashboard", "sql", "bench")


def cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected groups of two or more modules (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_module_cycle():
    graph = grimp.build_graph(*PACKAGES, include_external_packages=False)
    assert cycles(graph) == []


def test_a_cycle_is_found():
    """The check itself: two modules importing each other form one group."""
    graph = grimp.ImportGraph()
    for module in ("a", "a.x", "a.y", "a.z"):
        graph.add_module(module)
    graph.add_import(importer="a.x", imported="a.y")
    graph.add_import(importer="a.y", imported="a.x")
    graph.add_import(importer="a.z", imported="a.x")
    assert cycles(graph) == [["a.x", "a.y"]]


def project_modules() -> dict[str, Path]:
    """Every module of the product and the benchmarks, by dotted name."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def private_uses(path: Path, modules: set[str]) -> list[str]:
    """`from m import _x` and `m._x` where m is another module of the project."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    uses, aliases = [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            root = node.module.split(".")[0]
            for alias in node.names:
                if root in PACKAGES and alias.name.startswith("_") and alias.name != "__version__":
                    uses.append(f"{path.name}:{node.lineno} from {node.module} import {alias.name}")
                if f"{node.module}.{alias.name}" in modules:
                    aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules:
                    aliases[alias.asname or alias.name] = alias.name
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            uses.append(f"{path.name}:{node.lineno} {aliases[node.value.id]}.{node.attr}")
    return uses


def test_no_private_name_crosses_modules():
    modules = project_modules()
    found = [use for path in modules.values() for use in private_uses(path, set(modules))]
    assert found == []


def test_a_private_use_is_found(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from etl.ingest import load\nfrom etl.ingest.load import _hidden\nload._other()\n",
        encoding="utf-8",
    )
    assert private_uses(sample, {"etl.ingest.load"}) == [
        "sample.py:2 from etl.ingest.load import _hidden",
        "sample.py:3 etl.ingest.load._other",
    ]
