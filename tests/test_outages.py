"""Outages give clear answers and stay cheap: a queue that goes away, a database that cannot be
reached, a full disk, and task messages that were lost."""

import datetime
import os
import subprocess
import time

import pytest
import redis
from falcon import testing

from api.server.app import create_app
from engine import boot
from engine.access import auth
from engine.catalog import projects
from engine.run import lifecycle, queue
from engine.store.db import database, open_database
from engine.store.models import Task
from engine.store.settings import Settings
from tests.cluster import OPSJOB, Cluster
from tests.faultparts import fill, small_disk
from tests.httpclient import call, free_port

pytestmark = pytest.mark.slow


def quick_cmd(node, script):
    return {
        "node_type": "builtin",
        "node_cont": node,
        "scripts_type": "shell",
        "scripts_cont": script,
        "scripts_argv": "",
    }


def test_launch_while_the_queue_is_down_is_503_and_runs_when_it_returns(
    ssh_nodes, pg_url, redis_server, tmp_path
):
    c = Cluster(ssh_nodes, database_url=pg_url, queue_url=redis_server.url, lease=3)
    try:
        c.run("project", "add", "1", "outage")
        c.serve()
        c.worker()
        c.add_nodes(1, ssh_nodes.ensure(1))
        node = ssh_nodes.addresses[0]
        marks = tmp_path / "marks"
        marks.mkdir()
        os.chmod(marks, 0o777)
        redis_server.stop()
        status, body = c.call("POST", "/task/1/plugin_cmd", quick_cmd(node, f"echo x >> {marks}/a"))
        assert status == 503, body
        assert "queue is unreachable" in body["info"], body
        stored = c.ok("GET", "/task/1")["data"]
        assert len(stored) == 1 and stored[0]["status"] == "init"
        uuid = stored[0]["uuid"]
        assert uuid in body["info"]
        time.sleep(2)
        redis_server.start()
        done = c.wait(1, uuid, timeout=60)
        assert done["status"] == "success", done
        time.sleep(2 * 3)  # two more leases: a resend must not run it again
        assert (marks / "a").read_text() == "x\n"
        worker_log = open(os.path.join(c.home, "worker.log")).read()
        assert "Traceback" not in worker_log, worker_log[-3000:]
    finally:
        c.close()


def test_a_worker_against_an_unreachable_queue_logs_one_line_per_try(tmp_path):
    port = free_port()  # nothing listens here
    env = {
        **os.environ,
        "OPSJOB_HOME": str(tmp_path),
        "OPSJOB_QUEUE_URL": f"redis://:hunter2@127.0.0.1:{port}/0",
        "OPSJOB_LOG_LEVEL": "WARNING",
    }
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([OPSJOB, "worker"], env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while "unreachable" not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(5)  # the start-up line, then tries after 1, 2 and 4 s
            assert proc.poll() is None, "the worker must wait for the queue, not exit"
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    assert len(lines) <= 6, lines
    assert "Traceback" not in log.read_text()
    assert f"127.0.0.1:{port}" in lines[0] and "unreachable" in lines[0], lines
    assert "hunter2" not in log.read_text()
    assert sum("still unreachable" in line for line in lines) >= 2, lines


@pytest.mark.parametrize("command", ["serve", "worker", "up"])
def test_an_unreachable_database_is_one_line_and_a_failed_start(command, tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "OPSJOB_HOME": str(tmp_path),
        "OPSJOB_DATABASE_URL": f"postgresql://opsjob:s3cret@127.0.0.1:{port}/opsjob",
    }
    out = subprocess.run(
        [OPSJOB, command, "--port", str(free_port())] if command != "worker" else [OPSJOB, command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    assert f"127.0.0.1:{port}" in lines[0] and "unreachable" in lines[0]
    assert "s3cret" not in out.stderr + out.stdout


def test_a_port_in_use_is_one_line(tmp_path):
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        env = {**os.environ, "OPSJOB_HOME": str(tmp_path)}
        out = subprocess.run(
            [OPSJOB, "serve", "--port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert out.returncode != 0
    assert (
        out.stderr.strip() == f"opsjob: cannot listen on 127.0.0.1:{port}: Address already in use"
    )


def test_a_bad_setting_is_one_line(tmp_path):
    env = {**os.environ, "OPSJOB_HOME": str(tmp_path), "OPSJOB_TASK_LEASE": "soon"}
    out = subprocess.run([OPSJOB, "init"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert out.stderr.strip() == "opsjob: OPSJOB_TASK_LEASE: must be an integer, not 'soon'"


def test_healthz_and_readyz_report_the_queue(redis_server, tmp_path):
    c = Cluster(None, queue_url=redis_server.url, home=str(tmp_path))
    try:
        c.serve()
        assert call("GET", c.url + "/healthz") == (200, {"stat": True, "data": {"status": "alive"}})
        status, body = call("GET", c.url + "/readyz")
        assert status == 200 and body["data"] == {"database": "ok", "queue": "ok"}, body
        redis_server.stop()
        started = time.monotonic()
        status, body = call("GET", c.url + "/readyz")
        assert status == 503 and body["info"] == "not ready: queue unreachable", body
        assert body["data"]["database"] == "ok"
        assert time.monotonic() - started < 5
        assert call("GET", c.url + "/healthz")[0] == 200
        redis_server.start()
        assert call("GET", c.url + "/readyz")[0] == 200
    finally:
        c.close()


def test_readyz_names_an_unreachable_database_and_healthz_does_not_need_it(pg_url, tmp_path):
    app = create_app(Settings(home=str(tmp_path), database_url=pg_url))
    client = testing.TestClient(app)
    assert client.simulate_get("/readyz").status_code == 200
    open_database(f"postgresql://postgres@127.0.0.1:{free_port()}/gone")  # a closed port
    try:
        r = client.simulate_get("/readyz")
        assert r.status_code == 503, r.text
        assert r.json["info"] == "not ready: database unreachable"
        assert r.json["data"]["queue"] == "ok"
        assert client.simulate_get("/healthz").status_code == 200
        r = client.simulate_get("/jobs/1", headers={"Authorization": "Bearer x"})
        assert r.status_code == 503 and r.json["info"] == "the database is unreachable", r.text
    finally:
        open_database(pg_url)


def test_a_full_disk_answers_507_and_says_so_on_stderr(tmp_path, capfd):
    with small_disk("16m") as home:
        settings = Settings(home=home)
        client = testing.TestClient(create_app(settings))
        with database.connection_context():
            key = auth.add_user("root", admin=True)
            projects.ensure_project(1, "one")
        headers = {"Authorization": f"Bearer {key}"}
        script = {"name": "fits", "type": "shell", "cont": "echo small"}
        assert client.simulate_post("/scripts/1", json=script, headers=headers).status_code == 200
        ballast = fill(home)
        capfd.readouterr()
        big = {"type": "shell", "cont": "echo " + "x" * 60000}
        for i in range(50):  # the database's free pages run out after a few writes
            r = client.simulate_post("/scripts/1", json={**big, "name": f"n{i}"}, headers=headers)
            if r.status_code != 200:
                break
        assert r.status_code == 507, r.text
        assert r.json["info"].startswith("insufficient storage: the disk is full"), r.json
        err = capfd.readouterr().err
        assert "insufficient storage: the disk is full" in err
        assert "Traceback" not in err
        os.unlink(ballast)
        r = client.simulate_post("/scripts/1", json={**big, "name": "after"}, headers=headers)
        assert r.status_code == 200, r.text
        database.close()


def test_an_upload_to_a_full_file_store_answers_507(pg_url, capfd):
    from tests.test_fileserver import multipart

    with small_disk("8m") as home:
        client = testing.TestClient(create_app(Settings(home=home, database_url=pg_url)))
        with database.connection_context():
            key = auth.add_user("root", admin=True)
            projects.ensure_project(1, "one")
        ballast = fill(home, leave=64 * 1024)
        body, ctype = multipart([("file", "big.bin", os.urandom(1 << 20))])
        headers = {"Authorization": f"Bearer {key}", "Content-Type": ctype}
        r = client.simulate_post("/fileserver/1", body=body, headers=headers)
        assert r.status_code == 507, r.text
        assert r.json["info"].startswith("insufficient storage: the disk is full"), r.json
        assert "insufficient storage" in capfd.readouterr().err
        os.unlink(ballast)
        assert client.simulate_post("/fileserver/1", body=body, headers=headers).status_code == 200
        database.close()


def test_a_stranded_task_is_sent_again_while_other_messages_wait(redis_server, tmp_path):
    """The old sweep only resent when the queue was empty: under steady load, never."""
    settings = Settings(home=str(tmp_path), queue_url=redis_server.url, task_lease=2)
    open_database(settings.database)
    from engine.store import schema

    schema.upgrade()
    huey = boot.start(settings)
    with database.connection_context():
        busy = [Task.create(projectid=1, uuid=f"busy{i:08d}", name="b") for i in range(3)]
        for task in busy:
            queue.enqueue_run(task.uuid)  # messages that wait: no worker consumes them
        old = datetime.datetime.now() - datetime.timedelta(seconds=5)
        lost = Task.create(projectid=1, uuid="lost00000000", name="l", create_time=old)
        young = Task.create(projectid=1, uuid="young0000000", name="y")
    assert huey.pending_count() == 3

    def queued():
        return [m.args[0] for m in huey.pending()]

    assert lifecycle.requeue_stranded() == [lost.uuid]  # the young and the busy wait
    assert queued().count(lost.uuid) == 1
    assert lifecycle.requeue_stranded() == []  # not again within a lease
    assert young.uuid not in queued()
    time.sleep(2.2)
    assert lost.uuid in lifecycle.requeue_stranded()
    assert queued().count(lost.uuid) == 2  # once per lease at most: a claim drops the extra
    database.close()
    redis.Redis.from_url(redis_server.url).flushdb()


def test_serve_with_the_queue_down_says_so_once_and_serves(tmp_path):
    queue_url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"  # nothing listens there
    c = Cluster(None, queue_url=queue_url, home=str(tmp_path))
    try:
        c.serve()
        assert call("GET", c.url + "/healthz")[0] == 200
        status, body = call("GET", c.url + "/readyz")
        assert status == 503 and body["info"] == "not ready: queue unreachable", body
        log = open(os.path.join(c.home, "api.log")).read()
        said = [line for line in log.splitlines() if "unreachable" in line]
        assert len(said) == 1 and said[0].startswith("opsjob: the queue redis://:***@"), log
        assert "hunter2" not in log and "Traceback" not in log
    finally:
        c.close()
