"""A running task's log is live: its first lines, what a long-running host prints as it prints
it, and how many hosts have ended, are readable from any API node while the step still runs;
when the step ends, each host's output follows (grouped with hosts that printed the same)."""

import time

import pytest

from tests.cluster import Cluster

pytestmark = pytest.mark.slow


def test_the_log_shows_progress_while_a_long_step_runs(ssh_nodes, pg_url, redis_server):
    c = Cluster(ssh_nodes, database_url=pg_url, queue_url=redis_server.url)
    try:
        c.run("project", "add", "1", "live")
        c.serve()
        c.worker()
        fast, slow = ssh_nodes.ensure(2)[:2]
        c.add_nodes(1, [fast, slow])
        # SSH_CONNECTION names the address the node was reached at: one host ends at once.
        script = (
            f'case "$SSH_CONNECTION" in *" {fast} "*) echo a;; *) echo a; sleep 12; echo b;; esac'
        )
        body = {
            "node_type": "builtin",
            "node_cont": f"{fast},{slow}",
            "scripts_type": "shell",
            "scripts_cont": script,
            "scripts_argv": "",
        }
        uuid = c.ok("POST", "/task/1/plugin_cmd", body)["data"]["uuid"]
        c.wait(1, uuid, statuses=("running",), timeout=60)
        seen, log = {}, ""
        began = time.monotonic()
        while time.monotonic() - began < 11:
            data = c.ok("GET", f"/slave/any/tasklog/{uuid}")["data"]
            log = data["log"]
            marks = (
                "started",
                "running on 2 node(s)",
                "... 1 of 2 host(s) ended: 1 ok\n",
                f"{slow}| a\n",
            )
            for mark in marks:
                if mark in log and mark not in seen:
                    seen[mark] = (time.monotonic() - began, data["status"])
            if len(seen) == len(marks):
                break
            time.sleep(0.2)
        assert len(seen) == len(marks), (seen, log)
        assert all(status == "running" for _, status in seen.values()), seen
        assert seen["started"][0] < 2 and seen["running on 2 node(s)"][0] < 2, seen
        assert "b\n" not in log  # the slow host still sleeps
        done = c.wait(1, uuid, timeout=60)
        assert done["status"] == "success"
        log = c.ok("GET", f"/slave/any/tasklog/{uuid}")["data"]["log"]
        assert log.count(f"--- 1 host ok rc=0: {fast}\na\n") == 1
        assert f"--- 1 host ok rc=0: {slow}\na\nb\n" in log
        assert f"{fast}| " not in log  # a host that ends at once is logged once, whole
    finally:
        c.close()
