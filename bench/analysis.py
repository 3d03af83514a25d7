"""Analysis benchmark: the /task/:pid/analysis routes over 1,000,000 tasks.

Fills a database with tasks across 50 projects and 90 days (one bulk insert: executemany on
SQLite, COPY on PostgreSQL, indexes rebuilt afterwards), then times, for each route, the bare
SQL aggregation that answers its question, the engine function behind the route (the
DataFrame a notebook gets), and the whole HTTP route through the in-process API; it prints
the ratio function / bare SQL. Targets: every route under 1 s, every ratio at most 3.
Run from the repository root:

    .venv/bin/python -m bench.analysis                      # SQLite file in a temp directory
    .venv/bin/python -m bench.analysis --database-url postgresql://postgres@127.0.0.1:5432/b

A PostgreSQL database must be empty (or hold a previous run's tasks, which are reused).
"""

import argparse
import datetime
import secrets
import statistics
import tempfile
import time

import numpy as np
from falcon import testing

from api.server.app import create_app
from engine.access import auth
from engine.catalog import projects
from engine.insight import analysis
from engine.store.db import database, is_sqlite
from engine.store.models import Task
from engine.store.settings import Settings

PROJECTS = 50
DAYS = 90
TARGET_SECONDS = 1.0
TARGET_RATIO = 3.0


def task_rows(count, seed=7):
    """Yield task rows (a dict of columns -> arrays) spread over projects, days and hours."""
    rng = np.random.default_rng(seed)
    now = datetime.datetime.now().replace(microsecond=0)
    start = np.datetime64(now - datetime.timedelta(days=DAYS), "s")
    offsets = np.sort(rng.integers(0, DAYS * 86400, size=count))  # ids grow with time
    starts = (start + offsets.astype("timedelta64[s]")).astype("datetime64[s]")
    runtime = np.round(rng.lognormal(mean=4.0, sigma=1.6, size=count), 3)
    status = rng.choice(
        np.array(["success", "fail", "running", "waiting"]), size=count, p=[0.8, 0.15, 0.03, 0.02]
    )
    finished = np.isin(status, ["success", "fail"])
    starttime = np.datetime_as_string(starts, unit="s").astype(object)
    finishtime = np.datetime_as_string(
        starts + np.nan_to_num(runtime).astype("timedelta64[s]"), unit="s"
    ).astype(object)
    return {
        "projectid": rng.integers(1, PROJECTS + 1, size=count),
        "uuid": [f"b{i:011d}" for i in range(count)],
        "status": status,
        "starttime": [s.replace("T", " ") for s in starttime],
        "finishtime": [
            f.replace("T", " ") if ok else None for f, ok in zip(finishtime, finished, strict=True)
        ],
        "runtime": [float(r) if ok else None for r, ok in zip(runtime, finished, strict=True)],
    }


def fill(count):
    """Insert ``count`` tasks in one transaction; every other column gets its default."""
    data = task_rows(count)
    columns = [f for f in Task._meta.sorted_fields if f.name != "id"]
    constant = {}
    for f in columns:
        if f.name in data:
            continue
        default = f.default() if callable(f.default) else f.default
        constant[f.name] = f.db_value(default) if default is not None else None
    constant["name"], constant["user"], constant["calltype"] = "bench job", "bench", "api"
    constant["create_time"] = None  # replaced by the start time below
    names = [f.column_name for f in columns]

    data["projectid"] = data["projectid"].tolist()
    data["status"] = data["status"].tolist()
    data["create_time"] = data["starttime"]
    template = [constant.get(n) for n in names]
    slots = [(names.index(name), values) for name, values in data.items()]

    def rows():
        for i in range(count):
            row = list(template)
            for slot, values in slots:
                row[slot] = values[i]
            yield row

    t0 = time.monotonic()
    conn = database.connection()
    quoted = ", ".join(f'"{n}"' for n in names)
    with database.atomic():
        indexes = drop_indexes()  # one sorted build per index beats a million inserts each
        if is_sqlite():
            marks = ", ".join("?" * len(names))
            conn.executemany(f"INSERT INTO task ({quoted}) VALUES ({marks})", rows())
        else:
            with conn.cursor() as cur, cur.copy(f"COPY task ({quoted}) FROM STDIN") as copy:
                for row in rows():
                    copy.write_row(row)
        for statement in indexes:
            database.execute_sql(statement)
    database.execute_sql("ANALYZE task" if not is_sqlite() else "ANALYZE")
    return time.monotonic() - t0


def drop_indexes():
    """Drop the task table's secondary indexes; return the statements that rebuild them."""
    if is_sqlite():
        found = database.execute_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'task' "
            "AND sql IS NOT NULL"
        ).fetchall()
    else:
        found = database.execute_sql(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = 'task' "
            "AND i.schemaname = current_schema() AND i.indexname NOT IN "
            "(SELECT conname FROM pg_constraint WHERE conrelid = 'task'::regclass)"
        ).fetchall()
    for name, _ in found:
        database.execute_sql(f'DROP INDEX "{name}"')
    return [statement for _, statement in found]


def bare_queries(since):
    """The bare SQL for each route, in this database's dialect, with its parameters."""
    day, hour = (
        ("substr(starttime, 1, 10)", "substr(starttime, 12, 2)")
        if is_sqlite()
        else ("CAST(starttime AS date)", "date_part('hour', starttime)")
    )
    p = "?" if is_sqlite() else "%s"
    success = "SUM(CASE WHEN status = 'success' THEN 1 ELSE 0 END)"
    bucket = (
        "CASE WHEN runtime >= 0 AND runtime < 60 THEN 0 WHEN runtime >= 60 AND runtime < 180 "
        "THEN 1 WHEN runtime >= 180 AND runtime < 300 THEN 2 WHEN runtime >= 300 AND "
        "runtime < 600 THEN 3 WHEN runtime >= 600 AND runtime < 1800 THEN 4 ELSE 5 END"
    )
    return {
        "last": (
            f'SELECT "user", runtime, starttime, finishtime, status, name FROM task '
            f"WHERE projectid = {p} ORDER BY id DESC LIMIT 10",
            [7],
        ),
        "date": (
            f"SELECT {day}, COUNT(*), {success} FROM task WHERE projectid = {p} "
            f"AND starttime > {p} GROUP BY 1",
            [7, since],
        ),
        "date?all=1": (
            f"SELECT {day}, COUNT(*), {success} FROM task WHERE starttime > {p} GROUP BY 1",
            [since],
        ),
        "hour": (
            f"SELECT {hour}, COUNT(*) FROM task WHERE projectid = {p} AND starttime > {p} "
            "GROUP BY 1",
            [7, since],
        ),
        "runtime": (
            f"SELECT {bucket}, COUNT(*) FROM task WHERE projectid = {p} AND starttime > {p} "
            "GROUP BY 1",
            [7, since],
        ),
        "statistics": (
            f"SELECT projectid, COUNT(*) FROM task WHERE starttime > {p} "
            "GROUP BY projectid ORDER BY COUNT(*) DESC",
            [since],
        ),
    }


def timed(fn, repeat):
    """Return the median seconds of ``repeat`` calls of ``fn`` after one warm-up call."""
    fn()
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--database-url", default="", help="default: a SQLite file in a temp dir")
    p.add_argument("--tasks", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args(argv)
    home = tempfile.mkdtemp(prefix="opsjob-bench-analysis-")
    app = create_app(Settings(home=home, database_url=args.database_url, log_level="WARNING"))
    client = testing.TestClient(app)
    with database.connection_context():
        for pid in range(1, PROJECTS + 1):
            projects.ensure_project(pid, f"bench {pid}")
        key = auth.add_user(f"bench{secrets.token_hex(4)}", admin=True)
        existing = Task.select().count()
        if existing == 0:
            print(f"filling {args.tasks} tasks ...", flush=True)
            print(f"inserted in {fill(args.tasks):.1f} s", flush=True)
        elif existing != args.tasks:
            raise SystemExit(f"the database holds {existing} other tasks; use an empty one")
    backend = "SQLite" if is_sqlite() else "PostgreSQL"
    print(f"{backend}, {args.tasks} tasks, {PROJECTS} projects, {DAYS} days; project 7 queried")
    headers = {"Authorization": f"Bearer {key}"}
    since = analysis.since()
    if backend == "SQLite":
        since = since.strftime("%Y-%m-%d %H:%M:%S")  # stored as ISO text
    frames = {
        "last": lambda: analysis.last(7),
        "date": lambda: analysis.by_date(7),
        "date?all=1": lambda: analysis.by_date(7, all_projects=True),
        "hour": lambda: analysis.by_hour(7),
        "runtime": lambda: analysis.runtime(7),
        "statistics": lambda: analysis.statistics(),
    }
    print(
        f"{'route':<12} {'rows':>6} {'bare SQL ms':>12} {'function ms':>12} {'ratio':>6} "
        f"{'HTTP route ms':>14}  verdict"
    )
    over = []
    for name, (sql, params) in bare_queries(since).items():
        with database.connection_context():
            rows = len(database.execute_sql(sql, params).fetchall())
            bare = timed(lambda s=sql, a=params: database.execute_sql(s, a).fetchall(), args.repeat)
            function = timed(frames[name], args.repeat)

        def route(path=f"/task/7/analysis/{name}"):
            r = client.simulate_get(path, headers=headers)
            assert r.status_code == 200, r.text

        seconds = timed(route, args.repeat)
        ratio = function / bare if bare else float("inf")
        ok = seconds < TARGET_SECONDS and ratio <= TARGET_RATIO
        if not ok:
            over.append(f"{name} (bare SQL {bare * 1000:.1f} ms)")
        print(
            f"{name:<12} {rows:>6} {bare * 1000:>12.1f} {function * 1000:>12.1f} {ratio:>6.2f} "
            f"{seconds * 1000:>14.1f}  {'ok' if ok else 'over target'}",
            flush=True,
        )
    if over:
        print("over target: " + ", ".join(over))


if __name__ == "__main__":
    main()
