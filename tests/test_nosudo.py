"""A node without sudo, end to end over HTTP: every step kind opsjob runs for the account the
node is reached as runs without sudo (a cmd or playbook step for `root` logged in as root, an
scp step, the kill of a running step), and a step for another account still tries sudo and
fails clearly."""

import os
import subprocess
import time
import uuid

import pytest

from tests.cluster import running as running_cluster
from tests.sshnodes import SshNodes
from tests.test_playbook_steps import tar_gz, upload

pytestmark = pytest.mark.slow
SUDO = "#!/bin/sh\necho 'sudo: not found' >&2\nexit 127\n"


@pytest.fixture(scope="module")
def nosudo(tmp_path_factory):
    """One loopback node whose sessions find a `sudo` that fails (first on their PATH), reached
    as root, attached to project 1 of a served cluster with a worker."""
    base = tmp_path_factory.mktemp("nosudo")
    shadow = base / "bin"
    shadow.mkdir()
    (shadow / "sudo").write_text(SUDO)
    (shadow / "sudo").chmod(0o755)
    os.chmod(base, 0o755)
    nodes = SshNodes(path=f"{shadow}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    try:
        (node,) = nodes.ensure(1)
        assert "sudo: not found" in nodes.ssh(node, "sudo true").stderr  # the node has no sudo
        with running_cluster(nodes, {1: "nosudo"}, nodes=1) as cluster:
            yield cluster, nodes, node
    finally:
        nodes.stop()


def hosts_of(cluster, task):
    return cluster.call("GET", f"/task/1/{task}/hosts")[1]["data"]


def cmd(cluster, node, script, **fields):
    body = {"node_type": "builtin", "node_cont": node, "scripts_type": "shell"}
    return cluster.ok("POST", "/task/1/plugin_cmd", {**body, "scripts_cont": script, **fields})[
        "data"
    ]["uuid"]


def test_a_cmd_step_for_the_login_user_runs_without_sudo(nosudo):
    cluster, nodes, node = nosudo
    assert nodes.user == "root"
    task = cmd(cluster, node, "id -un; echo $HOME", user="root")
    assert cluster.wait(1, task)["status"] == "success", cluster.ok(
        "GET", f"/slave/x/tasklog/{task}"
    )
    [host] = hosts_of(cluster, task)
    assert (host["status"], host["stdout"]) == ("ok", "root\n/root\n")


def test_an_scp_step_copies_and_chowns_without_sudo(nosudo):
    cluster, _nodes, node = nosudo
    name = f"/tmp/nosudo-{uuid.uuid4().hex[:8]}"
    with open(f"{name}.src", "w") as f:
        f.write("payload\n")
    body = {"src_type": "builtin", "src": node, "sp": f"{name}.src", "dst_type": "builtin"}
    body |= {"dst": node, "dp": f"{name}.dst", "chown": "root", "chmod": "640", "user": "root"}
    try:
        task = cluster.ok("POST", "/task/1/plugin_scp", body)["data"]["uuid"]
        done = cluster.wait(1, task)
        assert done["status"] == "success", cluster.ok("GET", f"/slave/x/tasklog/{task}")
        with open(f"{name}.dst") as f:
            assert f.read() == "payload\n"
        assert oct(os.stat(f"{name}.dst").st_mode & 0o777) == "0o640"
    finally:
        for end in (".src", ".dst"):
            if os.path.exists(name + end):
                os.unlink(name + end)


def running(marker):
    return subprocess.run(["pgrep", "-f", f"sleep {marker}"], capture_output=True).returncode == 0


def test_a_kill_stops_the_step_on_the_node_without_sudo(nosudo):
    cluster, _nodes, node = nosudo
    marker = f"42.{uuid.uuid4().int % 10**6:06d}"
    task = cmd(cluster, node, f"echo started; sleep {marker}", user="root", timeout=600)
    deadline = time.monotonic() + 60
    while not running(marker):
        assert time.monotonic() < deadline, "the step never started on the node"
        time.sleep(0.2)
    info = cluster.ok("DELETE", f"/slave/any/killtask/{task}")["info"]
    assert info.startswith("kill"), info  # done at once, or requested (a loaded machine)
    done = cluster.wait(1, task)
    assert (done["status"], done["reason"]) == ("fail", "killed by root")
    deadline = time.monotonic() + 30
    while running(marker):  # the cancel's cleanup killed it on the node, as root, no sudo
        assert time.monotonic() < deadline, "the command still runs on the node"
        time.sleep(0.2)
    log = cluster.ok("GET", f"/slave/any/tasklog/{task}")["data"]["log"]
    assert "sudo" not in log


def test_a_step_for_another_account_still_tries_sudo_and_fails_clearly(nosudo):
    cluster, nodes, node = nosudo
    task = cmd(cluster, node, "id -un", user=nodes.become_user)
    assert cluster.wait(1, task)["status"] == "fail"
    [host] = hosts_of(cluster, task)
    assert host["status"] == "failed" and "sudo: not found" in host["stderr"], host
    assert "sudo: not found" in cluster.ok("GET", f"/slave/any/tasklog/{task}")["data"]["log"]


def test_a_playbook_step_for_the_login_user_runs_without_sudo(nosudo):
    cluster, nodes, node = nosudo
    marker = f"/tmp/nosudo-pb-{uuid.uuid4().hex[:8]}"
    site = (
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        f"    - ansible.builtin.shell: id -un > {marker}\n"
    )
    name = f"nosudo-{uuid.uuid4().hex[:6]}.tar.gz"
    upload(cluster, name, tar_gz({"site.yml": site}))
    step = {"plugin_type": "playbook", "name": "pb", "node_type": "builtin", "node_cont": node}
    step |= {"source": f"fileserver:{name}", "playbook": "site.yml"}
    try:
        for user, status in (("root", "success"), (nodes.become_user, "fail")):
            body = {"name": f"pb-{uuid.uuid4().hex[:6]}", "permanent": 1}
            jobuuid = cluster.ok("POST", "/jobs/1", {**body, "data": [{**step, "user": user}]})
            task = cluster.ok("POST", "/task/1/job", {"jobuuid": jobuuid["uuid"]})["uuid"]
            done = cluster.wait(1, task, statuses=("success", "fail", "waiting"))
            log = cluster.ok("GET", f"/slave/any/tasklog/{task}")["data"]["log"]
            if status == "success":
                assert done["status"] == "success", log
                with open(marker) as f:
                    assert f.read() == "root\n"
            else:  # the step waits for a decision: it failed, and says why
                [host] = hosts_of(cluster, task)
                assert host["stderr"].endswith(": sudo: not found"), host
                assert done["status"] == "waiting" and "sudo: not found" in log, log
    finally:
        if os.path.exists(marker):
            os.unlink(marker)
