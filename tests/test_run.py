"""End to end: the HTTP API and real worker processes run steps on real loopback sshd nodes."""

import os
import signal
import subprocess
import time
import uuid as uuidlib

import pytest

from tests.cluster import Cluster, cmd_step, unique

pytestmark = pytest.mark.slow
PID = 1


@pytest.fixture(scope="module")
def cluster(ssh_nodes):
    c = Cluster(ssh_nodes, lease=4)
    c.run("project", "add", str(PID), "e2e")
    c.run("project", "add", "2", "other")
    c.serve()
    c.worker()
    c.add_nodes(PID, ssh_nodes.ensure(4))
    yield c
    c.close()


def cmd(name, nodes, script, argv="", **kw):
    return cmd_step(script, nodes, name=name, argv=argv, **kw)


def job(c, steps, name=None):
    return c.ok(
        "POST", f"/jobs/{PID}", {"name": name or unique("job"), "permanent": 1, "data": steps}
    )["uuid"]


def start(c, jobuuid, variable=None):
    return c.ok("POST", f"/task/{PID}/job", {"jobuuid": jobuuid, "variable": variable or {}})[
        "uuid"
    ]


def steps_of(c, task):
    return c.ok("GET", f"/subtask/{PID}/{task}")["data"]


def control(c, task, step, action, method="POST"):
    return c.call(
        method,
        f"/subtask/{PID}",
        {
            "taskuuid": task,
            "subtaskuuid": step["uuid"],
            "subtasktype": step["subtask_type"],
            "control": action,
        },
    )


def test_three_step_job(cluster, ssh_nodes):
    a, b, c3 = ssh_nodes.addresses[:3]
    tag = unique("d")
    steps = [
        cmd(
            "make files",
            [a],
            f'mkdir -p /tmp/{tag}/src/sub && echo "$1" > /tmp/{tag}/src/v.txt'
            f" && echo deep > /tmp/{tag}/src/sub/x.txt",
            argv="$version",
        ),
        {
            "plugin_type": "scp",
            "name": "copy",
            "src_type": "builtin",
            "src": a,
            "sp": f"/tmp/{tag}/src/",
            "dst_type": "builtin",
            "dst": f"{b},{c3}",
            "dp": f"/tmp/{tag}/dst/",
            "chmod": "640",
        },
        cmd(
            "check",
            [b, c3],
            f"cat /tmp/{tag}/dst/v.txt /tmp/{tag}/dst/sub/x.txt; stat -c %a /tmp/{tag}/dst/v.txt",
        ),
    ]
    jobuuid = job(cluster, steps)
    task = start(cluster, jobuuid, {"version": "1.2.3"})
    done = cluster.wait(PID, task)
    assert done["status"] == "success", cluster.ok("GET", f"/slave/any/tasklog/{task}")
    subs = steps_of(cluster, task)
    assert [s["status"] for s in subs] == ["success"] * 3
    check = subs[2]["hosts"]
    assert sorted(h["host"] for h in check) == sorted([b, c3])
    for h in check:
        assert h["status"] == "ok" and h["rc"] == 0
        assert h["stdout"].split() == ["1.2.3", "deep", "640"]
    log = cluster.ok("GET", f"/slave/any/tasklog/{task}")["data"]
    assert log["done"] is True and "task success" in log["log"]


def test_undefined_variable_fails_the_task(cluster, ssh_nodes):
    jobuuid = job(cluster, [cmd("x", ssh_nodes.addresses[:1], "true", argv="$version")])
    done = cluster.wait(PID, start(cluster, jobuuid))
    assert done["status"] == "fail" and done["reason"] == "variable undef:version"


def test_decision_retry_after_fix(cluster, ssh_nodes):
    a, b = ssh_nodes.addresses[:2]
    flag = f"/tmp/{unique('fix')}"
    jobuuid = job(cluster, [cmd("needs flag", [a, b], f"test -e {flag}")])
    task = start(cluster, jobuuid)
    cluster.wait(PID, task, statuses=("waiting",))
    sub = steps_of(cluster, task)[0]
    assert sub["status"] == "decision"
    assert {h["status"] for h in sub["hosts"]} == {"failed"}
    ssh_nodes.ssh(a, f"touch {flag}")  # the nodes share this machine's /tmp
    status, body = control(cluster, task, sub, "running", method="PUT")
    assert status == 200, body
    done = cluster.wait(PID, task)
    assert done["status"] == "success"
    detail = cluster.ok("GET", f"/subtask/{PID}/{task}/{sub['uuid']}")["data"]
    assert [h["attempt"] for h in detail["hosts"]] == [1, 1, 2, 2]


def test_decision_retries_only_failed_hosts(cluster, ssh_nodes):
    a, b = ssh_nodes.addresses[:2]
    marker = unique("m")
    # every node is this machine: a node knows itself by the address it was reached on
    script = (
        f"me=$(echo $SSH_CONNECTION | cut -d' ' -f3); echo run >> /tmp/{marker}-$me; "
        f'[ "$me" != "{b}" ] || test -e /tmp/{marker}-go'
    )
    jobuuid = job(cluster, [cmd("one fails", [a, b], script)])
    task = start(cluster, jobuuid)
    cluster.wait(PID, task, statuses=("waiting",))
    sub = steps_of(cluster, task)[0]
    statuses = {h["host"]: h["status"] for h in sub["hosts"]}
    assert statuses == {a: "ok", b: "failed"}
    ssh_nodes.ssh(b, f"touch /tmp/{marker}-go")
    assert control(cluster, task, sub, "running")[0] == 200
    assert cluster.wait(PID, task)["status"] == "success"
    runs_a = ssh_nodes.ssh(a, f"cat /tmp/{marker}-{a}").stdout.split()
    runs_b = ssh_nodes.ssh(b, f"cat /tmp/{marker}-{b}").stdout.split()
    assert (len(runs_a), len(runs_b)) == (1, 2)


def test_decision_ignore_then_next_step(cluster, ssh_nodes):
    a = ssh_nodes.addresses[0]
    jobuuid = job(cluster, [cmd("fails", [a], "exit 3"), cmd("after", [a], "echo after")])
    task = start(cluster, jobuuid)
    cluster.wait(PID, task, statuses=("waiting",))
    first = steps_of(cluster, task)[0]
    assert first["hosts"][0]["rc"] == 3
    assert control(cluster, task, first, "next")[0] == 409  # not paused
    assert control(cluster, task, first, "ignore")[0] == 200
    assert cluster.wait(PID, task)["status"] == "success"
    assert [s["status"] for s in steps_of(cluster, task)] == ["ignore", "success"]


def test_decision_fail_stops(cluster, ssh_nodes):
    a = ssh_nodes.addresses[0]
    jobuuid = job(cluster, [cmd("fails", [a], "exit 1"), cmd("never", [a], "true")])
    task = start(cluster, jobuuid)
    cluster.wait(PID, task, statuses=("waiting",))
    assert control(cluster, task, steps_of(cluster, task)[0], "fail")[0] == 200
    done = cluster.wait(PID, task)
    assert done["status"] == "fail" and done["reason"] == "stop by root"
    assert [s["status"] for s in steps_of(cluster, task)] == ["fail", None]


def test_exit_variable_fails_without_asking(cluster, ssh_nodes):
    a = ssh_nodes.addresses[0]
    jobuuid = job(cluster, [cmd("fails", [a], "exit 1")])
    done = cluster.wait(PID, start(cluster, jobuuid, {"_exit_": "1"}))
    assert done["status"] == "fail" and done["reason"] == "stop by sys._exit_"


def test_pause_then_next(cluster, ssh_nodes):
    a = ssh_nodes.addresses[0]
    jobuuid = job(
        cluster,
        [cmd("first", [a], "echo one", pause="check the canary"), cmd("second", [a], "echo two")],
    )
    task = start(cluster, jobuuid)
    cluster.wait(PID, task, statuses=("waiting",))
    subs = steps_of(cluster, task)
    assert subs[0]["status"] == "success" and subs[0]["pause"] == "check the canary"
    assert subs[1]["status"] is None
    assert control(cluster, task, subs[0], "next", method="PUT")[0] == 200
    assert cluster.wait(PID, task)["status"] == "success"


def test_early_next_skips_the_pause(cluster, ssh_nodes):
    a = ssh_nodes.addresses[0]
    jobuuid = job(cluster, [cmd("slow", [a], "sleep 2", pause="wait"), cmd("b", [a], "true")])
    task = start(cluster, jobuuid)
    cluster.wait(PID, task, statuses=("running",))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        subs = steps_of(cluster, task)
        if subs[0]["status"] == "running" and subs[0]["pause"]:
            break
        time.sleep(0.05)
    assert control(cluster, task, subs[0], "next")[0] == 200
    assert cluster.wait(PID, task)["status"] == "success"


def test_foreign_nodes_never_receive_a_command(cluster, ssh_nodes):
    a = ssh_nodes.addresses[0]
    marker = f"/tmp/{unique('foreign')}"
    # 127.0.0.99 is not a machine of this project: the step refuses, nothing runs anywhere
    r = cluster.ok(
        "POST",
        f"/task/{PID}/plugin_cmd",
        {
            "name": "q",
            "node_type": "builtin",
            "node_cont": f"{a},127.0.0.99",
            "scripts_type": "shell",
            "scripts_cont": f"touch {marker}",
            "scripts_argv": "",
        },
    )
    done = cluster.wait(PID, r["data"]["uuid"])
    assert done["status"] == "fail" and "127.0.0.99" in done["reason"]
    assert not os.path.exists(marker)
    log = cluster.ok("GET", f"/slave/any/tasklog/{r['data']['uuid']}")["data"]["log"]
    assert "not in project: 127.0.0.99" in log


def test_plugin_cmd_and_scp(cluster, ssh_nodes):
    a, b = ssh_nodes.addresses[:2]
    tag = unique("p")
    r = cluster.ok(
        "POST",
        f"/task/{PID}/plugin_cmd",
        {
            "name": "make",
            "user": "",
            "node_type": "builtin",
            "node_cont": a,
            "scripts_type": "python",
            "scripts_cont": f"open('/tmp/{tag}.txt','w').write('hi')",
            "scripts_argv": "",
        },
    )
    assert r["data"]["loguuid"].startswith(r["data"]["uuid"]) and r["data"]["loguuid"].endswith(
        "cmd"
    )
    assert cluster.wait(PID, r["data"]["uuid"])["status"] == "success"
    r = cluster.ok(
        "POST",
        f"/task/{PID}/plugin_scp",
        {
            "src_type": "builtin",
            "src": a,
            "sp": f"/tmp/{tag}.txt",
            "dst_type": "builtin",
            "dst": b,
            "dp": f"/tmp/{tag}-copy/",
            "chmod": "600",
        },
    )
    assert cluster.wait(PID, r["data"]["uuid"])["status"] == "success"
    out = ssh_nodes.ssh(
        b, f"cat /tmp/{tag}-copy/{tag}.txt; echo; stat -c %a /tmp/{tag}-copy/{tag}.txt"
    )
    assert out.stdout.split() == ["hi", "600"]
    rows = cluster.ok("GET", f"/task/{PID}?jobtype=plugin_scp")["data"]
    assert rows[0]["uuid"] == r["data"]["uuid"]


def test_become_user(cluster, ssh_nodes):
    a = ssh_nodes.addresses[0]
    r = cluster.ok(
        "POST",
        f"/task/{PID}/plugin_cmd",
        {
            "name": "who",
            "user": ssh_nodes.become_user,
            "node_type": "builtin",
            "node_cont": a,
            "scripts_type": "shell",
            "scripts_cont": "id -un",
            "scripts_argv": "",
        },
    )
    uuid = r["data"]["uuid"]
    assert cluster.wait(PID, uuid)["status"] == "success"
    log = cluster.ok("GET", f"/slave/any/tasklog/{uuid}")["data"]["log"]
    assert f"\n{ssh_nodes.become_user}\n" in log


def test_redo_and_byname_idempotency(cluster, ssh_nodes):
    a = ssh_nodes.addresses[0]
    name = unique("named")
    job(cluster, [cmd("x", [a], "echo $1", argv="$version")], name=name)
    wanted = unique("")[:12].ljust(12, "x")
    body = {"jobname": name, "uuid": wanted, "variable": {"version": "7"}}
    first = cluster.ok("POST", f"/task/{PID}/job/byname", body)
    assert first["uuid"] == wanted and first["data"] == 1
    again = cluster.ok("POST", f"/task/{PID}/job/byname", body)
    assert "uuid" not in again and again["info"] == "This task has been successfully created"
    assert cluster.wait(PID, wanted)["status"] == "success"
    tasks = cluster.ok("GET", f"/task/{PID}?taskuuid={wanted}")["data"]
    assert len(tasks) == 1 and tasks[0]["variable"] == "version: '7'\n"
    redo = cluster.ok("POST", f"/task/{PID}/redo", {"taskuuid": wanted})["uuid"]
    assert redo != wanted
    done = cluster.wait(PID, redo)
    assert done["status"] == "success" and done["variable"] == "version: '7'\n"


def test_never_jinja_through_the_api(cluster, ssh_nodes):
    a = ssh_nodes.addresses[0]
    marker = f"/tmp/{unique('pwned')}"
    evil = "{{ lookup('pipe','touch " + marker + "') }}"
    script = f'cat <<\'EOF\'\n{evil}\nEOF\necho "$1"\necho "$wk_evil"\n'
    jobuuid = job(cluster, [cmd("evil", [a], script, argv='"$payload"')])
    cluster.ok(
        "POST",
        f"/variable/{PID}/update",
        {"jobuuid": jobuuid, "data": [{"name": "wk_evil", "value": "x", "describe": "d"}]},
    )
    task = start(cluster, jobuuid, {"payload": evil, "wk_evil": evil})
    assert cluster.wait(PID, task)["status"] == "success"
    out = steps_of(cluster, task)[0]["hosts"][0]["stdout"]
    assert out.splitlines() == [evil, evil, evil]
    assert not os.path.exists(marker)


def test_project_isolation_of_tasks(cluster, ssh_nodes):
    a = ssh_nodes.addresses[0]
    jobuuid = job(cluster, [cmd("x", [a], "true")])
    task = start(cluster, jobuuid)
    cluster.wait(PID, task)
    other = cluster.run("user", "add", unique("u"), "--project", "2", "--role", "delete")
    assert cluster.call("GET", f"/task/{PID}/{task}", key=other)[0] == 403
    assert cluster.call("GET", f"/task/2/{task}", key=other)[0] == 404
    assert cluster.call("GET", f"/subtask/2/{task}", key=other)[0] == 404
    assert cluster.call("GET", f"/slave/any/tasklog/{task}", key=other)[0] == 404
    assert cluster.call("DELETE", f"/slave/any/killtask/{task}", key=other)[0] == 404
    assert cluster.call("POST", "/task/2/redo", {"taskuuid": task}, key=other)[0] == 400
    assert cluster.call("POST", "/task/2/job", {"jobuuid": jobuuid}, key=other)[0] == 400


def no_sleepers(ssh_nodes, pattern):
    out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
    return out.stdout.split()


def test_killtask_stops_the_nodes_too(cluster, ssh_nodes):
    a, b = ssh_nodes.addresses[:2]
    seconds = 300 + int(uuidlib.uuid4().int % 500)  # a unique command line to look for
    jobuuid = job(cluster, [cmd("sleep", [a, b], f"sleep {seconds}")])
    task = start(cluster, jobuuid)
    deadline = time.monotonic() + 30
    while len(no_sleepers(ssh_nodes, f"sleep {seconds}")) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)  # both nodes' commands are running
    assert len(no_sleepers(ssh_nodes, f"sleep {seconds}")) >= 2
    t0 = time.monotonic()
    r = cluster.ok("DELETE", f"/slave/any/killtask/{task}")
    assert r["info"] == "kill task succcess"
    done = cluster.wait(PID, task)
    assert done["status"] == "fail" and done["reason"] == "killed by root"
    assert time.monotonic() - t0 < 5
    deadline = time.monotonic() + 5
    while no_sleepers(ssh_nodes, f"sleep {seconds}") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert no_sleepers(ssh_nodes, f"sleep {seconds}") == []


def test_killed_worker_does_not_leave_the_task_running(cluster, ssh_nodes):
    a = ssh_nodes.addresses[0]
    seconds = 800 + int(uuidlib.uuid4().int % 100)
    cluster.stop("worker")
    cluster.worker("doomed")
    jobuuid = job(cluster, [cmd("sleep", [a], f"sleep {seconds}")])
    task = start(cluster, jobuuid)
    cluster.wait(PID, task, statuses=("running",))
    runs = os.path.join(cluster.home, "runs")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (
        os.path.isdir(runs) and any(n.startswith("run-") for n in os.listdir(runs))
    ):
        time.sleep(0.1)
    left = [n for n in os.listdir(runs) if n.startswith("run-")]
    assert left, "the step's run dir should exist while it runs"
    time.sleep(1)
    cluster.stop("doomed", sig=signal.SIGKILL)
    cluster.worker()  # a healthy worker sweeps the lost task once its lease (4 s) ran out
    done = cluster.wait(PID, task, timeout=30)
    assert done["status"] == "fail" and done["reason"].startswith("worker lost")
    # ... and removes the dead worker's run dir (it may hold key files)
    deadline = time.monotonic() + 15
    while set(left) & set(os.listdir(runs)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not set(left) & set(os.listdir(runs))
    subprocess.run(["pkill", "-f", f"sleep {seconds}"])


def test_file_store_pull_and_push(cluster, ssh_nodes):
    a, b = ssh_nodes.addresses[:2]
    name = unique("f") + ".txt"
    ssh_nodes.ssh(a, f"echo stored-content > /tmp/{name}")
    r = cluster.ok(
        "POST",
        f"/task/{PID}/plugin_scp",
        {
            "src_type": "builtin",
            "src": a,
            "sp": f"/tmp/{name}",
            "dst_type": "fileserver",
            "dp": "ignored",
        },
    )
    assert cluster.wait(PID, r["data"]["uuid"])["status"] == "success"
    import hashlib
    import urllib.request

    rows = [r for r in cluster.ok("GET", f"/fileserver/{PID}")["data"] if r["name"] == name]
    assert len(rows) == 1 and rows[0]["size"] == len("stored-content\n")
    assert rows[0]["md5"] == hashlib.md5(b"stored-content\n").hexdigest()
    sha = hashlib.sha256(b"stored-content\n").hexdigest()
    with open(os.path.join(cluster.home, "filestore", "blobs", sha[:2], sha)) as f:
        assert f.read() == "stored-content\n"  # content-addressed: the name is not a path
    req = urllib.request.Request(
        f"{cluster.url}/fileserver/{PID}/download?name={name}&stream=1",
        headers={"Authorization": f"Bearer {cluster.key}"},
    )
    with urllib.request.urlopen(req) as resp:
        assert resp.read() == b"stored-content\n"
    jobuuid = job(
        cluster,
        [
            {
                "plugin_type": "scp",
                "name": "push",
                "src_type": "fileserver",
                "sp": name,
                "dst_type": "builtin",
                "dst": b,
                "dp": f"/tmp/{name}.d/",
            }
        ],
    )
    assert cluster.wait(PID, start(cluster, jobuuid))["status"] == "success"
    assert ssh_nodes.ssh(b, f"cat /tmp/{name}.d/{name}").stdout == "stored-content\n"


def test_tasklog_tails_by_offset_and_serves_a_page(cluster, ssh_nodes):
    import urllib.request

    a = ssh_nodes.addresses[0]
    r = cluster.ok(
        "POST",
        f"/task/{PID}/plugin_cmd",
        {
            "node_type": "builtin",
            "node_cont": a,
            "scripts_type": "shell",
            "scripts_cont": "for i in 1 2 3; do echo line$i; sleep 0.3; done",
        },
    )
    uuid = r["data"]["uuid"]
    text, offset = "", 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        page = cluster.ok("GET", f"/slave/any/tasklog/{uuid}?offset={offset}")["data"]
        assert page["offset"] == offset + len(page["log"])
        text, offset = text + page["log"], page["offset"]
        if page["done"]:
            break
        time.sleep(0.2)
    assert "line1\nline2\nline3\n" in text and text.endswith("task success\n")
    again = cluster.ok("GET", f"/slave/any/tasklog/{uuid}?offset=0")["data"]
    assert again["log"] == text
    req = urllib.request.Request(
        f"{cluster.url}/slave/any/tasklog/{uuid}", headers={"Accept": "text/html"}
    )
    with urllib.request.urlopen(req) as resp:
        html = resp.read().decode()
        assert resp.headers["Content-Type"].startswith("text/html")
    assert uuid in html and "offset=" in html


def test_appname_appkey_headers(cluster):
    name = unique("app")
    key = cluster.run("user", "add", name, "--project", str(PID), "--role", "read")
    import json as _json
    import urllib.request

    req = urllib.request.Request(
        f"{cluster.url}/jobs/{PID}", headers={"appname": name, "appkey": key}
    )
    with urllib.request.urlopen(req) as resp:
        assert _json.loads(resp.read())["stat"] is True
    req = urllib.request.Request(
        f"{cluster.url}/jobs/{PID}", headers={"appname": "someone-else", "appkey": key}
    )
    try:
        urllib.request.urlopen(req)
        raise AssertionError("a key used under another app name must be refused")
    except urllib.error.HTTPError as e:
        assert e.code == 401


def test_empty_wk_variable_is_undefined(cluster, ssh_nodes):
    a = ssh_nodes.addresses[0]
    jobuuid = job(cluster, [cmd("env", [a], 'echo "$wk_region"')])
    cluster.ok(
        "POST",
        f"/variable/{PID}/update",
        {"jobuuid": jobuuid, "data": [{"name": "wk_region", "value": "", "describe": "d"}]},
    )
    done = cluster.wait(PID, start(cluster, jobuuid))
    assert done["status"] == "fail" and done["reason"] == "variable undef:wk_region"
    task = start(cluster, jobuuid, {"wk_region": "eu-west"})
    assert cluster.wait(PID, task)["status"] == "success"
    assert steps_of(cluster, task)[0]["hosts"][0]["stdout"] == "eu-west\n"


def test_a_lost_queue_message_does_not_lose_the_task(cluster, ssh_nodes):
    """The task row is stored but its queue message is gone: a sweep queues it again."""
    import sqlite3

    from huey import SqliteHuey

    a = ssh_nodes.addresses[0]
    cluster.stop("worker")
    r = cluster.ok(
        "POST",
        f"/task/{PID}/plugin_cmd",
        {
            "node_type": "builtin",
            "node_cont": a,
            "scripts_type": "shell",
            "scripts_cont": "echo survived",
        },
    )
    uuid = r["data"]["uuid"]
    SqliteHuey("opsjob", filename=os.path.join(cluster.home, "queue.db")).flush()
    with sqlite3.connect(os.path.join(cluster.home, "opsjob.db")) as db:
        db.execute(
            "UPDATE task SET create_time = datetime(create_time, '-2 minutes') WHERE uuid = ?",
            (uuid,),
        )
    cluster.worker()
    done = cluster.wait(PID, uuid, timeout=60)
    assert done["status"] == "success"
    assert "survived" in cluster.ok("GET", f"/slave/any/tasklog/{uuid}")["data"]["log"]
