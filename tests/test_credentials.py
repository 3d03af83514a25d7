"""Credentials: write-only secrets, encrypted at rest, scoped to a project (0: shared), and
handed to one run only, as files that are gone afterwards."""

import json
import os
import subprocess
import uuid as uuidlib

import pytest

from api.server.app import create_app
from engine.ansible import playbook
from engine.errors import InvalidInput
from engine.machines import credentials, nodes
from engine.store import secrets
from engine.store.db import database
from engine.store.models import Credential, Nodegroup
from engine.store.settings import Settings
from tests.cluster import Cluster, cmd_step
from tests.sshnodes import SshNodes


@pytest.fixture
def app(settings):
    credentials.ensure_secret_key(settings)
    return create_app(settings)


def keypair(folder, name="id", passphrase=""):
    path = os.path.join(folder, name)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", "test", "-f", path],
        check=True,
    )
    with open(path) as f:
        private = f.read()
    fingerprint = subprocess.run(
        ["ssh-keygen", "-l", "-f", path + ".pub"], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    return private, fingerprint


def key_body(private):
    """The base64 body of a private key: what must never show anywhere."""
    return "".join(private.strip().splitlines()[1:-1])


def test_credential_lifecycle(api, tmp_path):
    private, fingerprint = keypair(tmp_path)
    password = "s3cret-" + uuidlib.uuid4().hex
    r = api.post(
        "/credential/1",
        json={
            "name": "deploy",
            "username": "deploy",
            "ssh_key": private.replace("\n", "\r\n"),
            "become_password": password,
            "describe": "the deploy key",
        },
    )
    assert r.status_code == 200 and r.json["data"] is True, r.text
    cid = r.json["id"]
    r = api.get("/credential/1")
    assert r.status_code == 200
    assert key_body(private)[:40] not in r.text and password not in r.text
    [row] = r.json["data"]
    assert row["id"] == cid and row["name"] == "deploy" and row["username"] == "deploy"
    assert row["has_ssh_key"] is True and row["has_become_password"] is True
    assert row["fingerprint"] == fingerprint and row["describe"] == "the deploy key"
    assert "ssh_key" not in row and "become_password" not in row
    with database.connection_context():
        stored = Credential.get_by_id(cid)
        assert stored.ssh_key.startswith("gAAAA") and key_body(private)[:40] not in stored.ssh_key
        assert password not in stored.become_password
        assert secrets.decrypt("ssh_key", stored.ssh_key) == private  # CRLF normalized
        username, secret = credentials.login(1, cid)
    assert username == "deploy" and secret.become_password == password
    assert password not in repr(secret) and key_body(private)[:40] not in repr(secret)

    # an edit without secrets keeps them; an empty one removes it
    assert api.ok("POST", f"/credential/1/{cid}", json={"name": "deploy", "describe": "x"})
    with database.connection_context():
        assert Credential.get_by_id(cid).ssh_key == stored.ssh_key
    assert api.ok("POST", f"/credential/1/{cid}", json={"name": "deploy2", "become_password": ""})
    [row] = api.ok("GET", "/credential/1")
    assert row["name"] == "deploy2" and row["has_become_password"] is False
    assert row["has_ssh_key"] is True and row["username"] == ""

    assert api.ok("DELETE", f"/credential/1/{cid}") is True
    assert api.ok("GET", "/credential/1") == []
    with database.connection_context():
        gone = Credential.get_by_id(cid)
        assert gone.status == "deleted" and gone.ssh_key == "" and gone.become_password == ""
    assert api.post("/credential/1", json={"name": "deploy2"}).status_code == 200


def test_bad_credentials_are_400_and_never_echoed(api, tmp_path):
    locked, _ = keypair(tmp_path, "locked", passphrase="pass phrase")
    cases = [
        ({}, "name"),
        ({"name": "a b"}, "name"),
        ({"name": "c", "username": "root; rm"}, "username"),
        ({"name": "c", "ssh_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nnope\n"}, "ssh_key: not"),
        ({"name": "c", "ssh_key": locked}, "ssh_key: is protected by a passphrase"),
        ({"name": "c", "ssh_key": ["x"]}, "ssh_key"),
        ({"name": "c", "become_password": "line1\nline2"}, "become_password"),
        ({"name": "c", "become_password": "x" * 1025}, "become_password"),
    ]
    for body, info in cases:
        r = api.post("/credential/1", json=body)
        assert r.status_code == 400 and r.json["info"].startswith(info), (body, r.text)
        assert "line1" not in r.json["info"] and "nope" not in r.json["info"]
    theirs = api.post("/credential/2", json={"name": "theirs"}).json["id"]
    assert api.post(f"/credential/1/{theirs}", json={"name": "x"}).status_code == 404
    assert api.delete(f"/credential/1/{theirs}").status_code == 404
    reader = api.user("reader", 1, "read")
    assert api.get("/credential/1", key=reader).status_code == 200
    assert api.post("/credential/1", key=reader, json={"name": "x"}).status_code == 403
    assert api.get("/credential/2", key=reader).status_code == 403


def test_secrets_are_refused_without_a_key(settings, tmp_path):
    from tests.conftest import Api

    bare = Settings(home=str(tmp_path / "nokey"), database_url=settings.database_url)
    api = Api(create_app(bare))
    private, _ = keypair(tmp_path)
    r = api.post("/credential/1", json={"name": "k", "ssh_key": private})
    assert r.status_code == 400
    assert r.json["info"].startswith("ssh_key: cannot store or read secrets: no secret key")
    assert api.ok("GET", "/credential/1") == []
    assert (
        api.post("/credential/1", json={"name": "user-only", "username": "ops"}).status_code == 200
    )
    # `opsjob init` makes a key file; from then on secrets are accepted
    assert credentials.ensure_secret_key(bare) == os.path.join(bare.home, "secret.key")
    assert oct(os.stat(os.path.join(bare.home, "secret.key")).st_mode & 0o777) == "0o600"
    assert credentials.ensure_secret_key(bare) is None
    assert api.post("/credential/1", json={"name": "k", "ssh_key": private}).status_code == 200


def test_keys_rotate_and_a_wrong_key_is_a_clear_error(tmp_path):
    from cryptography.fernet import Fernet

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    secrets.configure(Settings(home=str(tmp_path), secret_key=old))
    token = secrets.encrypt("x", "hello")
    secrets.configure(Settings(home=str(tmp_path), secret_key=f"{new},{old}"))
    assert secrets.decrypt("x", token) == "hello"  # still readable after the rotation
    secrets.configure(Settings(home=str(tmp_path), secret_key=new))
    with pytest.raises(InvalidInput) as e:
        secrets.decrypt("credential 3", token)
    assert e.value.info.startswith("credential 3: cannot decrypt the stored secret")
    with pytest.raises(ValueError) as e:
        secrets.configure(Settings(home=str(tmp_path), secret_key="not-a-key"))
    assert "OPSJOB_SECRET_KEY: not a Fernet key" in str(e.value)
    secrets.configure(None)


def test_groups_and_machines_name_credentials_of_their_project(api, tmp_path):
    private, _ = keypair(tmp_path)
    mine = api.post("/credential/1", json={"name": "mine", "username": "ops", "ssh_key": private})
    shared = api.post("/credential/0", json={"name": "shared", "username": "svc"})
    theirs = api.post("/credential/2", json={"name": "theirs"})
    mine, shared, theirs = (r.json["id"] for r in (mine, shared, theirs))

    def group(name, credential):
        return api.post(
            "/nodegroup/1",
            json={"name": name, "plugin": "node", "params": "web", "credential": credential},
        )

    gid = group("a", mine).json["id"]
    assert api.ok("GET", f"/nodegroup/1/{gid}")["credential"] == mine
    assert group("b", shared).status_code == 200
    r = group("c", theirs)
    assert r.status_code == 400
    assert (
        r.json["info"]
        == f"credential: credential {theirs} does not exist in project 1 or project 0"
    )
    r = api.post("/nodelist/1", json={"name": "web::10.0.0.1", "credential": theirs})
    assert r.status_code == 400 and r.json["info"].startswith("credential:")
    assert api.post("/nodelist/1", json={"name": "web::10.0.0.1", "credential": shared}).json[
        "stat"
    ]
    assert api.ok("GET", "/nodelist/1")[0]["credential"] == shared

    with database.connection_context():
        found = nodes.resolve(1, "group", str(gid), {})
        [host] = found.hosts
        assert host.vars["ansible_user"] == "ops" and host.secret.ssh_key == private
        assert key_body(private)[:40] not in repr(host)
        compiled = playbook.compile_cmd(found.hosts, "id", "shell")
        assert compiled.secrets == (("web", host.secret),)
        assert key_body(private)[:40] not in repr(compiled)
        assert key_body(private)[:40] not in compiled.files["inventory/hosts.yml"].decode()
        # the machine's own credential applies to a builtin node list
        [web] = nodes.resolve(1, "builtin", "web", {}).hosts
        assert web.vars["ansible_user"] == "svc"
        # a group pointed at another project's credential (say, by hand) never uses it
        Nodegroup.update(credential=theirs).where(Nodegroup.id == gid).execute()
        with pytest.raises(InvalidInput) as e:
            nodes.resolve(1, "group", str(gid), {})
        assert (
            e.value.info
            == f"credential {theirs}: does not exist any more in project 1 or project 0"
        )


# -- end to end: a key only the credential holds, on a private sshd -----------------------------

PID, OTHER = 1, 2
BECOME_LOGIN = "opscred"
SUDOERS = "/etc/sudoers.d/opsjob-tests-credentials"


@pytest.fixture(scope="module")
def keyed(ssh_nodes):
    """An sshd of its own that accepts only its own client key (no other test's key)."""
    nodes_ = SshNodes()
    try:
        nodes_.ensure(2)
        yield nodes_
    finally:
        nodes_.stop()


@pytest.fixture(scope="module")
def cluster(ssh_nodes, keyed):
    c = Cluster(ssh_nodes)
    c.run("project", "add", str(PID), "creds")
    c.run("project", "add", str(OTHER), "other")
    c.serve()
    c.worker()
    # the keyed nodes are machines of the project (without a key: the credential logs in)
    for i, address in enumerate(keyed.addresses):
        body = {"name": f"keyed{i}::{address}", "hostvars": {"ansible_port": keyed.port}}
        c.ok("POST", f"/nodelist/{PID}", body)
    with open(keyed.key_path) as f:
        c.private = f.read()
    c.cred = c.ok(
        "POST", f"/credential/{PID}", {"name": "keyed", "username": "root", "ssh_key": c.private}
    )["id"]
    inline = "all:\n  hosts:\n" + "".join(
        f"    k{i}: {{ansible_host: {a}, ansible_port: {keyed.port}}}\n"
        for i, a in enumerate(keyed.addresses)
    )
    c.inline = inline
    c.group = c.ok(
        "POST",
        f"/nodegroup/{PID}",
        {
            "name": "keyed",
            "plugin": "ansible",
            "params": {"inventory": inline},
            "credential": c.cred,
        },
    )["id"]
    yield c
    c.close()


def run_job(c, pid, steps):
    name = f"j{uuidlib.uuid4().hex[:8]}"
    jobuuid = c.ok("POST", f"/jobs/{pid}", {"name": name, "permanent": 1, "data": steps})["uuid"]
    task = c.ok("POST", f"/task/{pid}/job", {"jobuuid": jobuuid})["uuid"]
    return task, c.wait(pid, task, statuses=("success", "fail", "refuse", "waiting"))


def cmd(group, script, user=""):
    return cmd_step(script, group, name="s", node_type="group", user=user)


def test_a_credential_logs_in_and_its_key_file_is_gone_afterwards(cluster, keyed):
    runs = os.path.join(cluster.home, "runs")
    script = (
        f"find {runs} \\( -name '*.key' -o -name secrets.yml \\) -printf '%m %p\\n' | sort\n"
        "echo via $(echo $SSH_CONNECTION | cut -d' ' -f3,4)\n"
    )
    task, done = run_job(cluster, PID, [cmd(cluster.group, script)])
    assert done["status"] == "success", cluster.ok("GET", f"/slave/any/tasklog/{task}")
    hosts = cluster.ok("GET", f"/subtask/{PID}/{task}")["data"][0]["hosts"]
    assert sorted(h["host"] for h in hosts) == ["k0", "k1"]
    seen = set()
    for h in hosts:
        lines = h["stdout"].strip().splitlines()
        files = [line.split(" ", 1) for line in lines if not line.startswith("via ")]
        assert [mode for mode, _ in files] == ["600", "600"], h["stdout"]  # key, secrets.yml
        seen.update(path for _, path in files)
        address = keyed.addresses[int(h["host"][1])]
        assert f"via {address} {keyed.port}" in lines
    assert len(seen) == 2 and all(p.startswith(runs) for p in seen)
    assert not any(os.path.exists(p) for p in seen)  # removed with the run


def test_without_the_credential_the_worker_cannot_log_in(cluster):
    """Runs after the credential's run, whose SSH master connections are still open: a run
    without the credential must not ride them either."""
    gid = cluster.ok(
        "POST",
        f"/nodegroup/{PID}",
        {"name": "nokey", "plugin": "ansible", "params": {"inventory": cluster.inline}},
    )["id"]
    task, done = run_job(cluster, PID, [cmd(gid, "id")])
    assert done["status"] == "waiting"
    hosts = cluster.ok("GET", f"/subtask/{PID}/{task}")["data"][0]["hosts"]
    assert {h["status"] for h in hosts} == {"unreachable"}, hosts


@pytest.fixture
def password_login():
    """An account that logs in with a key and must give its password to sudo; it is locked
    and loses its sudo rule afterwards."""
    password = "pw-" + uuidlib.uuid4().hex
    if subprocess.run(["id", "-u", BECOME_LOGIN], capture_output=True).returncode:
        subprocess.run(["useradd", "-m", "-s", "/bin/bash", BECOME_LOGIN], check=True)
    subprocess.run(["chpasswd"], input=f"{BECOME_LOGIN}:{password}\n", text=True, check=True)
    # to root: becoming another unprivileged account would need setfacl on the node
    rule = f"{BECOME_LOGIN} ALL=(root) ALL\n"
    with open(SUDOERS + ".new", "w") as f:
        f.write(rule)
    os.chmod(SUDOERS + ".new", 0o440)
    subprocess.run(["visudo", "-cf", SUDOERS + ".new"], check=True, capture_output=True)
    os.replace(SUDOERS + ".new", SUDOERS)
    try:
        yield password
    finally:
        os.unlink(SUDOERS)
        subprocess.run(["usermod", "-p", "*", BECOME_LOGIN], check=True)


def test_the_become_password_reaches_sudo_and_nothing_else(cluster, password_login):
    password = password_login
    with_password = cluster.ok(
        "POST",
        f"/credential/{PID}",
        {
            "name": "sudoer",
            "username": BECOME_LOGIN,
            "ssh_key": cluster.private,
            "become_password": password,
        },
    )["id"]
    without = cluster.ok(
        "POST",
        f"/credential/{PID}",
        {"name": "nosudo", "username": BECOME_LOGIN, "ssh_key": cluster.private},
    )["id"]
    outcomes, tasks = {}, []
    for name, cid in (("with", with_password), ("without", without)):
        gid = cluster.ok(
            "POST",
            f"/nodegroup/{PID}",
            {
                "name": f"sudo-{name}",
                "plugin": "ansible",
                "params": {"inventory": cluster.inline, "pattern": "k0"},
                "credential": cid,
            },
        )["id"]
        task, done = run_job(cluster, PID, [cmd(gid, "id -un; echo $SUDO_USER", user="root")])
        tasks.append(task)
        [host] = cluster.ok("GET", f"/subtask/{PID}/{task}")["data"][0]["hosts"]
        outcomes[name] = (done["status"], host["status"], host["stdout"].split())
    assert outcomes["with"] == ("success", "ok", ["root", BECOME_LOGIN])
    assert outcomes["without"][:2] == ("waiting", "failed")
    # the password shows in no log, no API answer and not in clear in the database
    answers = [cluster.call("GET", path)[1] for path in (f"/credential/{PID}", f"/nodegroup/{PID}")]
    answers += [cluster.call("GET", f"/slave/any/tasklog/{t}")[1] for t in tasks]
    answers += [cluster.call("GET", f"/subtask/{PID}/{t}")[1] for t in tasks]
    shown = json.dumps(answers) + cluster.logs()
    assert password not in shown and key_body(cluster.private)[:40] not in shown
    with open(os.path.join(cluster.home, "opsjob.db"), "rb") as f:
        raw = f.read()
    assert password.encode() not in raw and key_body(cluster.private)[:40].encode() not in raw


def test_credentials_stay_in_their_project(cluster):
    other_key = cluster.run("user", "add", "outsider", "--project", str(OTHER), "--role", "write")
    status, body = cluster.call("GET", f"/credential/{PID}", key=other_key)
    assert status == 403
    status, body = cluster.call(
        "POST",
        f"/nodegroup/{OTHER}",
        {"name": "steal", "plugin": "node", "params": "x", "credential": cluster.cred},
        key=other_key,
    )
    assert status == 400 and body["info"].startswith("credential:"), body
    status, body = cluster.call(
        "POST", f"/nodelist/{OTHER}", {"name": "h::10.0.0.1", "credential": cluster.cred}
    )
    assert status == 400 and body["info"].startswith("credential:"), body
    # even an admin cannot reach it through another project's routes
    assert cluster.call("DELETE", f"/credential/{OTHER}/{cluster.cred}")[0] == 404
    assert cluster.call("POST", f"/credential/{OTHER}/{cluster.cred}", {"name": "x"})[0] == 404
    assert [c["id"] for c in cluster.ok("GET", f"/credential/{PID}")["data"]].count(cluster.cred)


def test_an_scp_destination_logs_in_as_its_groups_credential_on_the_source_machine(cluster, keyed):
    """The source machine (its own credential, root) is also a destination through a group
    whose credential logs in as another user: each end of the copy logs in as itself."""
    address = keyed.addresses[0]
    deploy = cluster.ok(
        "POST",
        f"/credential/{PID}",
        {"name": "deploy", "username": SshNodes.become_user, "ssh_key": cluster.private},
    )["id"]
    machine = {"name": f"scpsrc::{address}", "hostvars": {"ansible_port": keyed.port}}
    cluster.ok("POST", f"/nodelist/{PID}", {**machine, "credential": cluster.cred})
    gid = cluster.ok(
        "POST",
        f"/nodegroup/{PID}",
        {"name": "scpdst", "plugin": "node", "params": "scpsrc", "credential": deploy},
    )["id"]
    tag = f"oj-scp-{uuidlib.uuid4().hex[:8]}"
    assert keyed.ssh(address, f"echo copied > /tmp/{tag}.txt").returncode == 0
    step = {
        "plugin_type": "scp",
        "name": "copy",
        "src_type": "builtin",
        "src": "scpsrc",
        "sp": f"/tmp/{tag}.txt",
        "dst_type": "group",
        "dst": str(gid),
        "dp": f"/tmp/{tag}-dst/",
    }
    try:
        task, done = run_job(cluster, PID, [step])
        assert done["status"] == "success", cluster.ok("GET", f"/slave/any/tasklog/{task}")
        [host] = cluster.ok("GET", f"/subtask/{PID}/{task}")["data"][0]["hosts"]
        assert host["host"] == "scpsrc" and host["status"] == "ok"
        out = keyed.ssh(address, f"stat -c '%U %n' /tmp/{tag}-dst /tmp/{tag}-dst/{tag}.txt")
        assert out.stdout.split("\n")[:2] == [
            f"{SshNodes.become_user} /tmp/{tag}-dst",
            f"{SshNodes.become_user} /tmp/{tag}-dst/{tag}.txt",
        ], out
    finally:
        keyed.ssh(address, f"rm -rf /tmp/{tag}.txt /tmp/{tag}-dst")
