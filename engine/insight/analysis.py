"""Task history analysis: DataFrames for notebooks and the ``/task/:pid/analysis`` routes.

The database does the counting (one GROUP BY per question, on indexed columns); pandas fills
the gaps and shapes the result. Times are the server-local times the tasks store, so a day or
an hour bucket is a local one. "The last 30 days" means since midnight 30 days ago, as OpenC3
counts them.
"""

import datetime
from typing import Any

import pandas as pd
from peewee import SQL, Case, fn

from engine.store import clock
from engine.store.db import is_sqlite
from engine.store.models import Task
from engine.store.validate import Field, one

WINDOW = 30  # days
# (label, from, to) in minutes; a runtime outside all of them (or none) counts as "30+".
RUNTIME_BUCKETS = (("0-1", 0, 1), ("1-3", 1, 3), ("3-5", 3, 5), ("5-10", 5, 10), ("10-30", 10, 30))
OVER = "30+"
LAST_COLUMNS = ["user", "runtime", "starttime", "finishtime", "status", "name"]
COUNT = Field(int, default=10, minimum=1, maximum=1000, allow_empty=False)
ALL = Field(bool, default=False)


def since(today: datetime.datetime | None = None, days: int = WINDOW) -> datetime.datetime:
    """Return midnight ``days`` days before ``today`` (local time)."""
    today = today or clock.now()
    return datetime.datetime.combine(
        (today - datetime.timedelta(days=days)).date(), datetime.time()
    )


def day_of(column: Any) -> Any:
    """SQL for the day of a datetime column, in the bound database's dialect (the value is
    ``YYYY-MM-DD`` text or a date)."""
    if is_sqlite():
        return fn.SUBSTR(column, 1, 10)  # SQLite stores datetimes as ISO text
    return column.cast("date")  # twice as fast as to_char over a month of every project


def hour_of(column: Any) -> Any:
    """SQL for the hour (0-23) of a datetime column (``HH`` text or a number)."""
    if is_sqlite():
        return fn.SUBSTR(column, 12, 2)
    return fn.date_part(SQL("'hour'"), column)


def _recent(projectid: int | None, today: datetime.datetime | None) -> Any:
    query = Task.starttime > since(today)
    return query if projectid is None else query & (Task.projectid == projectid)


def last(projectid: int, count: Any = 10) -> pd.DataFrame:
    """Return the project's ``count`` newest tasks: user, runtime (seconds), starttime,
    finishtime, status, name."""
    count = one("count", count, COUNT)
    rows = (
        Task.select(*[getattr(Task, c) for c in LAST_COLUMNS])
        .where(Task.projectid == projectid)
        .order_by(Task.id.desc())
        .limit(count)
        .tuples()
    )
    return pd.DataFrame(list(rows), columns=LAST_COLUMNS)


def by_date(
    projectid: int, all_projects: Any = False, today: datetime.datetime | None = None
) -> pd.DataFrame:
    """Return exactly 30 rows ending today: date (``YYYY-MM-DD``), total, success — tasks
    started that day in the project (or in every project with ``all_projects``)."""
    all_projects = one("all", all_projects, ALL)
    today = today or clock.now()
    day = day_of(Task.starttime)
    success = fn.SUM(Case(None, [(Task.status == "success", 1)], 0))
    rows = (
        Task.select(day, fn.COUNT(SQL("*")), success)
        .where(_recent(None if all_projects else projectid, today))
        .group_by(SQL("1"))
        .tuples()
    )
    days = [(today - datetime.timedelta(days=n)).strftime("%Y-%m-%d") for n in range(29, -1, -1)]
    frame = pd.DataFrame(list(rows), columns=["date", "total", "success"])
    frame["date"] = [str(d)[:10] for d in frame["date"]]
    frame = frame.set_index("date")
    frame = frame.reindex(days, fill_value=0).astype("int64")
    return frame.rename_axis("date").reset_index()


def by_hour(projectid: int, today: datetime.datetime | None = None) -> pd.DataFrame:
    """Return hour (``HH``) and count of the project's tasks started in the last 30 days,
    only hours that have tasks, in hour order."""
    rows = (
        Task.select(hour_of(Task.starttime), fn.COUNT(SQL("*")))
        .where(_recent(projectid, today))
        .group_by(SQL("1"))
        .tuples()
    )
    frame = pd.DataFrame(list(rows), columns=["hour", "count"])
    frame["hour"] = [f"{int(h):02d}" for h in frame["hour"]]
    frame["count"] = frame["count"].astype("int64")
    return frame.sort_values("hour", ignore_index=True)


def runtime(projectid: int, today: datetime.datetime | None = None) -> pd.DataFrame:
    """Return the runtime distribution of the project's tasks of the last 30 days: bucket
    (minutes: 0-1, 1-3, 3-5, 5-10, 10-30, 30+), count and percent; a task without a runtime
    counts as 30+."""
    whens = [
        ((Task.runtime >= low * 60) & (Task.runtime < high * 60), n)
        for n, (_, low, high) in enumerate(RUNTIME_BUCKETS)
    ]
    bucket = Case(None, whens, len(RUNTIME_BUCKETS))
    rows: Any = (  # tuples, which peewee's stubs do not tell
        Task.select(bucket, fn.COUNT(SQL("*")))
        .where(_recent(projectid, today))
        .group_by(SQL("1"))
        .tuples()
    )
    counts = [0] * (len(RUNTIME_BUCKETS) + 1)
    for n, count in rows:
        counts[int(n)] += int(count)
    labels = [label for label, _, _ in RUNTIME_BUCKETS] + [OVER]
    frame = pd.DataFrame({"bucket": labels, "count": counts})
    total = frame["count"].sum()
    frame["percent"] = 100.0 * frame["count"] / total if total else 0.0
    return frame


def statistics(today: datetime.datetime | None = None) -> pd.DataFrame:
    """Return task counts per project over the last 30 days, every project, most first:
    id (the project id), count, name (the project id, as OpenC3 names it)."""
    count = fn.COUNT(SQL("*"))
    rows = (
        Task.select(Task.projectid, count)
        .where(_recent(None, today))
        .group_by(Task.projectid)
        .order_by(count.desc(), Task.projectid)
        .tuples()
    )
    frame = pd.DataFrame(list(rows), columns=["id", "count"]).astype("int64")
    frame["name"] = frame["id"]
    return frame
