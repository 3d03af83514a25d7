"""opsjob's engine: everything but HTTP. The API and notebooks use only the modules named here.

Catalog (definitions): ``jobs``, ``variables``, ``scripts``, ``crontabs``, ``nodegroups``,
``nodelist``, ``userlist``, ``tokens``, ``notify``, ``environment``, ``projects``, ``varlinks``
(variable token links and the variable routes by job id).
Runs: ``tasks`` (launch and read), ``control`` (decide, pause, kill, logs), ``queue``,
``lifecycle`` (claim, park, wake, finish, the sweep of lost tasks),
``notifications`` (delivery attempts of task notifications).
Files and consoles: ``fileserver`` (the file store), ``console`` (the command console),
``terminal`` (its single-machine shell), ``third`` (the interface for external orchestrators).
Live logs: ``livelog`` (follow a task's or a step's log), ``tickets`` (single-use websocket
tickets).
History: ``analysis`` (task statistics as DataFrames), ``versions`` (version variables),
``retention`` (the prune of old history).
Machines: ``nodeinfo`` (a project's machines), ``credentials`` (how nodes are logged into).
Operating: ``audit`` (the audit trail), ``metrics`` (Prometheus metrics), ``logformat``
(text or JSON log lines with request id and task uuid).
Outages: ``faults`` (a full disk or an unreachable database or queue, named as errors),
``readiness`` (whether the database and the queue answer).
Plumbing: ``settings``, ``db``, ``schema``, ``auth``, ``users`` (keys over their lifetime),
``errors``, ``doctor`` (installation checks).
"""

__all__ = [
    "analysis",
    "audit",
    "auth",
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
    "livelog",
    "logformat",
    "metrics",
    "nodegroups",
    "nodeinfo",
    "nodelist",
    "notifications",
    "notify",
    "projects",
    "queue",
    "readiness",
    "retention",
    "schema",
    "scripts",
    "settings",
    "tasks",
    "terminal",
    "third",
    "tickets",
    "tokens",
    "userlist",
    "users",
    "variables",
    "varlinks",
    "versions",
]
