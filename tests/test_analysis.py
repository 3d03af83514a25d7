"""Task analysis: OpenC3's shapes and bucket rules, on SQLite and PostgreSQL."""

import datetime

import pandas as pd

from engine.insight import analysis
from engine.store.db import database
from engine.store.models import Task

PID = 1
NOW = datetime.datetime.now().replace(microsecond=0)
TODAY = datetime.datetime.combine(NOW.date(), datetime.time())


def day(n):
    return (TODAY - datetime.timedelta(days=n)).strftime("%Y-%m-%d")


def add_tasks(specs):
    """Insert tasks: (projectid, days ago, "HH:MM", status, runtime seconds or None)."""
    rows = []
    for i, (pid, ago, hhmm, status, runtime) in enumerate(specs):
        hour, minute = map(int, hhmm.split(":"))
        start = (
            TODAY - datetime.timedelta(days=ago) + datetime.timedelta(hours=hour, minutes=minute)
        )
        rows.append(
            {
                "projectid": pid,
                "uuid": f"t{i:011d}",
                "name": f"task {i}",
                "user": "ops",
                "status": status,
                "starttime": start if status != "init" else None,
                "finishtime": start + datetime.timedelta(seconds=runtime) if runtime else None,
                "runtime": runtime,
                "create_time": start,
            }
        )
    with database.connection_context():
        Task.insert_many(rows).execute()


SPECS = [
    (PID, 0, "09:10", "success", 30.0),  # 0-1 min
    (PID, 0, "09:40", "fail", 90.0),  # 1-3
    (PID, 1, "23:59", "success", 200.0),  # 3-5
    (PID, 5, "14:00", "success", 400.0),  # 5-10
    (PID, 10, "14:30", "success", 1000.0),  # 10-30
    (PID, 20, "00:00", "running", None),  # no runtime: 30+
    (PID, 29, "07:00", "fail", 3600.0),  # 30+
    (PID, 31, "09:00", "success", 10.0),  # older than the window
    (PID, 0, "00:00", "init", None),  # never started
    (2, 0, "10:00", "success", 5.0),
    (2, 0, "11:00", "success", 5.0),
    (2, 1, "11:00", "fail", 5.0),
    (2, 3, "11:00", "success", 5.0),
    (2, 40, "11:00", "success", 5.0),
    (3, 2, "08:00", "success", 5.0),
]


def test_empty_history_shapes(api):
    date = api.ok("GET", f"/task/{PID}/analysis/date")
    assert date == [[day(n), 0, 0] for n in range(29, -1, -1)]
    assert api.ok("GET", f"/task/{PID}/analysis/hour") == []
    assert api.ok("GET", f"/task/{PID}/analysis/runtime") == {
        "0-1": 0,
        "1-3": 0,
        "3-5": 0,
        "5-10": 0,
        "10-30": 0,
        "30+": 0,
    }
    assert api.ok("GET", f"/task/{PID}/analysis/statistics") == []
    assert api.ok("GET", f"/task/{PID}/analysis/last") == []


def test_buckets_and_windows(api):
    add_tasks(SPECS)
    date = api.ok("GET", f"/task/{PID}/analysis/date")
    assert len(date) == 30 and date[-1][0] == day(0) and date[0][0] == day(29)
    counted = {d: (t, s) for d, t, s in date if t}
    assert counted == {
        day(0): (2, 1),  # the init task has no start time
        day(1): (1, 1),
        day(5): (1, 1),
        day(10): (1, 1),
        day(20): (1, 0),
        day(29): (1, 0),
    }
    everywhere = {d: (t, s) for d, t, s in api.ok("GET", f"/task/{PID}/analysis/date?all=1") if t}
    assert everywhere[day(0)] == (4, 3) and everywhere[day(1)] == (2, 1)
    assert everywhere[day(2)] == (1, 1) and everywhere[day(3)] == (1, 1)

    assert api.ok("GET", f"/task/{PID}/analysis/hour") == [
        ["00", 1],
        ["07", 1],
        ["09", 2],
        ["14", 2],
        ["23", 1],
    ]
    assert api.ok("GET", f"/task/{PID}/analysis/runtime") == {
        "0-1": "14.29",
        "1-3": "14.29",
        "3-5": "14.29",
        "5-10": "14.29",
        "10-30": "14.29",
        "30+": "28.57",
    }
    assert api.ok("GET", "/task/2/analysis/statistics") == [
        {"id": PID, "count": 7, "name": PID},
        {"id": 2, "count": 4, "name": 2},
        {"id": 3, "count": 1, "name": 3},
    ]

    last = api.ok("GET", f"/task/{PID}/analysis/last", params={"count": 3})
    assert [r["name"] for r in last] == ["task 8", "task 7", "task 6"]  # newest first
    assert set(last[0]) == {"user", "runtime", "starttime", "finishtime", "status", "name"}
    assert last[0]["starttime"] is None and last[0]["runtime"] is None
    assert last[1]["runtime"] == "10.000"
    assert last[1]["starttime"] == f"{day(31)} 09:00:00"
    assert len(api.ok("GET", f"/task/{PID}/analysis/last")) == 9  # default 10, 9 exist


def test_engine_returns_frames_a_notebook_uses(api):
    add_tasks(SPECS)
    with database.connection_context():
        date = analysis.by_date(PID)
        runtime = analysis.runtime(PID)
        stats = analysis.statistics()
    assert isinstance(date, pd.DataFrame) and list(date.columns) == ["date", "total", "success"]
    assert date["total"].sum() == 7 and str(date["total"].dtype) == "int64"
    assert list(runtime["bucket"]) == ["0-1", "1-3", "3-5", "5-10", "10-30", "30+"]
    assert runtime.set_index("bucket")["count"].to_dict()["30+"] == 2
    assert abs(runtime["percent"].sum() - 100.0) < 1e-9
    assert list(stats["id"]) == [PID, 2, 3]


def test_runtime_boundaries_are_minutes(api):
    # exactly 60 s is "1-3"; just under is "0-1"; exactly 30 min is "30+"; negative is "30+"
    add_tasks(
        [(PID, 0, "10:00", "success", r) for r in (59.999, 60.0, 179.9, 1800.0, -1.0)]
        + [(PID, 0, "10:00", "success", 1799.0)]
    )
    shares = api.ok("GET", f"/task/{PID}/analysis/runtime")
    assert shares == {
        "0-1": "16.67",
        "1-3": "33.33",
        "3-5": "0.00",
        "5-10": "0.00",
        "10-30": "16.67",
        "30+": "33.33",
    }


def test_bad_parameters_are_400(api):
    for path, query, field in (
        ("last", {"count": "0"}, "count"),
        ("last", {"count": "ten"}, "count"),
        ("last", {"count": "100000"}, "count"),
        ("date", {"all": "maybe"}, "all"),
    ):
        r = api.get(f"/task/{PID}/analysis/{path}", params=query)
        assert r.status_code == 400 and r.json["info"].startswith(field), (path, r.json)
    assert api.ok("GET", f"/task/{PID}/analysis/last", params={"count": ""}) == []


def test_read_role_is_enough_and_required(api):
    add_tasks(SPECS)
    reader = api.user("reader", PID, "read")
    assert len(api.ok("GET", f"/task/{PID}/analysis/date?all=1", key=reader)) == 30
    outsider = api.user("outsider", 2, "delete")
    for path in ("last", "date?all=1", "hour", "runtime", "statistics"):
        assert api.get(f"/task/{PID}/analysis/{path}", key=outsider).status_code == 403
