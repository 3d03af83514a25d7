"""The engine's rooms point one way and hold no import circles (imports read with ``ast``).

Layers, lowest first: ``engine.errors`` and ``engine.store`` (the base); the other engine
modules (the rooms and the top-level ``console``, ``terminal``, ``third``, ``boot``); then
``api`` and ``inventory_plugins``. A module may import its own layer or a lower one. Every
import counts, also one inside a function.
"""

import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TREES = ("engine", "api", "inventory_plugins")
MAX_LINES = 400


def modules():
    """Return {dotted name: path} of every module in TREES."""
    found = {}
    for tree in TREES:
        for folder, _, files in os.walk(os.path.join(ROOT, tree)):
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    dotted = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                    found[dotted.removesuffix(".__init__")] = path
    return found


def imports(dotted, path, known):
    """Return the modules of TREES that the module ``dotted`` imports."""
    with open(path) as f:
        tree = ast.parse(f.read())
    package = dotted if path.endswith("__init__.py") else dotted.rpartition(".")[0]
    targets = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                targets.add(full if full in known else base)
    found = set()
    for target in targets:
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != dotted and not dotted.startswith(target + "."):
            found.add(target)
    return found


def graph():
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def layer(name):
    """Return the layer of module ``name``: 0 base, 1 engine rooms, 2 api and plugins."""
    if name in ("engine", "engine.errors") or name.startswith("engine.store"):
        return 0
    if name.startswith("engine"):
        return 1
    return 2


def test_the_walk_sees_the_rooms():
    edges = graph()
    assert "engine.store.models" in edges["engine.run.worker"]
    assert "engine.catalog.jobs" in edges["api.jobs"]
    assert len(edges) > 100


def test_imports_point_down_the_layers():
    wrong = [
        f"{name} imports {target}"
        for name, targets in graph().items()
        for target in sorted(targets)
        if layer(target) > layer(name)
    ]
    assert not wrong, "\n".join(wrong)


def test_no_import_circles():
    edges = graph()
    circles, done = [], set()

    def visit(name, path):
        for target in sorted(edges.get(name, ())):
            if target in path:
                circle = path[path.index(target) :] + [target]
                circles.append(" -> ".join(circle))
            elif target not in done:
                visit(target, path + [target])
        done.add(name)

    for name in sorted(edges):
        if name not in done:
            visit(name, [name])
    assert not circles, "\n".join(sorted(set(circles)))


def test_no_module_is_over_400_lines():
    long = []
    for name, path in modules().items():
        with open(path) as f:
            count = sum(1 for _ in f)
        if count > MAX_LINES:
            long.append(f"{name}: {count} lines")
    assert not long, "\n".join(long)
