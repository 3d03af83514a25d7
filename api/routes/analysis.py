"""/task/:projectid/analysis: task history in OpenC3's shapes.

The engine answers with DataFrames (what a notebook uses); these resources only reshape them.
"""

from typing import Any

import falcon
import pandas as pd

from api.http.access import requires
from api.http.declare import takes
from api.http.envelope import ok
from api.http.params import params
from engine.insight import analysis

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def _time(value: Any) -> str | None:
    return None if pd.isna(value) else value.strftime(TIME_FORMAT)


def _seconds(value: Any) -> str | None:
    return None if pd.isna(value) else f"{value:.3f}"


class Last:
    """The newest tasks."""

    @requires("read")
    @takes({"count": analysis.COUNT})
    def on_get(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """List the project's newest tasks (count, default 10): user, runtime, starttime,
        finishtime, status, name."""
        frame = analysis.last(projectid, count=params(req).get("count"))
        ok(
            resp,
            [
                {
                    "user": r.user,
                    "runtime": _seconds(r.runtime),
                    "starttime": _time(r.starttime),
                    "finishtime": _time(r.finishtime),
                    "status": r.status,
                    "name": r.name,
                }
                for r in frame.astype(object).itertuples(index=False)
            ],
        )


class ByDate:
    """Tasks per day."""

    @requires("read")
    @takes({"all": analysis.ALL})
    def on_get(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """Count tasks per day for the 30 days ending today: [[date, total, success]];
        all=1 counts every project."""
        frame = analysis.by_date(projectid, all_projects=params(req).get("all"))
        ok(resp, [[d, int(t), int(s)] for d, t, s in frame.itertuples(index=False)])


class ByHour:
    """Tasks per hour of the day."""

    @requires("read")
    @takes()
    def on_get(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """Count the project's tasks of the last 30 days per hour of the day: [[HH, count]]."""
        frame = analysis.by_hour(projectid)
        ok(resp, [[h, int(c)] for h, c in frame.itertuples(index=False)])


class Runtime:
    """How long tasks run."""

    @requires("read")
    @takes()
    def on_get(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """Share of the project's tasks of the last 30 days per runtime bucket in minutes
        (0-1, 1-3, 3-5, 5-10, 10-30, 30+), as percentages with 2 decimals."""
        frame = analysis.runtime(projectid)
        total = int(frame["count"].sum())
        ok(
            resp,
            {
                b: (f"{p:.2f}" if total else 0)
                for b, p in zip(frame["bucket"], frame["percent"], strict=True)
            },
        )


class Statistics:
    """Tasks per project."""

    @requires("read")
    @takes()
    def on_get(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """Count tasks of the last 30 days per project, every project, most first:
        [{id, count, name}]."""
        frame = analysis.statistics()
        ok(
            resp,
            [
                {"id": int(i), "count": int(c), "name": int(n)}
                for i, c, n in frame.itertuples(index=False)
            ],
        )


ROUTES = [
    ("/task/{projectid:int}/analysis/last", Last()),
    ("/task/{projectid:int}/analysis/date", ByDate()),
    ("/task/{projectid:int}/analysis/hour", ByHour()),
    ("/task/{projectid:int}/analysis/runtime", Runtime()),
    ("/task/{projectid:int}/analysis/statistics", Statistics()),
]
