"""The public surface of engine/ and api/ says what it returns: at least 80 % of the public
functions and methods (no leading underscore) declare a return type, read with ``ast``.
`make test` runs mypy over the same trees (mypy.ini)."""

import ast
import os

from tests.test_layers import modules

GOAL = 0.80


def public_functions():
    """``[(module, name, annotated)]`` of every public function and public class's method."""
    found = []
    for name, path in modules().items():
        if not name.startswith(("engine", "api")):
            continue
        with open(path) as f:
            tree = ast.parse(f.read())

        found += [(name, *entry) for entry in _functions(tree, "")]
    return found


def _functions(node, prefix):
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if not child.name.startswith("_"):
                yield prefix + child.name, child.returns is not None
        elif isinstance(child, ast.ClassDef) and not child.name.startswith("_"):
            yield from _functions(child, f"{prefix}{child.name}.")


def test_most_public_functions_declare_their_return_type():
    found = public_functions()
    typed = sum(1 for *_, annotated in found if annotated)
    share = typed / len(found)
    missing = sorted(f"{m}.{n}" for m, n, annotated in found if not annotated)
    assert share >= GOAL, f"{typed}/{len(found)} typed; untyped: {missing[:40]}"


def test_the_checker_covers_engine_and_api():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "mypy.ini")) as f:
        assert "files = engine, api" in f.read()
