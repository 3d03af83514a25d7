"""opsjob's engine: everything but HTTP, in rooms that read as the architecture.

``store`` is the bottom layer (database, models, settings, validation); the rooms above
it are ``access``, ``catalog``, ``machines``, ``run``, ``ansible``, ``playbooks``,
``interactive``, ``schedule``, ``files``, ``messages``, ``approval``, ``insight`` and
``ops``; ``errors`` (the one error tree) and ``boot`` (start-up wiring) sit at the top of the
package. ``api`` imports the engine, never the other way round (tests/test_layers.py).

The public surface is ``__all__``: the modules the API, the CLI, the notebooks and the
inventory plugins may import, each by its room path (``engine.run.tasks``) or by its
short name (``from engine import tasks``). tests/test_docs.py guards it.
"""

import importlib

__all__ = [
    "analysis",
    "approvals",
    "audit",
    "auth",
    "boot",
    "console",
    "control",
    "credentials",
    "crontabs",
    "db",
    "doctor",
    "environment",
    "errors",
    "faults",
    "fileserver",
    "jobs",
    "lifecycle",
    "listing",
    "livelog",
    "logformat",
    "metrics",
    "nodegroups",
    "nodeinfo",
    "nodelist",
    "nodes",
    "notifications",
    "notify",
    "projects",
    "queue",
    "readiness",
    "retention",
    "schema",
    "scripts",
    "settings",
    "signon",
    "steps",
    "tasks",
    "terminal",
    "third",
    "tickets",
    "tokens",
    "userlist",
    "users",
    "validate",
    "variables",
    "varlinks",
    "versions",
]

# Where each public module lives.
ROOMS = {
    "analysis": "engine.insight.analysis",
    "approvals": "engine.approval.records",
    "audit": "engine.insight.audit",
    "auth": "engine.access.auth",
    "boot": "engine.boot",
    "console": "engine.interactive.console",
    "control": "engine.run.control",
    "credentials": "engine.machines.credentials",
    "crontabs": "engine.catalog.crontabs",
    "db": "engine.store.db",
    "doctor": "engine.ops.doctor",
    "environment": "engine.catalog.environment",
    "errors": "engine.errors",
    "faults": "engine.store.faults",
    "fileserver": "engine.files.fileserver",
    "jobs": "engine.catalog.jobs",
    "lifecycle": "engine.run.lifecycle",
    "listing": "engine.store.listing",
    "livelog": "engine.tasklog.livelog",
    "logformat": "engine.ops.logformat",
    "metrics": "engine.insight.metrics",
    "nodegroups": "engine.machines.nodegroups",
    "nodeinfo": "engine.machines.nodeinfo",
    "nodelist": "engine.machines.nodelist",
    "nodes": "engine.machines.nodes",
    "notifications": "engine.messages.notifications",
    "notify": "engine.catalog.notify",
    "projects": "engine.catalog.projects",
    "queue": "engine.run.queue",
    "readiness": "engine.ops.readiness",
    "retention": "engine.ops.retention",
    "schema": "engine.store.schema",
    "scripts": "engine.catalog.scripts",
    "settings": "engine.store.settings",
    "signon": "engine.access.signon",
    "steps": "engine.catalog.steps",
    "tasks": "engine.run.tasks",
    "terminal": "engine.interactive.terminal",
    "third": "engine.run.third",
    "tickets": "engine.access.tickets",
    "tokens": "engine.access.tokens",
    "userlist": "engine.access.userlist",
    "users": "engine.access.users",
    "validate": "engine.store.validate",
    "variables": "engine.catalog.variables",
    "varlinks": "engine.catalog.varlinks",
    "versions": "engine.insight.versions",
}


def __getattr__(name):
    """Import the public module ``name`` from its room on first use."""
    if name not in ROOMS:
        raise AttributeError(f"module engine has no attribute {name!r}")
    module = importlib.import_module(ROOMS[name])
    globals()[name] = module
    return module
