"""Chaos: while 20 tasks run, a worker is SIGKILLed, Redis restarts and PostgreSQL terminates
every connection. Every task still ends: none stuck, none lost, no side effect twice."""

import contextlib
import os
import random
import signal
import subprocess
import time

import psycopg
import pytest

from tests.cluster import TERMINAL, Cluster
from tests.faultparts import PG_ADMIN

pytestmark = pytest.mark.slow
PID = 1
TASKS = 20
LEASE = 5


def terminate_backends(url):
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchone()[0]


def tasks_of(c):
    """Every task of the project, by uuid (a failed read during the chaos counts as none)."""
    try:
        status, body = c.call("GET", f"/task/{PID}?pagesize=1000")
    except OSError:  # a connection dropped while PostgreSQL was cut
        return {}
    return {t["uuid"]: t for t in body["data"]} if status == 200 else {}


def launch(c, node, script):
    body = {
        "node_type": "builtin",
        "node_cont": node,
        "scripts_type": "shell",
        "scripts_cont": script,
        "scripts_argv": "",
    }
    for _ in range(50):  # a launch during an outage is stored and answered 503: never twice
        status, reply = c.call("POST", f"/task/{PID}/plugin_cmd", body)
        if status == 200:
            return reply["data"]["uuid"]
        time.sleep(0.2)
    raise AssertionError(f"launch failed: {status} {reply}")


def test_twenty_tasks_survive_a_killed_worker_a_redis_restart_and_a_database_blip(
    ssh_nodes, pg_url, redis_server, tmp_path
):
    started = time.monotonic()
    nodes = ssh_nodes.ensure(3)[:3]
    effects = tmp_path / "effects"
    tag = f"chaos{random.randrange(10**6)}"
    c = Cluster(ssh_nodes, database_url=pg_url, queue_url=redis_server.url, lease=LEASE)
    try:
        c.run("project", "add", str(PID), "chaos")
        c.serve()
        c.add_nodes(PID, nodes)
        c.worker("w1", workers=3, env={"OPSJOB_WORKER_NAME": "w1"})
        c.worker("w2", workers=3, env={"OPSJOB_WORKER_NAME": "w2"})
        marks = {}
        for i in range(TASKS):
            mark = f"{tag}-{i}"
            # each task appends its own mark once: a line seen twice is a command run twice
            # each sleeps longer than a lease: a worker that lost its heartbeat is noticed
            script = f"sleep {LEASE + 1 + i % 3}.{i:02d}; echo {mark} >> {effects}"
            marks[launch(c, nodes[i % len(nodes)], script)] = mark

        def running_on(worker):
            return [
                t for t in tasks_of(c).values() if t["status"] == "running" and t["slave"] == worker
            ]

        deadline = time.monotonic() + 60
        while not running_on("w1") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert running_on("w1"), "worker w1 never ran a task"
        c.stop("w1", sig=signal.SIGKILL)
        c.worker("w3", workers=3, env={"OPSJOB_WORKER_NAME": "w3"})
        redis_server.stop()
        time.sleep(1)
        redis_server.start()
        deadline = time.monotonic() + 60
        while not (running_on("w2") or running_on("w3")) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert terminate_backends(pg_url) > 0  # while the live workers run tasks
        time.sleep(3)
        terminate_backends(pg_url)

        deadline = time.monotonic() + 150
        final = {}
        while time.monotonic() < deadline:
            final = tasks_of(c) or final
            if len(final) == TASKS and all(t["status"] in TERMINAL for t in final.values()):
                break
            time.sleep(0.5)
        stuck = {u: t["status"] for u, t in final.items() if t["status"] not in TERMINAL}
        assert len(final) == TASKS and not stuck, (stuck, c.logs())

        lines = effects.read_text().split() if effects.exists() else []
        twice = sorted({line for line in lines if lines.count(line) > 1})
        assert twice == [], f"side effects ran twice: {twice}"
        lost = []
        for uuid, task in final.items():
            if task["status"] == "success":
                hosts = c.ok("GET", f"/task/{PID}/{uuid}/hosts")["data"]
                if marks[uuid] not in lines or [h["status"] for h in hosts] != ["ok"]:
                    lost.append((uuid, task["status"], hosts))
            elif not (task["slave"] == "w1" and (task["reason"] or "").startswith("worker lost")):
                lost.append((uuid, task["status"], task["reason"]))  # failed for nothing
        assert lost == [], (lost, c.logs())
        # only the tasks of the killed worker may fail, and at least one did run there
        assert any(t["slave"] == "w1" for t in final.values())
        assert time.monotonic() - started < 180
    finally:
        c.close()
        leftovers = subprocess.run(["pgrep", "-f", tag], capture_output=True, text=True)
        for pid in leftovers.stdout.split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
