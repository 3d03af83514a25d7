"""Live logs over a websocket (`/slave/:slave/ws?uuid=`), on the API's own port, with a real
websocket client: what exists, then new lines as they are written, closed at the end; keys,
tickets and project isolation."""

import asyncio
import sqlite3
import threading
import time

import pytest
import websockets

from tests.cluster import Cluster, cmd_step

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(ssh_nodes):
    c = Cluster(ssh_nodes)
    c.env["OPSJOB_LOG_LEVEL"] = "INFO"  # the server logs every request: no ticket may show
    c.run("project", "add", "1", "live")
    c.run("project", "add", "2", "other")
    c.serve()
    c.worker()
    c.add_nodes(1, ssh_nodes.ensure(1))
    yield c
    c.close()


def _ws_url(cluster, loguuid, **query):
    params = "&".join(f"{k}={v}" for k, v in {"uuid": loguuid, **query}.items())
    return cluster.url.replace("http://", "ws://") + f"/slave/anyworker/ws?{params}"


def follow(url, headers=None, timeout=90):
    """Read every frame of a websocket: ``([(seconds since start, text)], close code)``."""

    async def read():
        frames, started = [], time.monotonic()
        async with websockets.connect(url, additional_headers=headers or {}) as ws:
            try:
                async with asyncio.timeout(timeout):
                    async for message in ws:
                        frames.append((time.monotonic() - started, message))
            except websockets.ConnectionClosedError:
                pass  # closed with an error code: the caller checks it
            except TimeoutError:
                pytest.fail(f"the websocket stayed open past {timeout} s: {frames}")
            return frames, ws.close_code

    return asyncio.run(read())


def _start(cluster, steps, name):
    jobuuid = cluster.ok("POST", "/jobs/1", {"name": name, "permanent": 1, "data": steps})["uuid"]
    return cluster.ok("POST", "/task/1/job", {"jobuuid": jobuuid})["uuid"]


def _bearer(cluster, key=None):
    return {"Authorization": f"Bearer {key or cluster.key}"}


def test_whole_log_then_new_lines_then_closed(cluster, ssh_nodes):
    node = ssh_nodes.addresses[0]
    steps = [
        cmd_step("echo live-one", [node], name="one"),
        cmd_step("sleep 3; echo live-two", [node], name="two"),
        cmd_step("sleep 3; echo live-three", [node], name="three"),
    ]
    uuid = _start(cluster, steps, "live")
    # When each line is stored, as the polling route sees it (every 0.1 s).
    stored, stop = {}, threading.Event()

    def poll():
        started = time.monotonic()
        while not stop.is_set():
            log = cluster.ok("GET", f"/slave/any/tasklog/{uuid}")["data"]["log"]
            for marker in ("live-one", "live-two", "live-three"):
                if marker in log and marker not in stored:
                    stored[marker] = time.monotonic() - started
            time.sleep(0.1)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        frames, code = follow(_ws_url(cluster, uuid, format="text"), _bearer(cluster))
    finally:
        stop.set()
        poller.join()
    assert code == 1000
    text = "".join(f for _, f in frames)
    final = cluster.ok("GET", f"/slave/any/tasklog/{uuid}")["data"]
    assert final["done"] and text == final["log"]  # every line, once, in order
    assert text.rstrip().endswith("task success")
    # Lines arrived as they were written: each within 1 s of being stored.
    for marker in ("live-two", "live-three"):
        seen = next(t for t, f in frames if marker in f)
        assert seen - stored[marker] < 1.0, (marker, seen, stored[marker])
    assert len(frames) >= 3  # not one frame at the end

    # A finished task: the whole log at once, then closed. The default frames are HTML.
    frames, code = follow(_ws_url(cluster, uuid), _bearer(cluster))
    html = "".join(f for _, f in frames)
    assert code == 1000 and "live-one<br>" in html and "\n" not in html


def test_one_step_log(cluster, ssh_nodes):
    node = ssh_nodes.addresses[0]
    steps = [
        cmd_step("echo step-a-out", [node], name="a"),
        cmd_step("sleep 2; echo 'step-b-out <b>'", [node], name="b"),
        cmd_step("sleep 2; echo step-c-out", [node], name="c"),
    ]
    uuid = _start(cluster, steps, "steps")
    deadline = time.monotonic() + 60
    while True:
        subs = cluster.ok("GET", f"/subtask/1/{uuid}")["data"]
        if subs:
            break
        assert time.monotonic() < deadline
        time.sleep(0.2)
    b = subs[1]
    frames, code = follow(
        _ws_url(cluster, f"{uuid}{b['uuid']}{b['subtask_type']}", format="text"),
        _bearer(cluster),
    )
    text = "".join(f for _, f in frames)
    assert code == 1000
    assert "step-b-out <b>" in text and "step 2 (cmd) b" in text
    assert "step-a-out" not in text and "step-c-out" not in text
    # It closed when its step ended, before the task did.
    assert cluster.ok("GET", f"/task/1/{uuid}")["data"]["status"] == "running"
    cluster.wait(1, uuid)
    # HTML frames escape what a node printed.
    frames, _ = follow(_ws_url(cluster, f"{uuid}{b['uuid']}cmd"), _bearer(cluster))
    assert "step-b-out &lt;b&gt;<br>" in "".join(f for _, f in frames)
    frames, code = follow(_ws_url(cluster, f"{uuid}nosuchstepcmd"), _bearer(cluster))
    assert code == 4404 and frames[0][1].startswith("ERROR: uuid")


def _refused(cluster, url, headers=None):
    frames, code = follow(url, headers)
    assert frames and frames[0][1].startswith("ERROR: "), frames
    return code


def test_keys_tickets_and_projects(cluster, ssh_nodes):
    uuid = _start(cluster, [cmd_step("echo guarded", [ssh_nodes.addresses[0]])], "guarded")
    cluster.wait(1, uuid)
    url = _ws_url(cluster, uuid, format="text")
    assert _refused(cluster, url) == 4401  # no credentials
    assert _refused(cluster, url, _bearer(cluster, "oj_not-a-key")) == 4401
    outsider = cluster.run("user", "add", "outsider", "--project", "2", "--role", "write")
    assert _refused(cluster, url, _bearer(cluster, outsider)) == 4404  # another project's key
    reader = cluster.run("user", "add", "reader", "--project", "1", "--role", "read")
    frames, code = follow(url, _bearer(cluster, reader))
    assert code == 1000 and "guarded" in "".join(f for _, f in frames)
    frames, code = follow(url, {"appname": "reader", "appkey": reader})
    assert code == 1000 and "guarded" in "".join(f for _, f in frames)

    # Tickets: issued to a key with read on the task's project, single use.
    status, body = cluster.call("POST", "/slave/ws/ticket", {"uuid": uuid}, key=outsider)
    assert status == 404
    ticket = cluster.ok("POST", "/slave/ws/ticket", {"uuid": uuid}, key=reader)["data"]["ticket"]
    frames, code = follow(_ws_url(cluster, uuid, format="text", ticket=ticket))
    assert code == 1000 and "guarded" in "".join(f for _, f in frames)
    assert _refused(cluster, _ws_url(cluster, uuid, ticket=ticket)) == 4401  # used up
    # A ticket of project 1 opens nothing of project 2.
    other = cluster.ok("POST", "/task/2/plugin_cmd", _probe_step())["data"]["uuid"]
    ticket = cluster.ok("POST", "/slave/ws/ticket", {"uuid": uuid})["data"]["ticket"]
    assert _refused(cluster, _ws_url(cluster, other, ticket=ticket)) == 4401
    # An expired ticket opens nothing.
    ticket = cluster.ok("POST", "/slave/ws/ticket", {"uuid": uuid}, key=reader)["data"]["ticket"]
    with sqlite3.connect(f"{cluster.home}/opsjob.db") as db:
        db.execute("UPDATE socket_ticket SET expires = '2000-01-01 00:00:00'")
    assert _refused(cluster, _ws_url(cluster, uuid, ticket=ticket)) == 4401
    status, body = cluster.call("POST", "/slave/ws/ticket", {"uuid": "bad/uuid"})
    assert status == 400 and body["info"].startswith("uuid")

    # Neither keys nor tickets reach the server's log; the paths do.
    log = open(f"{cluster.home}/api.log").read()
    assert "/slave/anyworker/ws" in log and "/slave/ws/ticket" in log
    for secret in ("wt_", reader, outsider, cluster.key):
        assert secret not in log


def _probe_step():
    return {
        "node_type": "builtin",
        "node_cont": "10.255.0.1",
        "scripts_type": "shell",
        "scripts_cont": "true",
    }
