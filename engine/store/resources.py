"""Where the files opsjob ships beside its code live, found through the installed packages.

The playbook templates, the inventory plugins and the notebooks install as the top-level
packages ``playbooks_templates``, ``inventory_plugins`` and ``notebooks``. They are looked up
with :mod:`importlib.resources`, never relative to a checkout, so an installed wheel finds
them wherever it was installed.
"""

import os
from importlib import resources
from typing import Any

DATA_PACKAGES = ("playbooks_templates", "inventory_plugins", "notebooks")
# Every top-level import name the opsjob distribution installs.
TOP_LEVEL = ("api", "engine", *DATA_PACKAGES)


def folder(package: str) -> str:
    """Return the directory of the installed data package ``package`` as a path string.

    Jinja and Ansible read these folders by path, so a package that is not a plain directory
    (a zip import) is an error.
    """
    path: Any = resources.files(package)  # a Traversable; fspath() refuses one not on disk
    try:
        path = os.fspath(path)
    except TypeError:
        raise RuntimeError(f"{package}: installed as {path!r}, not a directory") from None
    return path
