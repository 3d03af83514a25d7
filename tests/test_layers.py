"""The engine's rooms point one way and hold no import circles (imports read with ``ast``).

Layers, lowest first: ``engine.errors`` and ``engine.store`` (the base); the engine's rooms
(and ``engine.boot``, which starts them); then ``api`` and ``inventory_plugins``. A module may
import its own layer or a lower one. Every import counts, also one inside a function.

Inside ``api``, rooms point one way too: ``api.http`` (what every route module uses) below the
route rooms (``api.routes``, ``api.machines``, ``api.accounts``), below ``api.server``, below
``api.cli``; the client users import in notebooks (``api.client``) uses neither the server nor
the engine. Node resolution (``engine.machines``) sits above ``engine.catalog`` and below
``engine.run``.
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
    assert "engine.catalog.jobs" in edges["api.routes.jobs"]
    assert len(edges) > 100


def test_imports_point_down_the_layers():
    wrong = [
        f"{name} imports {target}"
        for name, targets in graph().items()
        for target in sorted(targets)
        if layer(target) > layer(name)
    ]
    assert not wrong, "\n".join(wrong)


API_ROOMS = {
    "api.http": 0,
    "api.routes": 1,
    "api.machines": 1,
    "api.accounts": 1,
    "api.server": 2,
    "api.cli": 3,
}


def _room(name, rooms):
    for room in rooms:
        if name == room or name.startswith(room + "."):
            return room
    return None


def test_api_rooms_point_one_way():
    wrong = []
    for name, targets in graph().items():
        room = _room(name, API_ROOMS)
        for target in sorted(targets):
            other = _room(target, API_ROOMS)
            if room and other and other != room and API_ROOMS[other] >= API_ROOMS[room]:
                wrong.append(f"{name} imports {target}")
    assert not wrong, "\n".join(wrong)
    assert set(API_ROOMS) | {"api.client"} >= {
        _room(n, [*API_ROOMS, "api.client"]) for n in graph() if n.startswith("api.")
    }


def test_the_client_uses_neither_the_server_nor_the_engine():
    used = {
        target
        for name, targets in graph().items()
        if name.startswith("api.client")
        for target in targets
        if not target.startswith("api.client")
    }
    assert not used, sorted(used)


def test_node_resolution_sits_between_catalog_and_run():
    wrong = [
        f"{name} imports {target}"
        for name, targets in graph().items()
        for target in targets
        if (name.startswith("engine.catalog") and target.startswith("engine.machines"))
        or (name.startswith("engine.machines") and target.startswith("engine.run"))
    ]
    assert not wrong, "\n".join(wrong)


def test_no_room_holds_more_than_about_fifteen_modules():
    rooms = {}
    for name, path in modules().items():
        if not path.endswith("__init__.py"):
            rooms.setdefault(os.path.dirname(path), []).append(name)
    crowded = {os.path.relpath(k, ROOT): len(v) for k, v in rooms.items() if len(v) > 16}
    assert not crowded, crowded


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
