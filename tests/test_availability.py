"""The API stays up for everyone: slow clients and long console commands hold no request
worker of a real `opsjob serve`."""

import socket
import threading
import time
import urllib.request

import pytest

from tests.cluster import Cluster, running

pytestmark = pytest.mark.slow
SLOW_CLIENTS = 8
LONG_COMMANDS = 2
GETS = 50


def _slow_headers(port, stop, opened):
    """Send a request's header lines one every half second, and never end it."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        s.sendall(b"GET /task/1 HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        opened.release()
        while not stop.wait(0.5):
            try:
                s.sendall(b"X-Slow: 1\r\n")
            except OSError:
                return


def test_slow_clients_and_long_commands_do_not_hold_the_api(ssh_nodes):
    with running(ssh_nodes, {1: "availability"}, nodes=1) as c:
        node = ssh_nodes.addresses[0]
        port = int(c.url.rsplit(":", 1)[1])
        stop, opened = threading.Event(), threading.Semaphore(0)
        slow = [
            threading.Thread(target=_slow_headers, args=(port, stop, opened), daemon=True)
            for _ in range(SLOW_CLIENTS)
        ]
        try:
            for t in slow:
                t.start()
            for _ in slow:
                assert opened.acquire(timeout=10)
            # Two console commands that run for 14 s: each call answers at once.
            commands = []
            for _ in range(LONG_COMMANDS):
                started = time.monotonic()
                out = c.ok("POST", "/cmd/1", {"node": node, "cmd": "sleep 14; echo slept"})
                assert time.monotonic() - started < 1.0
                assert out["data"]["done"] is False
                commands.append(out["data"]["uuid"])
            deadline = time.monotonic() + 30
            while c.ok("GET", f"/cmd/1/result/{commands[0]}")["data"]["status"] != "running":
                assert time.monotonic() < deadline, "the console command never started"
                time.sleep(0.2)
            slowest = 0.0
            for i in range(GETS):
                path = f"/task/1/{commands[i % 2]}" if i % 2 else "/task/1"
                req = urllib.request.Request(
                    c.url + path, headers={"Authorization": f"Bearer {c.key}"}
                )
                started = time.monotonic()
                with urllib.request.urlopen(req, timeout=30) as resp:
                    assert resp.status == 200
                    resp.read()
                took = time.monotonic() - started
                slowest = max(slowest, took)
                assert took < 1.0, f"GET {path} took {took:.2f} s"
            # Everything was still held open while the GETs were answered.
            assert all(t.is_alive() for t in slow)
            running_now = c.ok("GET", f"/cmd/1/result/{commands[1]}")["data"]
            assert running_now["status"] in ("init", "running"), running_now
        finally:
            stop.set()
        for uuid in commands:
            done = c.wait(1, uuid, timeout=60)
            assert done["status"] == "success"
        result = c.ok("GET", f"/cmd/1/result/{commands[0]}")["data"]
        assert result["nodes"][0]["stdout"] == "slept\n"
        print(f"slowest of {GETS} GETs: {slowest:.3f} s")


def test_a_slow_node_group_holds_a_request_no_longer_than_the_inventory_timeout(
    ssh_nodes, tmp_path
):
    script = tmp_path / "slow.sh"
    script.write_text("#!/bin/sh\nsleep 60\n")
    script.chmod(0o755)
    c = Cluster(ssh_nodes)
    c.env["OPSJOB_INVENTORY_TIMEOUT"] = "2"
    try:
        c.run("project", "add", "1", "slowgroup")
        c.serve()
        status, body = c.call(
            "POST", "/nodegroup/1", {"name": "slow", "plugin": "ansible", "params": str(script)}
        )
        assert status == 200, body
        # A console command naming a host that is no machine makes the request resolve the
        # project's groups: it is answered once the inventory timeout stops the slow source.
        started = time.monotonic()
        status, body = c.call("POST", "/cmd/1", {"node": "not-a-machine", "cmd": "true"})
        took = time.monotonic() - started
        assert status == 403 and "not-a-machine" in body["info"], body
        assert took < 2 + 3, took
    finally:
        c.close()
