"""The command console: the page, the role and node rules, commands run on real nodes, and
the command log with its filters."""

import datetime
import time
import urllib.request

import pytest

from engine.store.db import database
from engine.store.models import CmdLog, Task
from tests.cluster import Cluster


def test_the_page_is_a_shell_without_project_data(api):
    plain = api.get("/cmd/1", key=None)
    assert plain.status_code == 200 and plain.headers["content-type"].startswith("text/html")
    assert 'location.hash.slice(1)).get("key")' in plain.text  # the key comes from #key=
    nasty = api.get(
        "/cmd/1", key=None, params={"node": "<script>alert(1)</script>", "sudo": "x\"'"}
    )
    assert nasty.text == plain.text  # nothing of the request is echoed into the page
    assert api.get("/cmd/1", key=api.user("reader", 1, "read")).status_code == 200
    # A caller that does send a key must hold a role on the project.
    assert api.get("/cmd/1", key=api.user("stranger", 2, "write")).status_code == 403


def test_roles_and_foreign_nodes(api):
    api.ok("POST", "/nodelist/1", json={"name": "web::10.0.0.1"})
    api.ok("POST", "/nodelist/2", json={"name": "db::10.0.0.2"})
    body = {"node": "10.0.0.1", "cmd": "id"}
    assert api.post("/cmd/1", json=body, key=None).status_code == 401
    assert api.post("/cmd/1", json=body, key=api.user("reader", 1, "read")).status_code == 403
    assert api.post("/cmd/1", json=body, key=api.user("other", 2, "write")).status_code == 403
    writer = api.user("writer", 1, "write")
    for node in ("10.0.0.2", "db", "10.0.0.1,10.0.0.2", "10.9.9.9"):
        r = api.post("/cmd/1", json={"node": node, "cmd": "touch /tmp/never"}, key=writer)
        assert r.status_code == 403 and r.json["info"].startswith("node:"), (node, r.text)
    assert "10.0.0.2" in r.json["info"] or "10.9.9.9" in r.json["info"]
    with database.connection_context():
        assert Task.select().count() == 0 and CmdLog.select().count() == 0  # nothing ran


def _log(pid, user, node, usr, cmd, day):
    CmdLog.create(
        projectid=pid,
        user=user,
        node=node,
        usr=usr,
        cmd=cmd,
        time=datetime.datetime(2026, 3, day, 12, 0, 0),
    )


def test_log_filters(api):
    with database.connection_context():
        _log(1, "alice", "10.0.0.1,10.0.0.2", "root", "uptime", 1)
        _log(1, "bob", "10.0.0.2", "", "df -h /var", 2)
        _log(1, "alice", "10.0.0.3", "deploy", "systemctl restart app", 3)
        _log(2, "alice", "10.0.0.1", "root", "uptime", 2)

    def ids(**query):
        return [r["cmd"] for r in api.ok("GET", "/cmd/1/log", params=query)]

    assert ids() == ["systemctl restart app", "df -h /var", "uptime"]  # newest first
    row = api.ok("GET", "/cmd/1/log", params={"cmd": "upt"})[0]
    assert row["user"] == "alice" and row["node"] == "10.0.0.1,10.0.0.2"
    assert row["usr"] == "root" and row["time"] == "2026-03-01 12:00:00"
    assert set(row) == {"id", "user", "node", "usr", "cmd", "time"}
    assert ids(user="ali") == ["systemctl restart app", "uptime"]
    assert ids(node="10.0.0.2") == ["df -h /var", "uptime"]
    assert ids(usr="dep") == ["systemctl restart app"]
    assert ids(cmd="restart") == ["systemctl restart app"]
    assert ids(time_start="2026-03-02") == ["systemctl restart app", "df -h /var"]
    assert ids(time_end="2026-03-02") == ["df -h /var", "uptime"]
    assert ids(time_start="2026-03-02", time_end="2026-03-02") == ["df -h /var"]
    assert ids(pagesize=1, page=2) == ["df -h /var"]
    assert ids(user="nobody") == []
    r = api.get("/cmd/1/log", params={"time_start": "yesterday"})
    assert r.status_code == 400 and r.json["info"].startswith("time_start")
    assert api.get("/cmd/1/log", key=api.user("other", 2, "read")).status_code == 403
    assert len(api.ok("GET", "/cmd/2/log")) == 1


# -- on real nodes ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(ssh_nodes):
    c = Cluster(ssh_nodes)
    c.run("project", "add", "1", "console")
    c.run("project", "add", "2", "other")
    c.serve()
    c.worker()
    c.add_nodes(1, ssh_nodes.ensure(2))
    yield c
    c.close()


def console(cluster, body, timeout=90):
    """Send a console command; it answers at once, so follow it until it is done."""
    started = time.monotonic()
    out = cluster.ok("POST", "/cmd/1", body)["data"]
    assert time.monotonic() - started < 5 and out["done"] is False
    assert {n["status"] for n in out["nodes"]} == {"pending"}
    while not out["done"]:
        assert time.monotonic() - started < timeout, out
        time.sleep(0.2)
        out = cluster.ok("GET", f"/cmd/1/result/{out['uuid']}")["data"]
    return out


@pytest.mark.slow
def test_commands_run_on_each_node(cluster, ssh_nodes):
    a, b = ssh_nodes.addresses[:2]
    nodes = f"{b},{a}"
    cmd = 'echo "on $(echo $SSH_CONNECTION | cut -d" " -f3)"; echo oops >&2; exit 3'
    out = console(cluster, {"node": nodes, "cmd": cmd})
    assert out["done"] is True and out["status"] == "fail"
    assert [n["node"] for n in out["nodes"]] == [b, a]  # in the order asked for
    for n in out["nodes"]:
        assert n["status"] == "failed" and n["rc"] == 3, n
        assert n["stdout"] == f"on {n['node']}\n" and "oops" in n["stderr"]

    who = console(cluster, {"node": a, "cmd": "id -un", "sudo": ssh_nodes.become_user})
    [node] = who["nodes"]
    assert node["status"] == "ok" and node["rc"] == 0
    assert node["stdout"] == f"{ssh_nodes.become_user}\n"

    log = cluster.ok("GET", "/cmd/1/log?cmd=SSH_CONNECTION")["data"]
    assert len(log) == 1 and log[0]["cmd"] == cmd and log[0]["user"] == "root"
    assert log[0]["node"] == ",".join(sorted([a, b])) and log[0]["usr"] == ""
    sudo = cluster.ok("GET", f"/cmd/1/log?usr={ssh_nodes.become_user}")["data"]
    assert [r["cmd"] for r in sudo] == ["id -un"]

    # The command is an ordinary task too: it is in the history with its log.
    task = cluster.ok("GET", f"/task/1/{out['uuid']}")["data"]
    assert task["name"] == "console" and task["jobtype"] == "plugin_cmd"
    # The result of a command is the project's own: another project's key sees nothing.
    other = cluster.run("user", "add", "outsider", "--project", "2", "--role", "write")
    status, _ = cluster.call("GET", f"/cmd/1/result/{out['uuid']}", key=other)
    assert status == 403
    status, _ = cluster.call("GET", f"/cmd/2/result/{out['uuid']}", key=other)
    assert status == 404


def test_database_consoles_are_refused_by_name(api):
    for feature, name in (("mysql", "MySQL"), ("redis", "Redis")):
        for path in (f"/cmd/ext/{feature}", f"/cmd/ext/{feature}/1"):
            r = api.get(path)
            assert r.status_code == 501 and r.json["stat"] is False, (path, r.text)
            assert f"{name} console" in r.json["info"] and f"/cmd/ext/{feature}" in r.json["info"]
    assert api.get("/cmd/ext/mongo").status_code == 404


@pytest.mark.slow
def test_a_foreign_node_runs_nothing(cluster, ssh_nodes):
    a = ssh_nodes.addresses[0]
    other = ssh_nodes.ensure(3)[2]
    cluster.add_nodes(2, [other])
    marker = f"/tmp/console-foreign-{other}"
    status, body = cluster.call(
        "POST", "/cmd/1", {"node": f"{a},{other}", "cmd": f"touch {marker}"}
    )
    assert status == 403 and body["info"].startswith("node:") and other in body["info"]
    assert ssh_nodes.ssh(a, f"test -e {marker}").returncode == 1
    assert cluster.ok("GET", f"/cmd/1/log?cmd={marker}")["data"] == []
    page = urllib.request.urlopen(f"{cluster.url}/cmd/1?node={a}").read().decode()
    assert "<form" in page and a not in page


def test_the_terminal_sudos_only_to_another_account(tmp_path):
    from engine.ansible.playbook import Host
    from engine.interactive.terminal import _ssh_argv

    root = Host("a", {"ansible_host": "10.0.0.1", "ansible_user": "root"})
    assert _ssh_argv(root, "root", str(tmp_path))[-2:] == ["--", "10.0.0.1"]  # no sudo
    assert _ssh_argv(root, "", str(tmp_path))[-2:] == ["--", "10.0.0.1"]
    assert _ssh_argv(root, "deploy", str(tmp_path))[-4:] == ["sudo", "-i", "-u", "deploy"]
    unknown = Host("b", {"ansible_host": "10.0.0.2"})  # ssh's own configuration picks the login
    assert _ssh_argv(unknown, "root", str(tmp_path))[-4:] == ["sudo", "-i", "-u", "root"]
