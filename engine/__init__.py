"""opsjob's engine: everything but HTTP. The API and notebooks use only the modules named here.

Catalog (definitions): ``jobs``, ``variables``, ``scripts``, ``crontabs``, ``nodegroups``,
``nodelist``, ``userlist``, ``tokens``, ``notify``, ``environment``, ``projects``.
Runs: ``tasks`` (launch and read), ``control`` (decide, pause, kill, logs), ``queue``.
Plumbing: ``settings``, ``db``, ``schema``, ``auth``, ``errors``.
"""

__all__ = [
    "auth",
    "control",
    "crontabs",
    "db",
    "environment",
    "errors",
    "jobs",
    "nodegroups",
    "nodelist",
    "notify",
    "projects",
    "queue",
    "schema",
    "scripts",
    "settings",
    "tasks",
    "tokens",
    "userlist",
    "variables",
]
