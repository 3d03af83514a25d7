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
    import importlib
    import re

    import engine

    for name in engine.__all__:
        importlib.import_module(f"engine.{name}")
    used = set()
    for folder, _, files in os.walk(os.path.join(ROOT, "api")):
        for name in files:
            if name.endswith(".py"):
                with open(os.path.join(folder, name)) as f:
                    text = f.read()
                used |= set(re.findall(r"^from engine\.(\w+) import", text, re.M))
                for line in re.findall(r"^from engine import ([\w, ]+)", text, re.M):
                    used |= {n.strip() for n in line.split(",")}
    assert used <= set(engine.__all__), used - set(engine.__all__)
