"""Small faults that happen every week: a database blip or outage during a run, a full disk on
the controller, a worker killed mid-step. No task fails for nothing, reports a success it did
not record, or runs a command twice."""

import contextlib
import os
import random
import signal
import socket
import subprocess
import threading
import time

import psycopg
import pytest

from tests.cluster import Cluster, cmd_step, running, unique
from tests.faultparts import PG_ADMIN, fill, small_disk

pytestmark = pytest.mark.slow
PID = 1


def launch(c, script, nodes, argv=""):
    jobuuid = c.ok(
        "POST",
        f"/jobs/{PID}",
        {"name": unique("job"), "permanent": 1, "data": [cmd_step(script, nodes, argv=argv)]},
    )["uuid"]
    return c.ok("POST", f"/task/{PID}/job", {"jobuuid": jobuuid, "variable": {}})["uuid"]


def settle(c, task, statuses=("success", "fail", "refuse"), timeout=60):
    """Wait for ``task`` to reach one of ``statuses``; an API that drops a connection while the
    disk is full or under load is asked again."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return c.wait(PID, task, statuses=statuses, timeout=max(1, deadline - time.monotonic()))
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def stored_status(url, task, statuses, timeout=90):
    """Wait until the database holds ``task`` in one of ``statuses``; return that status."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute("SELECT status FROM task WHERE uuid = %s", (task,)).fetchone()
            if row and row[0] in statuses:
                return row[0]
            time.sleep(0.2)
    raise TimeoutError(f"task {task} did not reach {statuses}")


def pids(pattern):
    out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise TimeoutError(what)


def end(pattern):
    """Kill what a failed assertion may have left running (by pid: ours only)."""
    for pid in pids(pattern):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def local_processes(pdd):
    """The processes of the run whose private data dir is ``pdd`` (pid and command line),
    but SSH master connections: they are shared by later runs and run nothing of ours."""
    needle = f"ANSIBLE_CONFIG={pdd}/ansible.cfg".encode() + b"\0"
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            with open(f"/proc/{entry.name}/environ", "rb") as f:
                if needle not in f.read():
                    continue
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
            if "[mux]" not in cmdline:
                found.append((int(entry.name), cmdline))
    return found


def terminate_backends(url):
    """Terminate every PostgreSQL backend of ``url``'s database (what an admin or a failover
    does to clients)."""
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchone()[0]


def test_a_database_blip_does_not_fail_a_running_task(ssh_nodes, pg_url, redis_server, tmp_path):
    out = tmp_path / "f"
    options = {"database_url": pg_url, "queue_url": redis_server.url, "lease": 10}
    with running(ssh_nodes, {PID: "blip"}, nodes=1, **options) as c:
        node = ssh_nodes.addresses[0]
        task = launch(c, f"sleep 14; echo x >> {out}", [node])
        c.wait(PID, task, statuses=("running",))
        time.sleep(4)
        assert terminate_backends(pg_url) > 0
        done = c.wait(PID, task, timeout=60)
        assert done["status"] == "success", (done, c.logs())
        assert out.read_text() == "x\n"
        step = c.ok("GET", f"/subtask/{PID}/{task}")["data"][0]
        assert step["status"] == "success"
        assert [(h["host"], h["status"]) for h in step["hosts"]] == [(node, "ok")]
        log = c.ok("GET", f"/slave/any/tasklog/{task}")["data"]
        assert log["done"] and "task success" in log["log"], log
        assert f"--- 1 host ok rc=0: {node}" in log["log"], log
        assert "Exception in thread" not in c.logs()


class CuttablePostgres:
    """A TCP forwarder to PostgreSQL that the test can cut: open connections are dropped and
    new ones closed at once, as when a network path or the server goes away."""

    def __init__(self, target=("127.0.0.1", 5432)):
        self.target = target
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.cut = threading.Event()
        self.open = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, pg_url):
        return pg_url.replace("127.0.0.1:5432", f"127.0.0.1:{self.port}")

    def _accept(self):
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if self.cut.is_set():
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut_off(self):
        self.cut.set()
        with self.lock:
            victims, self.open = self.open, []
        for s in victims:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def restore(self):
        self.cut.clear()

    def close(self):
        self.cut_off()
        self.server.close()


def test_a_worker_cut_off_from_the_database_for_a_lease_stops_its_steps(
    ssh_nodes, pg_url, redis_server, tmp_path
):
    lease = 6
    proxy = CuttablePostgres()
    c = Cluster(ssh_nodes, database_url=pg_url, queue_url=redis_server.url, lease=lease)
    needle = f"sleep {700 + random.randrange(200)}"
    out = tmp_path / "f"
    try:
        c.run("project", "add", str(PID), "cut")
        c.serve()
        c.worker("cut", workers=2, env={"OPSJOB_DATABASE_URL": proxy.url(pg_url)})
        node = ssh_nodes.ensure(1)[0]
        c.add_nodes(PID, [node])
        task = launch(c, f"{needle}; echo x >> {out}", [node])
        c.wait(PID, task, statuses=("running",))
        wait_for(lambda: pids(needle), 30, "the step's command did not start")
        proxy.cut_off()
        cut = time.monotonic()
        # Without the database for a lease, the worker stops the step on the node.
        wait_for(lambda: not pids(needle), lease + 20, "the step still runs on the node")
        assert time.monotonic() - cut >= lease - 1
        c.worker("healthy", workers=1)  # sweeps the task, whose lease ran out
        proxy.restore()
        done = c.wait(PID, task, timeout=60)
        assert done["status"] == "fail", done
        assert "worker lost" in done["reason"] or "unreachable" in done["reason"], done
        time.sleep(2)
        assert c.ok("GET", f"/task/{PID}/{task}")["data"]["status"] == "fail"
        assert not out.exists()
    finally:
        c.close()
        proxy.close()
        end(needle)


def test_a_full_disk_stops_the_step_everywhere_and_a_retry_never_runs_it_twice(
    ssh_nodes, pg_url, redis_server, tmp_path
):
    a, b = ssh_nodes.ensure(2)[:2]
    n = random.randrange(100, 999)
    short, long = f"sleep 3.{n}", f"sleep 20.{n}"
    outdir = tmp_path / "out"
    outdir.mkdir()
    # Each node writes $1 to a file named after itself once its sleep is over.
    script = (
        f'case "$SSH_CONNECTION" in *" {a} "*) {short};; *) {long};; esac\n'
        f'echo "$1" >> {outdir}/$(echo "$SSH_CONNECTION" | cut -d" " -f3)\n'
    )
    with small_disk("24m") as home:
        c = Cluster(ssh_nodes, database_url=pg_url, queue_url=redis_server.url, lease=10, home=home)
        try:
            c.run("project", "add", str(PID), "disk")
            c.serve()
            c.worker()
            c.add_nodes(PID, [a, b])
            task = launch(c, script, [a, b], argv="hello")
            wait_for(lambda: pids(short) and pids(long), 30, "the commands did not start")
            ballast = fill(home)
            filled = time.monotonic()
            # the API is not under test on a full disk: read the database itself
            assert stored_status(pg_url, task, ("waiting", "success", "fail")) == "waiting"
            # the step was stopped on every node before it was judged
            wait_for(lambda: not pids(long), 2, f"{long} still runs on {b}")
            os.remove(ballast)
            step = c.ok("GET", f"/subtask/{PID}/{task}")["data"][0]
            hosts = {h["host"]: h for h in step["hosts"]}
            assert step["status"] == "decision", step
            assert hosts[b]["status"] == "unknown", hosts
            assert hosts[a]["status"] in ("unknown", "ok"), hosts
            assert "No space left on device" in hosts[b]["stderr"], hosts
            log = c.ok("GET", f"/slave/any/tasklog/{task}")["data"]["log"]
            assert "outcome unknown (the step may have run) on: " in log, log
            assert b in log.split("outcome unknown (the step may have run) on: ")[1], log
            time.sleep(max(0, filled + 22 - time.monotonic()))  # b's sleep would be over
            assert not (outdir / b).exists(), c.logs()
            first = (outdir / a).read_text() if (outdir / a).exists() else ""
            assert first in ("", "hello\n")
            # a plain retry runs only hosts known to have failed: here, none
            control = {
                "taskuuid": task,
                "subtaskuuid": step["uuid"],
                "subtasktype": "cmd",
                "control": "running",
            }
            status, body = c.call("POST", f"/subtask/{PID}", control)
            assert status == 409 and "retry_unknown" in body["info"], body
            time.sleep(1)
            assert c.ok("GET", f"/task/{PID}/{task}")["data"]["status"] == "waiting"
            assert not (outdir / b).exists()
            # asked explicitly, the hosts that may have run run again
            c.ok("POST", f"/subtask/{PID}", {**control, "retry_unknown": 1})
            done = settle(c, task)
            assert done["status"] == "success", done
            assert (outdir / b).read_text() == "hello\n"
            if hosts[a]["status"] == "ok":
                assert (outdir / a).read_text() == "hello\n"
        finally:
            c.close()
            end(long)
            end(short)


def test_a_retry_after_a_broken_run_reruns_failed_hosts_and_keeps_unknown_ones_for_a_decision(
    ssh_nodes, pg_url, redis_server, tmp_path
):
    a, b = ssh_nodes.ensure(2)[:2]
    long = f"sleep 20.{random.randrange(100, 999)}"
    outdir, flag = tmp_path / "out", tmp_path / "fixed"
    outdir.mkdir()
    # a fails at once until the flag exists; b runs long, then writes its file
    script = (
        f'case "$SSH_CONNECTION" in *" {a} "*) [ -e {flag} ] || exit 3;; *) {long};; esac\n'
        f'echo "$1" >> {outdir}/$(echo "$SSH_CONNECTION" | cut -d" " -f3)\n'
    )
    with small_disk("24m") as home:
        c = Cluster(ssh_nodes, database_url=pg_url, queue_url=redis_server.url, lease=10, home=home)
        try:
            c.run("project", "add", str(PID), "mixed")
            c.serve()
            c.worker()
            c.add_nodes(PID, [a, b])
            task = launch(c, script, [a, b], argv="hello")
            wait_for(lambda: pids(long), 30, "the long command did not start")
            time.sleep(1.5)  # a's failure is recorded meanwhile
            ballast = fill(home)
            filled = time.monotonic()
            assert stored_status(pg_url, task, ("waiting", "success", "fail")) == "waiting"
            os.remove(ballast)
            step = c.ok("GET", f"/subtask/{PID}/{task}")["data"][0]
            assert {h["host"]: h["status"] for h in step["hosts"]} == {a: "failed", b: "unknown"}
            flag.touch()
            control = {
                "taskuuid": task,
                "subtaskuuid": step["uuid"],
                "subtasktype": "cmd",
                "control": "running",
            }
            # a plain retry runs a again, not b; b's outcome stays open for a decision
            c.ok("POST", f"/subtask/{PID}", control)
            settle(c, task, statuses=("waiting",))
            step = c.ok("GET", f"/subtask/{PID}/{task}")["data"][0]
            assert step["status"] == "decision", step
            assert {h["host"]: h["status"] for h in step["hosts"]} == {a: "ok", b: "unknown"}
            assert "not run again" in [h for h in step["hosts"] if h["host"] == b][0]["stderr"]
            assert (outdir / a).read_text() == "hello\n"
            assert not (outdir / b).exists()
            status, body = c.call("POST", f"/subtask/{PID}", control)
            assert status == 409, body
            time.sleep(max(0, filled + 22 - time.monotonic()))  # b's sleep would be over
            assert not (outdir / b).exists(), c.logs()
            c.ok("POST", f"/subtask/{PID}", {**control, "control": "ignore"})
            assert settle(c, task)["status"] == "success"
            assert not (outdir / b).exists()
        finally:
            c.close()
            end(long)


def test_the_sweep_of_a_killed_worker_ends_its_processes_here_and_on_the_nodes(
    ssh_nodes, pg_url, redis_server
):
    needle = f"sleep {900 + random.randrange(90)}"
    c = Cluster(ssh_nodes, database_url=pg_url, queue_url=redis_server.url, lease=4)
    try:
        c.run("project", "add", str(PID), "killed")
        c.serve()
        c.worker("doomed")
        node = ssh_nodes.ensure(1)[0]
        c.add_nodes(PID, [node])
        task = launch(c, needle, [node])
        wait_for(lambda: pids(needle), 30, "the step's command did not start")
        runs = os.path.join(c.home, "runs")
        pdds = [os.path.join(runs, n) for n in os.listdir(runs) if n.startswith("run-")]
        assert len(pdds) == 1
        assert local_processes(pdds[0]), "the run's Ansible processes carry its ansible.cfg"
        c.stop("doomed", sig=signal.SIGKILL)
        c.worker()
        done = c.wait(PID, task, timeout=30)
        assert done["status"] == "fail" and done["reason"].startswith("worker lost"), done
        # by the time the task is failed, nothing of its old run is left to overlap a redo
        assert local_processes(pdds[0]) == []
        wait_for(lambda: not pids(needle), 1, f"{needle} outlived the sweep on {node}")
    finally:
        c.close()
        end(needle)
