"""The package's layers (README, "Layout"): no module imports upward, and no import cycle."""
from __future__ import annotations

import ast
import pathlib

import lth_fast

ROOT = pathlib.Path(lth_fast.__file__).parent
# What each part may import of lth_fast, besides itself.
ALLOWED = {
    "_version": set(),
    "atomic": set(),
    "devices": set(),
    "ops": {"_C"},
    "reference": {"ops"},
    "pruning": {"ops", "atomic", "distributed"},
    "optim": {"ops"},
    "nn": {"ops"},
    "distributed": {"ops"},
    "models": set(),
    "data": set(),
    "tracking": set(),
    "imp": {"ops", "pruning", "optim", "models", "data", "atomic", "devices", "distributed",
            "tracking", "shipping", "_version"},
    "integrations": {"ops", "pruning", "optim", "atomic", "tracking", "nn"},
    "bench": {"ops", "reference", "atomic", "devices", "distributed"},
    "shipping": {"pruning", "models", "atomic", "devices"},
    "cli": {"imp", "bench"},
    "__main__": {"cli"},
    "__init__": {"ops", "reference", "optim", "pruning", "shipping"},
}


def _modules():
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        pkg = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
        name = ".".join(p for p in parts if p != "__init__") or "__init__"
        yield name, path, pkg if parts[-1] == "__init__" else parts[:-1]


def _imports(path, package):
    """lth_fast module names (dotted, relative to lth_fast) that `path` may import: for
    `from X import y`, X.y (when y is a module) or else X."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                mod = ".".join(base + (node.module.split(".") if node.module else []))
            elif node.module and node.module.startswith("lth_fast"):
                mod = node.module[len("lth_fast."):] if "." in node.module else ""
            else:
                continue
            out += [(f"{mod}.{a.name}" if mod else a.name, mod or "__init__") for a in node.names]
        elif isinstance(node, ast.Import):
            out += [(a.name[len("lth_fast."):],) * 2 for a in node.names
                    if a.name.startswith("lth_fast.")]
    return out


def _graph():
    mods = {name: (path, pkg) for name, path, pkg in _modules()}
    known = set(mods) | {"_C"}
    graph = {}
    for name, (path, pkg) in mods.items():
        deps = set()
        for wanted, fallback in _imports(path, pkg):
            dep = wanted if wanted in known else fallback
            while dep and dep not in known:
                dep = dep.rpartition(".")[0]
            deps.add(dep or "__init__")
        graph[name] = deps - {name}
    return graph


def test_no_module_imports_upward():
    bad = []
    for name, deps in _graph().items():
        part = name.split(".")[0]
        for dep in deps:
            top = dep.split(".")[0]
            if top not in (part, "_version") and top not in ALLOWED[part]:
                bad.append(f"{name} imports {dep}")
    assert not bad, bad


def test_no_import_cycle():
    graph = _graph()
    state = {}

    def visit(node, path):
        state[node] = "open"
        for dep in graph.get(node, ()):
            if state.get(dep) == "open":
                raise AssertionError(f"import cycle: {' -> '.join(path + [dep])}")
            if dep not in state:
                visit(dep, path + [dep])
        state[node] = "done"

    for node in graph:
        if node not in state:
            visit(node, [node])
