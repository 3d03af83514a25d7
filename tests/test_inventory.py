"""Node groups are Ansible inventory plugins: every kind of source, host patterns, the policy
on what a source may do, clear errors, real runs, and opsjob as an inventory for the shell."""

import json
import os
import subprocess
import sys
import textwrap
import uuid as uuidlib

import pytest

from engine.errors import InvalidInput
from engine.machines import inventory, nodes
from engine.store.db import database
from engine.store.models import Nodegroup, Nodelist
from tests.cluster import Cluster, cmd_step

BIN = os.path.dirname(sys.executable)
MACHINES = [
    {"name": "web1", "inip": "10.0.0.1", "exip": "", "vars": {"ansible_host": "10.0.0.1"}},
    {
        "name": "web2",
        "inip": "10.0.0.2",
        "exip": "8.8.4.4",
        "vars": {"ansible_host": "10.0.0.2", "ansible_port": 2222},
    },
    {"name": "db1", "inip": "10.0.1.1", "exip": "", "vars": {"ansible_host": "10.0.1.1"}},
]


def write(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(textwrap.dedent(text))
    os.chmod(path, mode)
    return str(path)


def ini_inventory(path, address, port, key):
    """Hosts w1..w3 (web), d1 (db); prod = d1 plus w1, w2 (through children)."""
    a = address
    return write(
        path,
        f"""\
        [web]
        w1 ansible_host={a[0]} ansible_port={port}
        w2 ansible_host={a[1]} ansible_port={port}
        w3 ansible_host={a[2]} ansible_port={port}

        [db]
        d1 ansible_host={a[3]} ansible_port={port}

        [frontline]
        w1
        w2

        [prod:children]
        frontline
        db

        [all:vars]
        ansible_user=root
        ansible_ssh_private_key_file={key}
        ansible_ssh_common_args=-o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no
        """,
    )


def names(result):
    assert not result.error, result.error
    return [name for name, _ in result.hosts]


def test_every_kind_of_source(tmp_path, monkeypatch):
    monkeypatch.setenv("OPSJOB_SECRET_KEY", "never-shown-to-inventory-scripts")
    ini = ini_inventory(
        tmp_path / "hosts.ini", ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"], 22, "/k"
    )
    folder = tmp_path / "dir"
    (folder / "group_vars").mkdir(parents=True)
    write(folder / "10-hosts.ini", "[app]\napp1 ansible_host=10.1.0.1\napp2 ansible_port=2200\n")
    write(folder / "group_vars" / "app.yml", "ansible_user: deploy\n")
    write(
        folder / "20-big.yml",
        "plugin: constructed\nstrict: false\ngroups:\n  big: ansible_port == 2200\n",
    )
    script = write(
        tmp_path / "inv.py",
        f"""\
        #!{sys.executable}
        import json, os
        user = "leak" if any(k.startswith("OPSJOB_") for k in os.environ) else "clean"
        print(json.dumps({{"api": {{"hosts": ["api1", "api2"], "vars": {{"ansible_port": 2022}}}},
                          "_meta": {{"hostvars": {{"api2": {{"ansible_host": "10.2.0.2",
                                                             "ansible_user": user}}}}}}}}))
        """,
        mode=0o755,
    )
    generator = write(
        tmp_path / "gen.yml",
        """\
        plugin: ansible.builtin.generator
        hosts:
          name: "{{ app }}-{{ env }}"
          parents: [{name: "{{ env }}"}]
        layers:
          app: [shop, blog]
          env: [prod, test]
        """,
    )
    groups = {
        "node": ("node", "db1, web2,10.0.0.1,db1,ghost"),
        "node-list": ("node", ["web1", "ghost"]),
        "by-ip": ("nodelist", "10.0.0.*"),
        "by-regex": ("nodelist", ["~^db", "8.8.4.4"]),
        "all-machines": ("nodelist", ""),
        "ini": ("ansible", {"path": ini, "pattern": "web:&prod"}),
        "ini-slice": ("ansible", {"path": ini, "pattern": "web[1:2]"}),
        "ini-exclude": ("ansible", {"path": ini, "pattern": "prod:!db"}),
        "ini-string": ("ansible", ini),
        "dir": ("ansible", {"path": str(folder), "pattern": "big"}),
        "script": ("ansible", {"path": script}),
        "generator": ("ansible", {"path": generator, "pattern": "prod"}),
        "yaml": (
            "ansible",
            {
                "inventory": "all:\n  children:\n    web:\n      hosts:\n"
                "        y1: {ansible_host: 10.9.0.1}\n        y2:\n"
                "      vars: {ansible_port: 2201}\n",
                "pattern": "web",
            },
        ),
        "ini-text": (
            "ansible",
            {"inventory": "[a]\ni1 ansible_user=ops\n[b]\ni2\n", "format": "ini"},
        ),
        "text-string": ("ansible", "[a]\ns1\ns2\n"),
        "no-localhost": ("ansible", {"inventory": "[a]\nx1\n", "pattern": "localhost"}),
    }
    found = inventory.resolve(
        [{"key": k, "plugin": p, "params": v} for k, (p, v) in groups.items()], MACHINES
    )
    assert names(found["node"]) == ["db1", "web2", "10.0.0.1", "ghost"]
    hosts = dict(found["node"].hosts)
    assert hosts["web2"] == {"ansible_host": "10.0.0.2", "ansible_port": 2222}
    assert hosts["10.0.0.1"] == {"ansible_host": "10.0.0.1"} and hosts["ghost"] == {}
    assert names(found["node-list"]) == ["web1", "ghost"]
    assert names(found["by-ip"]) == ["web1", "web2"]
    assert names(found["by-regex"]) == ["web2", "db1"]
    assert names(found["all-machines"]) == ["web1", "web2", "db1"]
    assert names(found["ini"]) == ["w1", "w2"]
    w1 = dict(found["ini"].hosts)["w1"]
    assert w1["ansible_port"] == 22 and w1["ansible_user"] == "root"  # host and group vars
    assert w1["ansible_ssh_private_key_file"] == "/k"
    assert names(found["ini-slice"]) == ["w2", "w3"]
    assert sorted(names(found["ini-exclude"])) == ["w1", "w2"]
    assert sorted(names(found["ini-string"])) == ["d1", "w1", "w2", "w3"]
    assert names(found["dir"]) == ["app2"]  # a plugin config inside a directory source
    assert dict(found["dir"].hosts)["app2"] == {"ansible_port": 2200, "ansible_user": "deploy"}
    assert names(found["script"]) == ["api1", "api2"]
    assert dict(found["script"].hosts)["api2"] == {
        "ansible_host": "10.2.0.2",
        "ansible_port": 2022,
        "ansible_user": "clean",  # no opsjob setting reaches an inventory script
    }
    assert sorted(names(found["generator"])) == ["blog-prod", "shop-prod"]
    assert names(found["yaml"]) == ["y1", "y2"]
    assert dict(found["yaml"].hosts)["y1"] == {"ansible_host": "10.9.0.1", "ansible_port": 2201}
    assert names(found["ini-text"]) == ["i1", "i2"]
    assert dict(found["ini-text"].hosts)["i1"] == {"ansible_user": "ops"}
    assert names(found["text-string"]) == ["s1", "s2"]
    # Ansible's implicit localhost (a local connection) never becomes a node
    assert names(found["no-localhost"]) == []


def test_inline_text_may_only_choose_where_to_log_in(tmp_path):
    marker = tmp_path / "pwned"
    jinja = "{{ lookup('pipe', 'touch " + str(marker) + "') }}"
    cases = {
        "ok": "[a]\nh1 ansible_host=10.0.0.9 ansible_port=22 ansible_user=ops app_setting=kept\n",
        "local": "[a]\nh1 ansible_connection=local\n",
        "proxy": "[a]\nh1 ansible_ssh_common_args='-o ProxyCommand=touch /tmp/x'\n",
        "keyfile": "[a]\nh1 ansible_ssh_private_key_file=/etc/ssh/ssh_host_ed25519_key\n",
        "badname": "[a]\n'a b'\n",
        "jinja-host": f'all:\n  hosts:\n    h1: {{ansible_host: "{jinja}"}}\n',
        "jinja-other": f'all:\n  hosts:\n    h1: {{note: "{jinja}"}}\n',
    }
    found = inventory.resolve(
        [{"key": k, "plugin": "ansible", "params": {"inventory": v}} for k, v in cases.items()],
        [],
    )
    assert found["ok"].hosts == [
        ("h1", {"ansible_host": "10.0.0.9", "ansible_port": 22, "ansible_user": "ops"})
    ]
    assert found["local"].error.startswith("host h1: ansible_connection: must be one of ssh")
    assert "ansible_ssh_common_args: not allowed in inline inventory text" in found["proxy"].error
    assert "ansible_ssh_private_key_file: not allowed" in found["keyfile"].error
    assert found["badname"].error  # whatever Ansible makes of it, it is no node name
    assert "Jinja" in found["jinja-host"].error or "must match" in found["jinja-host"].error
    assert found["jinja-other"].hosts == [("h1", {})]  # other variables never reach a run
    # an admin's file source may set any connection variable, but no Jinja template
    source = write(tmp_path / "t.yml", f'all:\n  hosts:\n    h2: {{ansible_host: "{jinja}"}}\n')
    found = inventory.resolve([{"key": "f", "plugin": "ansible", "params": source}], [])
    assert "holds a Jinja template" in found["f"].error
    assert not marker.exists()  # nothing was ever evaluated


def test_a_slow_source_is_stopped(tmp_path):
    script = write(tmp_path / "slow.sh", "#!/bin/sh\nsleep 30\n", mode=0o755)
    found = inventory.resolve([{"key": "s", "plugin": "ansible", "params": script}], [], timeout=1)
    assert found["s"].error == "the inventory sources took longer than 1 s (stopped)"
    out = subprocess.run(["pgrep", "-f", script], capture_output=True, text=True)
    assert out.stdout == ""  # the script was killed with its parser


def test_broken_sources_say_why(tmp_path):
    write(tmp_path / "bad.ini", "[web\nh1\n")
    failing = write(tmp_path / "fail.sh", "#!/bin/sh\necho 'no backend' >&2\nexit 3\n", 0o755)
    cases = {
        "missing": ("ansible", {"path": str(tmp_path / "nope.ini")}, "does not exist"),
        "syntax": ("ansible", {"path": str(tmp_path / "bad.ini")}, "cannot parse"),
        "script": (
            "ansible",
            {"path": failing},
            "Standard error from inventory script: no backend",
        ),
        "relative": ("ansible", {"path": "hosts.ini"}, "is not an absolute path"),
        "yaml": ("ansible", {"inventory": "all: [oops\n"}, "YAML"),
        "pattern": ("ansible", {"inventory": "[a]\nh1\n", "pattern": "~("}, "Invalid host list"),
        "params": ("node", {"a": 1}, "must be a comma separated string or a list"),
        "name": ("node", "ok,bad name", "'bad name' is not a node name"),
        "regex": ("nodelist", "~(", "bad regular expression"),
        "unknown": ("nosuch", "x", "no node group plugin 'nosuch'"),
    }
    found = inventory.resolve(
        [{"key": k, "plugin": p, "params": v} for k, (p, v, _) in cases.items()], MACHINES
    )
    for key, (_, _, cause) in cases.items():
        assert found[key].hosts == [] and cause in found[key].error, (key, found[key].error)


def test_a_broken_group_is_400_naming_it(api, tmp_path):
    failing = write(tmp_path / "fail.sh", "#!/bin/sh\necho 'no backend' >&2\nexit 3\n", 0o755)
    for name, params, cause in (
        ("missing", {"path": str(tmp_path / "nope.ini")}, "does not exist"),
        ("script", failing, "no backend"),
    ):
        gid = api.post(
            "/nodegroup/1", json={"name": name, "plugin": "ansible", "params": params}
        ).json["id"]
        r = api.get(f"/nodegroup/1/{gid}/nodelist")
        assert r.status_code == 400, (name, r.text)
        info = r.json["info"]
        assert info.startswith(f"params: node group '{name}' (id {gid}) cannot be resolved: ")
        assert cause in info, (name, info)


def test_nodelist_route_and_hostvars(api, tmp_path):
    source = write(
        tmp_path / "h.yml",
        "all:\n  hosts:\n    h1: {ansible_host: 10.0.0.5, ansible_password: s3cret, "
        "ansible_become_password: s3cret2}\n    h2: {ansible_port: 2222}\n",
    )
    body = {"name": "g", "plugin": "ansible", "params": source, "reach_any": True}
    gid = api.post("/nodegroup/1", json=body).json["id"]
    assert api.ok("GET", f"/nodegroup/1/{gid}/nodelist") == ["h1", "h2"]
    r = api.get(f"/nodegroup/1/{gid}/nodelist", params={"hostvars": "1"})
    assert r.json["data"] == {"h1": {"ansible_host": "10.0.0.5"}, "h2": {"ansible_port": 2222}}
    assert "s3cret" not in r.text
    other = api.post("/nodegroup/2", json={"name": "g", "plugin": "node", "params": "x"})
    assert api.get(f"/nodegroup/1/{other.json['id']}/nodelist").status_code == 404
    assert api.get("/nodegroup/1/999999/nodelist").status_code == 404


def test_only_an_admin_saves_sources_that_run_code(api, tmp_path):
    writer = api.user("writer", 1, "write")
    source = write(tmp_path / "h.ini", "[a]\nh1\n")

    def save(params, plugin="ansible", key=writer, name="g"):
        return api.post(
            "/nodegroup/1", key=key, json={"name": name, "plugin": plugin, "params": params}
        )

    for params in (
        source,
        {"path": source},
        {"inventory": "plugin: constructed\n", "trusted": True},
        {"inventory": "[a]\nh1\n", "path": source},
    ):
        r = save(params)
        assert r.status_code == 403 and r.json["info"].startswith("params: only an admin"), r.text
    r = save("x", plugin="custom")  # a plugin opsjob cannot vouch for
    assert r.status_code == 403
    r = save({"inventory": "[a]\nh1 ansible_host={{ lookup('env','HOME') }}\n"})
    assert r.status_code == 400 and r.json["info"].startswith("params.inventory: must not hold")
    r = save({"inventory": "[a]\nh1\n", "hosts": "x"})
    assert r.status_code == 400 and r.json["info"].startswith("params: unknown key 'hosts'")
    r = save("x", plugin="opsjob")
    assert r.status_code == 400 and r.json["info"].startswith("plugin:")
    # what a writer may do: node lists, machine patterns, plain inline text
    assert save("a,b", plugin="node", name="n").status_code == 200
    assert save("10.0.*", plugin="nodelist", name="m").status_code == 200
    assert save({"inventory": "[a]\nh1\n", "pattern": "a"}, name="i").status_code == 200
    assert save("[a]\nh2\n", name="s").status_code == 200
    # an admin's path group cannot be edited by a writer (it would keep the path)
    gid = save({"path": source}, key="admin", name="p").json["id"]
    r = api.post(
        f"/nodegroup/1/{gid}",
        key=writer,
        json={"name": "p2", "plugin": "ansible", "params": {"path": source}},
    )
    assert r.status_code == 403


def test_steps_resolve_groups_and_their_hosts(api, tmp_path):
    """A builtin node list may name hosts of the project's groups; a broken group fails."""
    with database.connection_context():
        Nodelist.create(projectid=1, name="m1", inip="10.0.0.1")
        Nodelist.create(projectid=1, name="m2", inip="10.0.3.1", hostvars='{"ansible_port": 2200}')
        group = Nodegroup.create(
            projectid=1,
            name="g",
            plugin="ansible",
            params=json.dumps({"inventory": "[a]\nh1 ansible_host=10.0.3.1 ansible_port=2200\n"}),
        )
        broken = Nodegroup.create(
            projectid=1, name="b", plugin="ansible", params=json.dumps(str(tmp_path / "nope"))
        )
        found = nodes.resolve(1, "builtin", "m1,h1,h9", {})
        assert [(h.name, h.vars) for h in found.hosts] == [
            ("m1", {"ansible_host": "10.0.0.1", "ansible_connection": "ssh"}),
            ("h1", {"ansible_host": "10.0.3.1", "ansible_port": 2200, "ansible_connection": "ssh"}),
        ]
        assert found.refused == ["h9"]
        assert nodes.resolve(2, "builtin", "h1", {}).refused == ["h1"]
        assert [h.name for h in nodes.resolve(1, "group", str(group.id), {}).hosts] == ["h1"]
        with pytest.raises(InvalidInput) as e:
            nodes.resolve(1, "group", str(broken.id), {})
        assert "node group 'b'" in str(e.value) and "does not exist" in str(e.value)


# -- end to end: the HTTP API and a real worker on loopback sshd nodes --------------------------

PID, OTHER = 1, 2


@pytest.fixture(scope="module")
def cluster(ssh_nodes, tmp_path_factory):
    c = Cluster(ssh_nodes)
    c.run("project", "add", str(PID), "inv")
    c.run("project", "add", str(OTHER), "other")
    c.serve()
    c.worker()
    folder = tmp_path_factory.mktemp("inventories")
    c.ini = ini_inventory(
        folder / "hosts.ini", ssh_nodes.ensure(4), ssh_nodes.port, ssh_nodes.key_path
    )
    c.folder = folder
    c.group = c.ok(
        "POST",
        f"/nodegroup/{PID}",
        {
            "name": "web",
            "plugin": "ansible",
            "params": {"path": c.ini, "pattern": "web:&prod"},
            "reach_any": True,
        },
    )["id"]
    yield c
    c.close()


def run_job(c, pid, steps):
    name = f"j{uuidlib.uuid4().hex[:8]}"
    jobuuid = c.ok("POST", f"/jobs/{pid}", {"name": name, "permanent": 1, "data": steps})["uuid"]
    task = c.ok("POST", f"/task/{pid}/job", {"jobuuid": jobuuid})["uuid"]
    return task, c.wait(pid, task, statuses=("success", "fail", "refuse", "waiting"))


def cmd(node_type, node_cont, script):
    return cmd_step(script, node_cont, name="s", node_type=node_type)


def test_job_runs_on_exactly_the_hosts_the_pattern_selects(cluster, ssh_nodes):
    assert cluster.ok("GET", f"/nodegroup/{PID}/{cluster.group}/nodelist")["data"] == ["w1", "w2"]
    script = "echo $(echo $SSH_CONNECTION | cut -d' ' -f3,4) $(id -un)"
    task, done = run_job(cluster, PID, [cmd("group", cluster.group, script)])
    assert done["status"] == "success", cluster.ok("GET", f"/slave/any/tasklog/{task}")
    hosts = cluster.ok("GET", f"/subtask/{PID}/{task}")["data"][0]["hosts"]
    a = ssh_nodes.addresses
    assert {h["host"]: h["stdout"].strip() for h in hosts} == {
        "w1": f"{a[0]} {ssh_nodes.port} root",
        "w2": f"{a[1]} {ssh_nodes.port} root",
    }


def test_a_broken_group_fails_the_task_naming_it(cluster):
    gid = cluster.ok(
        "POST",
        f"/nodegroup/{PID}",
        {"name": "gone", "plugin": "ansible", "params": str(cluster.folder / "missing.ini")},
    )["id"]
    status, body = cluster.call("GET", f"/nodegroup/{PID}/{gid}/nodelist")
    assert status == 400 and "node group 'gone'" in body["info"]
    task, done = run_job(cluster, PID, [cmd("group", gid, "true")])
    assert done["status"] == "fail"
    assert done["reason"].startswith(f"node group 'gone' (id {gid}) cannot be resolved")


def test_groups_and_machines_stay_in_their_project(cluster, ssh_nodes):
    # another project's group cannot even be named in a job
    status, body = cluster.call(
        "POST",
        f"/jobs/{OTHER}",
        {"name": "steal", "permanent": 1, "data": [cmd("group", cluster.group, "true")]},
    )
    assert status == 400 and "does not exist in project 2" in body["info"], body
    # another project's machines and group hosts are refused when a step runs
    cluster.add_nodes(PID, [ssh_nodes.addresses[4]], names=["mine"])
    marker = f"/tmp/oj-iso-{uuidlib.uuid4().hex[:8]}"
    task, done = run_job(cluster, OTHER, [cmd("builtin", "mine,w1", f"touch {marker}")])
    assert done["status"] == "waiting"
    hosts = cluster.ok("GET", f"/subtask/{OTHER}/{task}")["data"][0]["hosts"]
    assert {h["host"]: h["status"] for h in hosts} == {"mine": "refused", "w1": "refused"}
    assert not os.path.exists(marker)
    # in its own project the same names run
    task, done = run_job(cluster, PID, [cmd("builtin", "mine,w1", "true")])
    assert done["status"] == "success"


def shell(argv, cwd, **env):
    full = {
        **os.environ,
        "PATH": BIN + os.pathsep + os.environ["PATH"],
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_NOCOLOR": "1",
        **env,
    }
    for name in ("ANSIBLE_CONFIG", "OPSJOB_DATABASE_URL", "OPSJOB_API_URL", "OPSJOB_API_KEY"):
        if name not in env:
            full.pop(name, None)
    out = subprocess.run(argv, cwd=cwd, env=full, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_opsjob_is_an_inventory_for_the_shell(cluster, tmp_path):
    plugins = inventory.PLUGIN_DIR
    database_url = cluster.env["OPSJOB_DATABASE_URL"]
    write(tmp_path / "db.opsjob.yml", f"plugin: opsjob\nproject: {PID}\n")
    # through the database, with the plugin dir in an ansible.cfg next to the config
    write(tmp_path / "ansible.cfg", f"[defaults]\ninventory_plugins = {plugins}\n")
    graph = shell(
        [os.path.join(BIN, "ansible-inventory"), "-i", "db.opsjob.yml", "--graph"],
        tmp_path,
        OPSJOB_DATABASE_URL=database_url,
    )
    assert "@web:" in graph and "|--w1" in graph and "|--w2" in graph and "w3" not in graph
    # through the API, with the plugin dir in ANSIBLE_INVENTORY_PLUGINS
    api_dir = tmp_path / "api"
    api_dir.mkdir()
    write(api_dir / "my.opsjob.yml", f"plugin: opsjob\nproject: {PID}\napi_url: {cluster.url}\n")
    env = {"ANSIBLE_INVENTORY_PLUGINS": plugins, "OPSJOB_API_KEY": cluster.key}
    graph = shell(
        [os.path.join(BIN, "ansible-inventory"), "-i", "my.opsjob.yml", "--graph"], api_dir, **env
    )
    assert "@web:" in graph and "|--w1" in graph and "|--w2" in graph
    pong = shell(
        [os.path.join(BIN, "ansible"), "-i", "my.opsjob.yml", "web", "-m", "ping"], api_dir, **env
    )
    assert pong.count('"ping": "pong"') == 2 and "w1 | SUCCESS" in pong and "w2 | SUCCESS" in pong


def test_plugin_files_are_plain_ansible_plugins(tmp_path):
    """Ansible's own tools load and document every plugin of the folder."""
    names = ["node", "nodelist", "ansible", "opsjob"]
    docs = shell(
        [os.path.join(BIN, "ansible-doc"), "-t", "inventory", "--json", *names],
        tmp_path,
        ANSIBLE_INVENTORY_PLUGINS=inventory.PLUGIN_DIR,
    )
    found = json.loads(docs)
    assert sorted(found) == sorted(names)
    assert "params" in found["ansible"]["doc"]["options"]
    assert inventory.plugins() == ["ansible", "node", "nodelist"]  # opsjob is no group plugin
