"""Two real worker processes share a Redis queue and a PostgreSQL database: every task runs
exactly once."""

import os
import uuid as uuidlib

import psycopg
import pytest
import redis

from tests.cluster import Cluster
from tests.conftest import PG_ADMIN

pytestmark = pytest.mark.slow
TASKS = 30


@pytest.fixture
def pg_url():
    name = f"opsjob_queue_{uuidlib.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def redis_url():
    db = 7  # a database of its own; flushed before and after
    client = redis.Redis(host="127.0.0.1", port=6379, db=db)
    client.flushdb()
    yield f"redis://127.0.0.1:6379/{db}"
    client.flushdb()


def test_two_workers_run_each_task_exactly_once(ssh_nodes, pg_url, redis_url, tmp_path):
    c = Cluster(ssh_nodes, database_url=pg_url, queue_url=redis_url)
    try:
        c.run("project", "add", "1", "queue")
        c.serve()
        c.worker("w1", env={"OPSJOB_WORKER_NAME": "w1"})
        c.worker("w2", env={"OPSJOB_WORKER_NAME": "w2"})
        c.add_nodes(1, ssh_nodes.ensure(2))
        node = ssh_nodes.addresses[0]
        marks = tmp_path / "marks"
        marks.mkdir()
        os.chmod(marks, 0o777)
        uuids = []
        for i in range(TASKS):
            r = c.ok(
                "POST",
                "/task/1/plugin_cmd",
                {
                    "name": f"once {i}",
                    "node_type": "builtin",
                    "node_cont": node,
                    "scripts_type": "shell",
                    "scripts_cont": f"echo $$ >> {marks}/{i}",
                    "scripts_argv": "",
                },
            )
            uuids.append(r["data"]["uuid"])
        finished = [c.wait(1, u, timeout=180) for u in uuids]
        assert [t["status"] for t in finished] == ["success"] * TASKS
        for i in range(TASKS):
            assert len((marks / str(i)).read_text().split()) == 1, f"task {i} ran twice"
        assert {t["slave"] for t in finished} == {"w1", "w2"}
        with psycopg.connect(pg_url) as conn:
            per_task = conn.execute(
                "SELECT taskuuid, count(*) FROM host_result GROUP BY taskuuid"
            ).fetchall()
        assert sorted(n for _, n in per_task) == [1] * TASKS
    finally:
        c.close()
