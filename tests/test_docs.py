"""The docs stay true: every setting is in the README, and CI runs the README's test command."""

import os

from engine.store.settings import documented

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read(name):
    with open(os.path.join(ROOT, name)) as f:
        return f.read()


def test_every_setting_is_documented():
    readme = read("README.md")
    for env, _default, doc in documented():
        assert f"`{env}`" in readme, f"{env} is missing from the README"
        assert doc


def test_ci_runs_the_readme_test_command():
    readme, ci = read("README.md"), read(".ci/run")
    assert "make test" in readme and "make run" in readme
    assert "make test" in ci


def test_engine_never_imports_api():
    for folder, _, files in os.walk(os.path.join(ROOT, "engine")):
        for name in files:
            if name.endswith(".py"):
                with open(os.path.join(folder, name)) as f:
                    text = f.read()
                assert "from api" not in text and "import api" not in text, name


def test_api_uses_only_the_public_engine():
    """api/ and the inventory plugins import only the modules ``engine.__all__`` names.

    Each public name maps to one module in a room (``engine.ROOMS``); an import by the room
    path (``from engine.run import tasks``) or by the short name (``from engine import tasks``)
    must land on one of them, and ``engine.<name>`` must be that very module.
    """
    import ast
    import importlib
    import importlib.util

    import engine

    assert sorted(engine.ROOMS) == sorted(engine.__all__)
    for name, path in engine.ROOMS.items():
        assert getattr(engine, name) is importlib.import_module(path), name
    public = set(engine.ROOMS.values())
    used = set()
    for tree in ("api", "inventory_plugins"):
        for folder, _, files in os.walk(os.path.join(ROOT, tree)):
            for name in files:
                if not name.endswith(".py"):
                    continue
                with open(os.path.join(folder, name)) as f:
                    nodes = list(ast.walk(ast.parse(f.read())))
                for node in nodes:
                    if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                        "engine"
                    ):
                        for alias in node.names:
                            full = f"{node.module}.{alias.name}"
                            if node.module == "engine":
                                full = engine.ROOMS.get(alias.name, full)
                            try:
                                is_module = importlib.util.find_spec(full) is not None
                            except ModuleNotFoundError:  # a name inside a module
                                is_module = False
                            used.add(full if is_module else node.module)
                    elif isinstance(node, ast.Import):
                        used |= {a.name for a in node.names if a.name.startswith("engine.")}
    assert "engine.run.tasks" in used
    assert used <= public, sorted(used - public)
