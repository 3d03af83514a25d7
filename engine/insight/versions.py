"""Version variables (vv): what each node reports as ``NAME:[value]``, and job versions.

After every cmd step, each node's full output is scanned for ``NAME:[value]`` and every match
is stored as (project, node, NAME) -> value with its update time. A job run with the variables
``version`` and ``ip`` also records ``VERSION`` (or ``APP_<_appname_>_VERSION``) for each node
of ``ip``: ``Do_<version>`` when the run starts, ``<version>`` when it succeeds.

OpenC3 accepts lowercase values only; opsjob accepts uppercase letters too.
"""

import datetime
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd
from peewee import fn

from engine.errors import NotFound
from engine.machines import nodes
from engine.run import events
from engine.run.worker import task_values
from engine.store import clock
from engine.store.listing import DATE, as_dict, paged, time_range
from engine.store.models import Task, Vv, database
from engine.store.validate import ONE_LINE, Field, check, one

if TYPE_CHECKING:
    from engine.ansible.results import RunOutcome
    from engine.store.settings import Settings

# NAME has at least two characters; the value is a version-like word.
PATTERN = re.compile(r"([A-Za-z][A-Za-z0-9_]+):\[([A-Za-z0-9._-]+)\]")
MAX_NAME = 100
MAX_VALUE = 200
MAX_PER_NODE = 1000  # distinct names kept from one node's output of one step
VERSION_WINDOW = 365  # days the version analysis looks back
VERSION_NAME = r"VERSION|APP_.+_VERSION"
FIELDS = ("id", "node", "name", "value", "update_time")

NODE = Field(required=True, pattern=ONE_LINE, max_len=200, allow_empty=False)
FILTERS = {
    "node": Field(max_len=200),
    "name": Field(max_len=MAX_NAME),
    "time_start": Field(pattern=DATE),
    "time_end": Field(pattern=DATE),
}
LIST = {"appname": Field(pattern=r"[A-Za-z0-9_.-]*", max_len=MAX_NAME - 12)}


def scan(text: str | None) -> dict[str, str]:
    """Return ``{NAME: value}`` reported in ``text`` (the last report of a name wins)."""
    found: dict[str, str] = {}
    for name, value in PATTERN.findall(text or ""):
        if len(name) <= MAX_NAME and len(value) <= MAX_VALUE:
            found.pop(name, None)  # keep the order of the last reports
            found[name] = value
    return dict(list(found.items())[-MAX_PER_NODE:])


def record(
    projectid: int,
    node: str,
    values: Mapping[str, Any],
    stamp: datetime.datetime | None = None,
) -> int:
    """Upsert ``{name: value}`` of ``node`` in project ``projectid``."""
    if not values or not node:
        return 0
    stamp = stamp or clock.now()
    rows = [
        {
            "projectid": projectid,
            "node": node[:200],
            "name": name,
            "value": str(value)[:MAX_VALUE],
            "update_time": stamp,
        }
        for name, value in values.items()
    ]
    with database.atomic():
        for start in range(0, len(rows), 200):
            Vv.insert_many(rows[start : start + 200]).on_conflict(
                conflict_target=[Vv.projectid, Vv.node, Vv.name],
                preserve=[Vv.value, Vv.update_time],
            ).execute()
    return len(rows)


# -- listeners ----------------------------------------------------------------------------------


def capture(task: Any, step: Mapping[str, Any], outcome: "RunOutcome") -> None:
    """Store what each node of a finished cmd step reported (the ``step_finished`` listener)."""
    if step.get("kind") != "cmd":
        return
    stamp = clock.now()
    for node, result in outcome.hosts.items():
        record(task.projectid, node, scan(result.output or result.stdout), stamp)


def version_target(values: Mapping[str, Any]) -> tuple[str, str, list[str]] | None:
    """Return ``(vv name, version, [nodes])`` a job run books, or None without version+ip."""
    version, ip = values.get("version"), values.get("ip")
    if version in (None, "") or ip in (None, ""):
        return None
    appname = values.get("_appname_")
    name = f"APP_{appname}_VERSION" if appname not in (None, "") else "VERSION"
    return name[:MAX_NAME], str(version), nodes.split(str(ip))


def book_version(uuid: str, status: str) -> None:
    """Write a job's ``VERSION`` vv: ``Do_<v>`` when it starts, ``<v>`` when it succeeds."""
    if status not in ("running", "success"):
        return
    task = Task.get_or_none(Task.uuid == uuid)
    if task is None or task.jobtype != "jobs":
        return
    target = version_target(task_values(task))
    if target is None:
        return
    name, version, hosts = target
    value = f"Do_{version}" if status == "running" else version
    stamp = clock.now()
    for node in hosts:
        record(task.projectid, node, {name: value}, stamp)


def register(huey: Any, settings: "Settings") -> None:
    """Listen to step and task events (called by ``engine.boot.start``)."""
    events.subscribe("step_finished", capture)
    events.subscribe("task_changed", book_version)


# -- queries ------------------------------------------------------------------------------------


def _filtered(projectid: int, params: dict[str, Any]) -> Any:
    values = check(params, FILTERS)
    query = Vv.select().where(Vv.projectid == projectid)
    for column in ("node", "name"):
        if values[column]:
            query = query.where(getattr(Vv, column) == values[column])
    return time_range(query, Vv.update_time, "time_start", "time_end", values)


def list_values(projectid: int, params: dict[str, Any]) -> list[dict[str, Any]]:
    """List the project's version variables, newest first (filters: node, name exact,
    time_start/time_end on the update time; paging)."""
    query = _filtered(projectid, params).order_by(Vv.update_time.desc(), Vv.id.desc())
    return [as_dict(row, FIELDS) for row in paged(query, params)]


def table(projectid: int, params: dict[str, Any]) -> pd.DataFrame:
    """Return the version table: one row per node (index ``NODE``), one column per name in
    name order, None where a node has no value (same filters as :func:`list_values`)."""
    query = _filtered(projectid, params).select(Vv.node, Vv.name, Vv.value)
    frame = pd.DataFrame(list(query.tuples()), columns=["node", "name", "value"], dtype=object)
    wide = frame.pivot(index="node", columns="name", values="value")
    wide = wide.reindex(columns=sorted(wide.columns)).sort_index().astype(object)
    wide.index.name, wide.columns.name = "NODE", None
    return wide.where(wide.notna(), None)


def version_share(projectid: int, today: datetime.datetime | None = None) -> pd.DataFrame:
    """Return, for ``VERSION`` and each ``APP_*_VERSION`` updated in the last 365 days, the
    share of nodes on each value: columns name, value, count, percent (name order)."""
    today = today or clock.now()
    since = datetime.datetime.combine(
        (today - datetime.timedelta(days=VERSION_WINDOW)).date(), datetime.time()
    )
    rows = (
        Vv.select(Vv.name, Vv.value, fn.COUNT(Vv.id))
        .where(
            Vv.projectid == projectid,
            (Vv.name == "VERSION") | (fn.SUBSTR(Vv.name, 1, 4) == "APP_"),
            Vv.update_time > since,
        )
        .group_by(Vv.name, Vv.value)
        .tuples()
    )
    frame = pd.DataFrame(list(rows), columns=["name", "value", "count"])
    frame = frame[frame["name"].str.fullmatch(VERSION_NAME)]
    frame["count"] = frame["count"].astype("int64")
    totals = frame.groupby("name")["count"].transform("sum")
    frame["percent"] = 100.0 * frame["count"] / totals
    return frame.sort_values(["name", "value"], ignore_index=True)


def distinct_values(projectid: int, params: dict[str, Any]) -> list[str]:
    """Return the distinct values of the project, newest first, without ``Do_*`` markers;
    ``appname`` narrows to ``APP_<appname>_VERSION``."""
    values = check(params, LIST)
    # its .tuples() yield tuples, which peewee's stubs do not tell
    query: Any = Vv.select(Vv.value).where(
        Vv.projectid == projectid, fn.SUBSTR(Vv.value, 1, 3) != "Do_"
    )
    if values["appname"]:
        query = query.where(Vv.name == f"APP_{values['appname']}_VERSION")
    newest = fn.MAX(Vv.update_time)
    return [value for (value,) in query.group_by(Vv.value).order_by(newest.desc()).tuples()]


def delete_node(projectid: int, node: str) -> int:
    """Delete every version variable of ``node`` in the project."""
    node = one("node", node, NODE)
    deleted = Vv.delete().where(Vv.projectid == projectid, Vv.node == node).execute()
    if not deleted:
        raise NotFound(f"node: {node} has no version variables")
    return deleted
