"""A project reaches only its own machines, over the real API on loopback sshd nodes.

The worker's own SSH configuration opens every node here (as one deployment key often does),
so nothing but opsjob's own check keeps a project's runs on its machines: node groups, inline
inventories, ``$variables``, scp sources and destinations, the console and the dry-run must
all refuse a host that connects anywhere else, naming the group and the host. Only a group an
admin marked ``reach_any`` may reach other hosts.
"""

import json
import os
import re
import uuid as uuidlib

import pytest

from engine.machines import reach
from tests.cluster import Cluster, cmd_step, unique

MINE, THEIRS = 1, 2  # project 1 owns nodes 0 and 1; project 2 (the attacker's) owns node 2
SSH_ARGS = "-o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no -o LogLevel=ERROR"


MACHINES = [
    {"name": "web1", "inip": "10.0.0.1", "exip": "", "vars": {"ansible_host": "10.0.0.1"}},
    {
        "name": "web2",
        "inip": "10.0.0.2",
        "exip": "8.8.4.4",
        "vars": {
            "ansible_host": "10.0.0.2",
            "ansible_port": 2222,
            "ansible_ssh_common_args": "-o StrictHostKeyChecking=no",
        },
    },
    {"name": "box", "inip": "10.0.0.3", "exip": "", "vars": {"ansible_port": 2200}},
    {
        "name": "box",
        "inip": "10.0.0.3",
        "exip": "",
        "vars": {"ansible_port": 2201, "ansible_connection": "local"},
    },
]


def test_where_a_host_may_connect():
    own = reach.Machines(7, MACHINES)
    for name, hostvars in (
        ("web1", {}),  # by name
        ("x", {"ansible_host": "10.0.0.1", "ansible_user": "deploy", "ansible_become": True}),
        ("x", {"ansible_host": "8.8.4.4", "ansible_port": "2222"}),  # exip, port as text
        ("x", {"ansible_host": "web2", "ansible_port": 2222, "ansible_connection": "ssh"}),
        # a machine's own (admin-set) variables are its own to use
        ("x", {**MACHINES[1]["vars"]}),
        ("box", {"ansible_port": 2201, "ansible_connection": "local"}),
    ):
        assert own.problem(name, hostvars) is None, (name, hostvars)
    for name, hostvars, says in (
        ("db9", {}, "host db9 connects to db9, which is not a machine of project 7"),
        ("web1", {"ansible_host": "10.0.0.9"}, "connects to 10.0.0.9, which is not"),
        ("x", {"ansible_host": "10.0.0.2"}, "port the default of 10.0.0.2, but machine web2"),
        ("x", {"ansible_host": "10.0.0.3", "ansible_port": 22}, "listens on 2200, 2201"),
        ("x", {"ansible_host": "10.0.0.1", "ansible_connection": "local"}, "ansible_connection"),
        ("box", {"ansible_port": 2200, "ansible_connection": "local"}, "ansible_connection"),
        ("x", {"ansible_host": "10.0.0.1", "ansible_ssh_host": "10.0.9.9"}, "ansible_ssh_host"),
        ("x", {"ansible_host": "10.0.0.1", "ansible_ssh_port": 22}, "ansible_ssh_port"),
        ("x", {"ansible_host": "10.0.0.1", "ansible_become_method": "pfexec"}, "become_method"),
        (
            "x",
            {"ansible_host": "10.0.0.2", "ansible_port": 2222, "ansible_ssh_common_args": "-J a"},
            "sets ansible_ssh_common_args, which may change where or how the worker connects",
        ),
        ("x", {"ansible_host": "10.0.0.1", "ansible_control_path": "/tmp/x"}, "control_path"),
        ("x", {"ansible_host": "10.0.0.1", "ansible_docker_extra_args": "-H x"}, "docker"),
    ):
        problem = own.problem(name, hostvars)
        assert problem and problem.startswith(f"host {name} ") and says in problem, problem


@pytest.fixture(scope="module")
def cluster(ssh_nodes):
    c = Cluster(ssh_nodes)
    c.run("project", "add", str(MINE), "mine")
    c.run("project", "add", str(THEIRS), "theirs")
    c.serve()
    c.worker(
        env={
            "ANSIBLE_REMOTE_USER": ssh_nodes.user,
            "ANSIBLE_REMOTE_PORT": str(ssh_nodes.port),
            "ANSIBLE_PRIVATE_KEY_FILE": ssh_nodes.key_path,
            "ANSIBLE_SSH_COMMON_ARGS": SSH_ARGS,
        }
    )
    a = ssh_nodes.ensure(4)  # node 3 is nobody's machine
    c.add_nodes(MINE, a[:2])
    c.add_nodes(THEIRS, [a[2]])
    c.writer = c.run("user", "add", unique("w"), "--project", str(THEIRS), "--role", "write")
    c.foreign, c.own, c.outside = a[0], a[2], a[3]
    yield c
    c.close()


def marker():
    return f"/tmp/oj-reach-{uuidlib.uuid4().hex[:10]}"


def save_group(c, body, key=None, pid=THEIRS):
    return c.ok("POST", f"/nodegroup/{pid}", body, key=key or c.writer)["id"]


def inline(text):
    return {"inventory": text}


def run_cmd(c, node_type, node_cont, script, key=None, pid=THEIRS):
    body = {
        "name": "s",
        "user": "",
        "node_type": node_type,
        "node_cont": str(node_cont),
        "scripts_type": "shell",
        "scripts_cont": script,
        "scripts_argv": "",
    }
    task = c.ok("POST", f"/task/{pid}/plugin_cmd", body, key=key or c.writer)["data"]["uuid"]
    return task, c.wait(pid, task, statuses=("success", "fail", "refuse", "waiting"))


def assert_refused(done, gid, name, host, *also):
    assert done["status"] == "fail", done
    reason = done["reason"]
    assert reason.startswith(f"node group '{name}' (id {gid}) "), reason
    assert re.search(f"host {re.escape(host)}[ :]", reason), reason
    assert all(a in reason for a in also), reason


def test_a_node_group_naming_a_foreign_machine_runs_nothing(cluster):
    """The reproduction: a write key saves {"plugin": "node", "params": <a foreign machine>}."""
    gid = save_group(cluster, {"name": unique("g"), "plugin": "node", "params": cluster.foreign})
    name = cluster.ok("GET", f"/nodegroup/{THEIRS}/{gid}")["data"]["name"]
    status, body = cluster.call("GET", f"/nodegroup/{THEIRS}/{gid}/nodelist")
    assert status == 400 and f"node group '{name}' (id {gid}) is refused" in body["info"]
    expected = f"host {cluster.foreign} connects to {cluster.foreign}, which is not a machine"
    assert f"{expected} of project {THEIRS}" in body["info"]
    flag = marker()
    _, done = run_cmd(cluster, "group", gid, f"id > {flag}")
    assert_refused(done, gid, name, cluster.foreign, "not a machine of project 2")
    assert not os.path.exists(flag)


def test_an_inline_inventory_pointing_elsewhere_runs_nothing(cluster, ssh_nodes):
    """The reproduction: inline text with ansible_host: <another machine>."""
    name = unique("i")
    text = f"[a]\nx ansible_host={cluster.foreign} ansible_port={ssh_nodes.port}\n"
    gid = save_group(cluster, {"name": name, "plugin": "ansible", "params": inline(text)})
    flag = marker()
    _, done = run_cmd(cluster, "group", gid, f"id > {flag}")
    assert_refused(done, gid, name, "x", f"connects to {cluster.foreign}")
    assert not os.path.exists(flag)
    # the same text pointing at the project's own machine runs
    own = f"[a]\ny ansible_host={cluster.own} ansible_port={ssh_nodes.port}\n"
    gid = save_group(cluster, {"name": unique("i"), "plugin": "ansible", "params": inline(own)})
    _, done = run_cmd(cluster, "group", gid, f"echo $SSH_CONNECTION > {flag}")
    assert done["status"] == "success", done
    with open(flag) as f:
        assert f.read().split()[2] == cluster.own
    os.unlink(flag)


def test_a_variable_naming_a_host_of_a_foreign_group_runs_nothing(cluster, ssh_nodes):
    name, host = unique("v"), unique("h")
    text = f"[a]\n{host} ansible_host={cluster.foreign} ansible_port={ssh_nodes.port}\n"
    gid = save_group(cluster, {"name": name, "plugin": "ansible", "params": inline(text)})
    flag = marker()
    steps = [cmd_step(f"id > {flag}", "$target", name="s", node_type="variable")]
    jobuuid = cluster.ok(
        "POST",
        f"/jobs/{THEIRS}",
        {"name": unique("j"), "permanent": 1, "data": steps},
        key=cluster.writer,
    )["uuid"]
    task = cluster.ok(
        "POST",
        f"/task/{THEIRS}/job",
        {"jobuuid": jobuuid, "variable": {"target": host}},
        key=cluster.writer,
    )["uuid"]
    done = cluster.wait(THEIRS, task, statuses=("success", "fail", "refuse", "waiting"))
    assert_refused(done, gid, name, host, f"connects to {cluster.foreign}")
    assert not os.path.exists(flag)


def test_scp_from_or_to_a_foreign_machine_copies_nothing(cluster, ssh_nodes):
    name = unique("s")
    text = f"[a]\nx ansible_host={cluster.foreign} ansible_port={ssh_nodes.port}\n"
    gid = save_group(cluster, {"name": name, "plugin": "ansible", "params": inline(text)})
    source = marker()
    with open(source, "w") as f:  # on every node: they share this machine's file system
        f.write("secret of project 1\n")
    try:
        for src_type, src, dst_type, dst in (
            ("group", gid, "builtin", cluster.own),  # pull a foreign file
            ("builtin", cluster.own, "group", gid),  # push onto a foreign machine
        ):
            target = marker()
            body = {
                "src_type": src_type,
                "src": str(src),
                "sp": source,
                "dst_type": dst_type,
                "dst": str(dst),
                "dp": target + "/",
            }
            task = cluster.ok("POST", f"/task/{THEIRS}/plugin_scp", body, key=cluster.writer)
            done = cluster.wait(THEIRS, task["data"]["uuid"])
            assert_refused(done, gid, name, "x", f"connects to {cluster.foreign}")
            assert not os.path.exists(target), (src_type, dst_type)
    finally:
        os.unlink(source)


def test_the_console_refuses_a_host_of_a_foreign_group(cluster, ssh_nodes):
    name = unique("c")
    text = f"[a]\nsneaky ansible_host={cluster.foreign} ansible_port={ssh_nodes.port}\n"
    gid = save_group(cluster, {"name": name, "plugin": "ansible", "params": inline(text)})
    flag = marker()
    status, body = cluster.call(
        "POST", f"/cmd/{THEIRS}", {"node": "sneaky", "cmd": f"id > {flag}"}, key=cluster.writer
    )
    assert status == 403, body
    assert body["info"].startswith(f"node: node group '{name}' (id {gid}) is refused: host sneaky")
    assert not os.path.exists(flag)
    assert cluster.ok("GET", f"/cmd/{THEIRS}/log?cmd={flag}")["data"] == []


def test_the_dry_run_reports_the_refused_group(cluster):
    name = unique("d")
    gid = save_group(cluster, {"name": name, "plugin": "node", "params": cluster.foreign})
    job = unique("j")
    steps = [cmd_step("true", gid, name="s", node_type="group")]
    cluster.ok(
        "POST",
        f"/jobs/{THEIRS}",
        {"name": job, "permanent": 1, "data": steps},
        key=cluster.writer,
    )
    call = {"project_id": THEIRS, "uuid": uuidlib.uuid4().hex[:12]}
    status, body = cluster.call(
        "POST",
        "/third/interface/dry-run",
        {**call, "params": {"jobname": job, "variable": {}}},
        key=cluster.writer,
    )
    assert status == 400, body
    refusal = f"step 1 (s): node group '{name}' (id {gid}) is refused: host {cluster.foreign} "
    assert body["data"]["problems"][0].startswith(refusal), body
    assert refusal in body["info"]


def test_connection_variables_that_leave_the_machine_are_refused(cluster, ssh_nodes, tmp_path):
    """ansible_connection=local runs on the worker; a ProxyCommand runs a command there."""
    port, own = ssh_nodes.port, cluster.own
    flag = marker()
    # a writer's inline text may set neither, on a host or through group vars
    for text, var in (
        (
            f"[a]\nx ansible_host={own} ansible_port={port} ansible_connection=local\n",
            "ansible_connection",
        ),
        (
            f"all:\n  vars:\n    ansible_ssh_common_args: -o ProxyCommand='touch {flag}'\n"
            f"  hosts:\n    x: {{ansible_host: {own}, ansible_port: {port}}}\n",
            "ansible_ssh_common_args",
        ),
    ):
        name = unique("n")
        gid = save_group(cluster, {"name": name, "plugin": "ansible", "params": inline(text)})
        _, done = run_cmd(cluster, "group", gid, f"id > {flag}")
        assert_refused(done, gid, name, "x", var)
        assert not os.path.exists(flag)
    # nor may an admin's file source that the admin did not mark reach_any
    for hostvars in (
        {"ansible_connection": "local"},
        {"ansible_ssh_common_args": f"-o ProxyCommand='touch {flag}'"},
        {"ansible_ssh_executable": "/bin/true"},
        {"ansible_ssh_host": cluster.foreign},
    ):
        source = tmp_path / f"{unique('h')}.yml"
        host = {"ansible_host": own, "ansible_port": port, **hostvars}
        source.write_text(json.dumps({"all": {"hosts": {"p1": host}}}))
        name = unique("a")
        gid = save_group(
            cluster, {"name": name, "plugin": "ansible", "params": str(source)}, key=cluster.key
        )
        _, done = run_cmd(cluster, "group", gid, f"id > {flag}")
        assert_refused(done, gid, name, "p1", f"sets {next(iter(hostvars))}")
        assert not os.path.exists(flag)


def test_only_an_admin_lets_a_group_reach_other_hosts(cluster, ssh_nodes, tmp_path):
    port, outside = ssh_nodes.port, cluster.outside
    source = tmp_path / "outside.yml"
    source.write_text(
        json.dumps({"all": {"hosts": {"ext": {"ansible_host": outside, "ansible_port": port}}}})
    )
    body = {"name": unique("t"), "plugin": "ansible", "params": str(source)}
    # without the mark, even an admin's group stays on the machine list
    gid = save_group(cluster, body, key=cluster.key)
    flag = marker()
    _, done = run_cmd(cluster, "group", gid, f"id > {flag}")
    assert_refused(done, gid, body["name"], "ext", f"connects to {outside}")
    assert not os.path.exists(flag)
    # a writer can neither set the mark nor keep it on an admin's group
    status, answer = cluster.call(
        "POST", f"/nodegroup/{THEIRS}", {**body, "reach_any": True}, key=cluster.writer
    )
    assert status == 403, answer
    node_group = {"name": unique("t"), "plugin": "node", "params": outside, "reach_any": True}
    status, answer = cluster.call("POST", f"/nodegroup/{THEIRS}", node_group, key=cluster.writer)
    assert status == 403 and answer["info"].startswith("reach_any: only an admin"), answer
    # and only a group that only an admin may save can carry it
    status, answer = cluster.call("POST", f"/nodegroup/{THEIRS}", node_group)
    assert status == 400 and answer["info"].startswith("reach_any: only a group"), answer
    # an admin marks it: it reaches the host outside the machine list
    cluster.ok("POST", f"/nodegroup/{THEIRS}/{gid}", {**body, "reach_any": True})
    assert cluster.ok("GET", f"/nodegroup/{THEIRS}/{gid}")["data"]["reach_any"] is True
    status, _ = cluster.call(
        "POST", f"/nodegroup/{THEIRS}/{gid}", {**body, "name": "x"}, key=cluster.writer
    )
    assert status == 403
    _, done = run_cmd(cluster, "group", gid, f"echo $SSH_CONNECTION > {flag}")
    assert done["status"] == "success", done
    with open(flag) as f:
        assert f.read().split()[2] == outside
    os.unlink(flag)
