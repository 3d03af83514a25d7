"""Requests per second on the API's read routes against a bare Falcon route, in the same run
and on the same server model as ``opsjob serve``: gunicorn, 2 processes of
``api.server.asgi.Worker``, the WSGI app on a2wsgi's threads. Only the app differs.

    python -m bench.api [--seconds 5] [--rounds 5] [--connections 16] [--backends sqlite,postgres]

Each route prints its requests/s and their median ratio to the bare route's, and the server's
CPU-milliseconds per request (gunicorn's processes, and PostgreSQL's for that backend) with
the bare route's CPU per request divided by the route's ("CPU ratio").

Needs Debian's ``wrk``. For PostgreSQL, ``--pg-admin`` names a database the bench may use to
create (and at the end drop) a throwaway one.
"""

import argparse
import contextlib
import json
import os
import statistics
import tempfile
import uuid

import falcon
from falcon import testing

from api.server.app import create_app
from api.server.asgi import wrap_wsgi
from engine.access import auth
from engine.catalog import projects
from engine.store.db import database
from engine.store.models import Task
from engine.store.settings import Settings
from engine.tasklog.logs import LogWriter

from .proc import cpu, tree_cpu
from .servers import served, wrk

ROWS = 100  # jobs and tasks, so that each list answers a full default page
LOG_LINES = 300
WORKER = ["-k", "api.server.asgi.Worker"]
BARE = "bench.api:bare_asgi_app()"
OPSJOB = "api.server.asgi:get_asgi_app()"


class Bare:
    """A route that answers a small fixed envelope and touches nothing else."""

    def on_get(self, req, resp):
        resp.media = {"stat": True, "data": {"uuid": "abcdefghijkl", "status": "success"}}


def bare_asgi_app():
    """Return a one-route Falcon app served as ``opsjob serve`` serves the API."""
    app = falcon.App()
    app.add_route("/bare", Bare())
    return wrap_wsgi(app)


def _step(n):
    return {
        "plugin_type": "cmd",
        "name": f"step {n}",
        "user": "root",
        "node_type": "builtin",
        "node_cont": "10.0.0.1",
        "scripts_type": "shell",
        "scripts_cont": "echo $version\n",
        "scripts_argv": "$version",
    }


def prepare(home, database_url):
    """Fill a fresh database: an admin key, ROWS jobs, ROWS finished tasks (with variables),
    and a log of LOG_LINES lines on the newest task. Return ``(key, task uuid)``."""
    settings = Settings(home=home, database_url=database_url, log_level="WARNING")
    client = testing.TestClient(create_app(settings))
    with database.connection_context():
        key = auth.add_user("bench", admin=True)
        projects.ensure_project(1, "bench")
    headers = {"Authorization": f"Bearer {key}"}

    def post(path, body):
        r = client.simulate_post(path, json=body, headers=headers)
        assert r.status_code == 200 and r.json["stat"], (path, r.text)
        return r.json

    post("/nodelist/1", {"name": "10.0.0.1"})
    for n in range(ROWS):
        post("/jobs/1", {"name": f"job {n}", "permanent": 1, "data": [_step(1), _step(2)]})
    for n in range(ROWS):
        body = post(
            "/task/1/plugin_cmd",
            {
                **{k: v for k, v in _step(1).items() if k != "plugin_type"},
                "name": f"task {n}",
                "variable": {"version": f"1.{n}", "env": "prod"},
            },
        )
    taskuuid = body.get("uuid") or body["data"]["uuid"]
    with database.connection_context():
        Task.update(status="success", starttimems=1.0, finishtimems=2.5, runtime=1.5).execute()
        writer = LogWriter(taskuuid)
        for n in range(LOG_LINES):
            writer.line(f"2026-01-01 00:00:{n % 60:02d} [10.0.0.1] ok: line {n} of the step")
        writer.finish()
    database.close()
    return key, taskuuid


@contextlib.contextmanager
def postgres(admin_url):
    """Yield the URL of a throwaway PostgreSQL database, dropped afterwards."""
    import psycopg

    name = f"opsjob_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _backends(database_url):
    """The pids of the PostgreSQL server processes serving ``database_url`` (none for SQLite):
    their CPU is the app's too."""
    if not database_url.startswith("postgres"):
        return []
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        ).fetchall()
    return [pid for (pid,) in rows]


def _turn(url, key, args, server_pid, database_url):
    """One wrk run on ``url``: ``(requests/s, server CPU ms per request)``; the server is the
    gunicorn tree and the database's server processes."""

    def used():
        return tree_cpu(server_pid) + sum(cpu(p, reaped=False) for p in _backends(database_url))

    before = used()
    rate, count = wrk(url, key, args.seconds, args.connections, counted=True)
    return rate, (used() - before) * 1000 / count


def run(backend, database_url, args):
    home = tempfile.mkdtemp(prefix="opsjob-bench-")
    key, taskuuid = prepare(home, database_url)
    env = {**os.environ, "OPSJOB_HOME": home, "OPSJOB_LOG_LEVEL": "WARNING"}
    env["OPSJOB_DATABASE_URL"] = database_url
    routes = {
        "GET /task/1/:uuid": f"/task/1/{taskuuid}",
        f"GET /slave/any/tasklog/:uuid ({LOG_LINES} lines)": f"/slave/any/tasklog/{taskuuid}",
        f"GET /jobs/1 ({ROWS} rows)": "/jobs/1",
        f"GET /task/1 ({ROWS} rows)": "/task/1",
    }
    # Both servers run side by side, and each route is measured in short turns with the bare
    # route: on a shared machine the load moves, so each ratio compares runs seconds apart,
    # and the median of the turns is reported. The server CPU per request is steadier than the
    # rate under a moving load, and the CPU ratio tells what the rate would be on a quiet one.
    results = []
    with (
        served([*WORKER, BARE], env, probe="/bare") as (bare_url, bare_pid),
        served([*WORKER, OPSJOB], env) as (url, pid),
    ):
        for name, path in routes.items():
            turns = []
            for _ in range(args.rounds):
                bare = _turn(f"{bare_url}/bare", key, args, bare_pid, "")
                turns.append((_turn(url + path, key, args, pid, database_url), bare))
            results.append(
                {
                    "backend": backend,
                    "route": name,
                    "requests/s": round(statistics.median(r for (r, _), _ in turns), 1),
                    "bare requests/s": round(statistics.median(b for _, (b, _) in turns), 1),
                    "ratio": round(statistics.median(r / b for (r, _), (b, _) in turns), 3),
                    "server CPU ms/request": round(statistics.median(c for (_, c), _ in turns), 3),
                    "bare CPU ms/request": round(statistics.median(c for _, (_, c) in turns), 3),
                    "CPU ratio": round(statistics.median(b / c for (_, c), (_, b) in turns), 3),
                }
            )
    return results


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=int, default=5, help="length of one wrk run")
    p.add_argument("--rounds", type=int, default=5, help="turns of bare route and route")
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--backends", default="sqlite,postgres")
    p.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/test")
    args = p.parse_args()
    results = []
    for backend in args.backends.split(","):
        if backend == "sqlite":
            url = f"sqlite:///{tempfile.mkdtemp(prefix='opsjob-bench-db-')}/opsjob.db"
            results += run(backend, url, args)
        elif backend == "postgres":
            with postgres(args.pg_admin) as url:
                results += run(backend, url, args)
        else:
            raise SystemExit(f"--backends: unknown backend {backend}")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
