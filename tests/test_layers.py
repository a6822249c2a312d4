"""The layout's rules, checked on the source: no import cycles, and no layer reaching above itself.

Every import counts, function-local ones too: a cycle hidden inside a function is still a cycle.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("engine", "bridge", "plugin_host", "protos")

# What each part of the project may import from the project (besides itself). Lower layers first;
# a part not listed may import nothing of the project's. bridge is the top: it may use them all.
ALLOWED: dict[str, set[str]] = {
    "engine.config": set(),
    "engine.errors": {"engine.config"},
    "engine.music": {"engine.config", "engine.errors"},
    "engine.catalog": {"engine.config", "engine.errors", "engine.music"},
    "engine.understand": {"engine.config", "engine.errors", "engine.music", "engine.catalog"},
    "engine.model": {"engine.config", "engine.errors", "engine.music", "engine.catalog"},
    "engine.training": {"engine.config", "engine.errors", "engine.music", "engine.catalog", "engine.model"},
    "engine.compose": {"engine.config", "engine.errors", "engine.music", "engine.catalog", "engine.model"},
    "engine.sessions": {"engine.config", "engine.errors", "engine.music", "engine.catalog", "engine.model",
                        "engine.understand", "engine.compose"},
    "engine.evaluation": {"engine.config", "engine.errors", "engine.music", "engine.catalog", "engine.model",
                          "engine.understand", "engine.compose", "engine.training"},
    "plugin_host": {"engine.config", "engine.errors", "engine.music"},
    "engine.api": {"engine.config", "engine.errors", "engine.music", "engine.catalog", "engine.understand",
                   "engine.compose", "plugin_host"},
    "engine": {"engine.api"},  # engine/__init__.py: the public API, loaded lazily
    "engine.serving": {"engine.config", "engine.errors", "engine.music", "engine.catalog", "engine.model",
                       "engine.understand", "engine.compose", "engine.sessions", "plugin_host", "protos"},
    "protos": set(),
    "bridge": {"engine", "plugin_host", "protos"},
}


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "_pb2" in path.name:
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules that ``name`` imports, anywhere in its source."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                keep = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(keep + ([base] if base else []))
            submodules = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in modules]
            targets = submodules or [base]  # `from pkg import module` imports the module, not pkg's API
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def _part(module: str) -> str:
    """The most specific entry of ALLOWED that ``module`` belongs to."""
    best = ""
    for part in ALLOWED:
        if (module == part or module.startswith(part + ".")) and len(part) > len(best):
            best = part
    return best


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def test_no_module_imports_a_layer_above_its_own(graph: dict[str, set[str]]) -> None:
    wrong = []
    for module, targets in graph.items():
        part = _part(module)
        assert part, f"{module} belongs to no part of the layer table; add it to ALLOWED"
        for target in targets:
            target_part = _part(target)
            if target_part == part or target_part in ALLOWED[part]:
                continue
            if part == "bridge":
                continue
            wrong.append(f"{module} imports {target} ({part} may use {sorted(ALLOWED[part]) or 'nothing'})")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles(graph: dict[str, set[str]]) -> None:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(10000)

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    # A package's __init__ re-exporting its own modules is not a cycle between concerns.
    cycles = [c for c in cycles if not all(m.startswith(min(c) + ".") or m == min(c) for m in c)]
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize("module", ["engine", "engine.music", "engine.catalog", "engine.understand",
                                    "engine.compose.pipeline", "engine.compose.operations", "plugin_host.render"])
def test_torch_free_modules_do_not_load_torch(module: str) -> None:
    code = f"import sys, {module}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False", f"import {module} loaded torch"
