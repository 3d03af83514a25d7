"""End to end: playbook steps run a team's own playbook (file store, git) on real sshd nodes,
with per-host results, a retry of the failed hosts, check mode, unsafe extra vars, dry-run
syntax checks, and containment of the code a playbook runs on the worker."""

import io
import os
import secrets
import subprocess
import tarfile
import time
import zipfile

import pytest

from api.client import Client, ClientError
from tests.cluster import Cluster, unique
from tests.httpclient import call

pytestmark = pytest.mark.slow
PID = 1


@pytest.fixture(scope="module")
def cluster(ssh_nodes):
    c = Cluster(ssh_nodes, lease=4)
    c.env["OPSJOB_PLAYBOOK_GIT_PROTOCOLS"] = "file"
    c.run("project", "add", str(PID), "playbooks")
    c.serve()
    c.worker()
    with open(ssh_nodes.key_path) as f:
        key = f.read()
    cred = c.ok("POST", f"/credential/{PID}", {"name": "nodes", "username": "root", "ssh_key": key})
    c.add_nodes(PID, ssh_nodes.ensure(3), credential=cred["id"])
    yield c
    c.close()


def tar_gz(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def zipped(files):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return buf.getvalue()


def upload(c, name, data):
    boundary = "b" + secrets.token_hex(8)
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    import urllib.request

    req = urllib.request.Request(
        f"{c.url}/fileserver/{PID}",
        data=body,
        method="POST",
        headers={
            "Authorization": f"Bearer {c.key}",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
    )
    with urllib.request.urlopen(req) as resp:
        assert resp.status == 200


def step(nodes, source, entry="site.yml", **fields):
    return {
        "plugin_type": "playbook",
        "name": fields.pop("name", "playbook"),
        "node_type": "builtin",
        "node_cont": ",".join(nodes),
        "source": source,
        "playbook": entry,
        **fields,
    }


def job(c, steps):
    body = {"name": unique("job"), "permanent": 1, "data": steps}
    return c.ok("POST", f"/jobs/{PID}", body)["uuid"]


def start(c, jobuuid, variable=None):
    body = {"jobuuid": jobuuid, "variable": variable or {}}
    return c.ok("POST", f"/task/{PID}/job", body)["uuid"]


def log_of(c, task):
    return c.ok("GET", f"/slave/any/tasklog/{task}")["data"]["log"]


def host_results(c, task):
    [sub] = c.ok("GET", f"/subtask/{PID}/{task}")["data"]
    return sub, {h["host"]: h for h in sub["hosts"]}


ROLE_PLAYBOOK = {
    "site.yml": "- hosts: all\n  roles: [greet]\n",
    "roles/greet/tasks/main.yml": (
        "- name: write the greeting\n"
        "  copy:\n"
        "    dest: /tmp/{{ tag }}-{{ inventory_hostname }}\n"
        "    content: '{{ greeting }}'\n"
    ),
}


def test_role_playbook_from_the_file_store_with_unsafe_extra_vars(cluster, ssh_nodes):
    a, b = ssh_nodes.addresses[:2]
    name = unique("pb") + ".tar.gz"
    upload(cluster, name, tar_gz(ROLE_PLAYBOOK))
    tag = unique("t")
    task = start(
        cluster,
        job(cluster, [step([a, b], f"fileserver:{name}")]),
        {"tag": tag, "greeting": "{{ lookup('pipe', 'id') }} {{ 6*7 }}"},
    )
    assert cluster.wait(PID, task)["status"] == "success", log_of(cluster, task)
    for host in (a, b):
        out = ssh_nodes.ssh(a, f"cat /tmp/{tag}-{host}").stdout
        assert out == "{{ lookup('pipe', 'id') }} {{ 6*7 }}"
    _, hosts = host_results(cluster, task)
    assert {h: r["status"] for h, r in hosts.items()} == {a: "ok", b: "ok"}
    assert "changed     write the greeting" in hosts[a]["stdout"]
    log = log_of(cluster, task)
    assert "recap: ok=1 changed=1 unreachable=0 failed=0" in log
    assert "event_data" not in log and '"res"' not in log


def bare_repo(tmp, files):
    work, bare = os.path.join(tmp, "work"), os.path.join(tmp, "repo.git")
    os.makedirs(work)
    for rel, text in files.items():
        os.makedirs(os.path.dirname(os.path.join(work, rel)), exist_ok=True)
        with open(os.path.join(work, rel), "w") as f:
            f.write(text)
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "HOME": tmp}
    env.update(GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t")
    for argv in (
        ["git", "init", "-q", "-b", "main", work],
        ["git", "-C", work, "add", "."],
        ["git", "-C", work, "commit", "-qm", "playbook"],
        ["git", "clone", "-q", "--bare", work, bare],
    ):
        subprocess.run(argv, check=True, env=env, capture_output=True)
    return bare


def test_git_playbook_one_host_fails_then_a_retry_runs_only_it(cluster, ssh_nodes, tmp_path):
    a, b = ssh_nodes.addresses[:2]
    tag = unique("g")
    repo = bare_repo(
        str(tmp_path),
        {
            "deploy/site.yml": (
                "- hosts: all\n  tasks:\n"
                "  - name: count\n"
                "    shell: echo run >> /tmp/{{ tag }}-runs-{{ inventory_hostname }}\n"
                "  - name: needs the go file\n"
                "    command: test -e /tmp/{{ tag }}-go-{{ inventory_hostname }}\n"
            )
        },
    )
    ssh_nodes.ssh(a, f"touch /tmp/{tag}-go-{a}")
    task = start(
        cluster, job(cluster, [step([a, b], f"git:{repo}#main", "deploy/site.yml")]), {"tag": tag}
    )
    cluster.wait(PID, task, statuses=("waiting",))
    sub, hosts = host_results(cluster, task)
    assert {h: r["status"] for h, r in hosts.items()} == {a: "ok", b: "failed"}
    assert "needs the go file" in hosts[b]["stderr"]
    assert "failed      needs the go file" in hosts[b]["stdout"]
    ssh_nodes.ssh(b, f"touch /tmp/{tag}-go-{b}")
    body = {
        "taskuuid": task,
        "subtaskuuid": sub["uuid"],
        "subtasktype": "playbook",
        "control": "running",
    }
    assert cluster.call("POST", f"/subtask/{PID}", body)[0] == 200
    assert cluster.wait(PID, task)["status"] == "success", log_of(cluster, task)
    runs = [ssh_nodes.ssh(a, f"cat /tmp/{tag}-runs-{h}").stdout.split() for h in (a, b)]
    assert [len(r) for r in runs] == [1, 2]


def test_check_mode_changes_nothing(cluster, ssh_nodes):
    a = ssh_nodes.addresses[0]
    name = unique("pb") + ".zip"
    upload(cluster, name, zipped(ROLE_PLAYBOOK))
    tag = unique("c")
    variables = {"tag": tag, "greeting": "hello"}
    task = start(cluster, job(cluster, [step([a], f"fileserver:{name}", check=1)]), variables)
    assert cluster.wait(PID, task)["status"] == "success", log_of(cluster, task)
    assert ssh_nodes.ssh(a, f"test -e /tmp/{tag}-{a}").returncode == 1
    _, hosts = host_results(cluster, task)
    assert "changed     write the greeting" in hosts[a]["stdout"]  # would change


def test_dry_run_checks_the_playbook_syntax_without_touching_nodes(cluster, ssh_nodes):
    a = ssh_nodes.addresses[0]
    good, bad = unique("ok") + ".tar.gz", unique("bad") + ".tar.gz"
    before = cluster.ok("GET", f"/task/{PID}")["data"]
    upload(cluster, good, tar_gz(ROLE_PLAYBOOK))
    upload(cluster, bad, tar_gz({"site.yml": "- hosts: all\n  tasks:\n  - nosuchmodule_x: {}\n"}))
    for name, fine in ((good, True), (bad, False)):
        jobname = unique("dry")
        data = [step([a], f"fileserver:{name}")]
        cluster.ok("POST", f"/jobs/{PID}", {"name": jobname, "permanent": 1, "data": data})
        body = {
            "project_id": PID,
            "uuid": unique("u")[:12].ljust(12, "0"),
            "retry_count": 0,
            "params": {"jobname": jobname, "variable": {"tag": "x", "greeting": "y"}},
        }
        status, answer = cluster.call("POST", "/third/interface/dry-run", body)
        problems = answer["data"]["problems"]
        if fine:
            assert status == 200 and problems == [], answer
        else:
            assert any("syntax check failed" in p for p in problems), answer
        client = Client(cluster.url, cluster.key, projectid=PID)
        try:
            plan = client.dry_run(jobname, {"tag": "x", "greeting": "y"})
            assert fine and plan["problems"] == [] and plan["steps"][0]["kind"] == "playbook"
        except ClientError as e:
            assert not fine and "syntax check failed" in e.info, e.info
    assert cluster.ok("GET", f"/task/{PID}")["data"] == before  # nothing ran


def test_bad_playbook_steps_are_refused_by_field(cluster, ssh_nodes):
    a = ssh_nodes.addresses[0]
    cases = [
        ({"source": "ftp:x"}, "step 1: source:"),
        ({"playbook": "../site.yml"}, "step 1: playbook:"),
        ({"playbook": "/etc/site.yml"}, "step 1: playbook:"),
        ({"verbosity": 9}, "step 1: verbosity:"),
        ({"tags": "a b"}, "step 1: tags:"),
    ]
    for change, prefix in cases:
        data = [{**step([a], "fileserver:x.tar.gz"), **change}]
        status, body = call(
            "POST",
            f"{cluster.url}/jobs/{PID}",
            cluster.key,
            {"name": unique("bad"), "permanent": 1, "data": data},
        )
        assert status == 400 and body["info"].startswith(prefix), (change, body)


def test_playbook_code_cannot_read_the_worker(cluster, ssh_nodes):
    a = ssh_nodes.addresses[0]
    home = cluster.home
    with open(os.path.join(home, "secret.key")) as f:
        secret = f.read().strip()
    other = os.path.join(home, "runs", "run-someoneelse")
    os.makedirs(other, exist_ok=True)
    with open(os.path.join(other, "owner.pid"), "w") as f:
        f.write("1")
    tag = unique("x")
    playbook = (
        "- hosts: all\n  tasks:\n"
        "  - name: pipe lookup of the secret key\n"
        "    set_fact:\n"
        "      key1: \"{{ lookup('pipe', 'cat $OPSJOB_HOME/secret.key; "
        f"cat {home}/secret.key; true') }}}}\"\n"
        "  - name: read the database on the worker\n"
        f"    shell: head -c 64 {home}/opsjob.db | base64; true\n"
        "    delegate_to: localhost\n"
        "    register: db\n"
        "  - name: list other run dirs\n"
        f"    local_action: shell ls -a {home}/runs; ls -a ~/.ssh; env | grep ^OPSJOB_ ; true\n"
        "    register: runs\n"
        "  - name: leave a file in /dev/shm\n"
        f"    local_action: shell echo left > /dev/shm/{tag}\n"
        "  - name: report\n"
        "    copy:\n"
        f"      dest: /tmp/{tag}-report\n"
        '      content: "{{ key1 }}\\n==\\n{{ db.stdout }}\\n==\\n{{ runs.stdout }}\\n"\n'
    )
    name = unique("evil") + ".tar.gz"
    upload(cluster, name, tar_gz({"site.yml": playbook}))
    task = start(cluster, job(cluster, [step([a], f"fileserver:{name}")]))
    assert cluster.wait(PID, task)["status"] == "success", log_of(cluster, task)
    report = ssh_nodes.ssh(a, f"cat /tmp/{tag}-report").stdout
    key_part, db_part, runs_part = report.split("\n==\n")
    assert secret and secret not in report
    assert key_part.strip() == ""  # nothing was read
    assert db_part.strip() == ""  # "SQLite format 3" would be U1FMaXRl...
    assert "someoneelse" not in runs_part and "id_" not in runs_part
    assert "OPSJOB_" not in runs_part  # no setting, no run marker, no stream dir
    assert not os.path.exists(f"/dev/shm/{tag}")  # the run's own /dev/shm went with it


def test_killtask_stops_a_running_playbook(cluster, ssh_nodes):
    a = ssh_nodes.addresses[0]
    seconds = 400 + secrets.randbelow(400)  # a unique command line to look for
    name = unique("slow") + ".tar.gz"
    upload(
        cluster,
        name,
        tar_gz({"site.yml": f"- hosts: all\n  tasks:\n  - command: sleep {seconds}\n"}),
    )
    task = start(cluster, job(cluster, [step([a], f"fileserver:{name}", timeout=900)]))

    def sleepers():
        found = subprocess.run(["pgrep", "-f", f"sleep {seconds}"], capture_output=True)
        return found.stdout.split()

    deadline = time.monotonic() + 60
    while not sleepers() and time.monotonic() < deadline:
        time.sleep(0.2)  # the playbook's command runs on the node
    assert sleepers()
    t0 = time.monotonic()
    cluster.ok("DELETE", f"/slave/any/killtask/{task}")
    done = cluster.wait(PID, task)
    assert done["status"] == "fail" and time.monotonic() - t0 < 15
    assert sleepers() == []  # the command the playbook started on the node was ended too
    assert not [f for f in os.listdir("/tmp") if f.startswith(".opsjob-") and "-pb." in f]


def test_diff_shows_each_hosts_changes(cluster, ssh_nodes):
    a = ssh_nodes.addresses[0]
    tag = unique("d")
    ssh_nodes.ssh(a, f"printf 'one\\ntwo\\n' > /tmp/{tag}")
    playbook = (
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        "  - name: rewrite the file\n"
        f'    copy: {{dest: /tmp/{tag}, content: "one\\nthree\\n"}}\n'
    )
    name = unique("diff") + ".tar.gz"
    upload(cluster, name, tar_gz({"site.yml": playbook}))
    task = start(cluster, job(cluster, [step([a], f"fileserver:{name}", diff=1)]))
    assert cluster.wait(PID, task)["status"] == "success", log_of(cluster, task)
    _, hosts = host_results(cluster, task)
    for text in (hosts[a]["stdout"], log_of(cluster, task)):
        assert "changed     rewrite the file" in text
        assert f"    +++ /tmp/{tag}" in text and "    -two" in text and "    +three" in text


def test_path_sources_are_an_admins(cluster, ssh_nodes, tmp_path):
    a = ssh_nodes.addresses[0]
    writer = cluster.run("user", "add", unique("w"), "--project", str(PID), "--role", "write")
    data = [step([a], f"path:{tmp_path}")]
    body = {"name": unique("path"), "permanent": 1, "data": data}
    status, answer = call("POST", f"{cluster.url}/jobs/{PID}", writer, body)
    assert status == 403 and answer["info"].startswith("step 1: source: a path: source"), answer
    jobname = body["name"]
    jobuuid = cluster.ok("POST", f"/jobs/{PID}", body)["uuid"]  # an admin may save it
    launch = {"jobuuid": jobuuid, "variable": {}}
    status, answer = call("POST", f"{cluster.url}/task/{PID}/job", writer, launch)
    assert status == 403 and answer["info"].startswith("step 1: source: a path: source"), answer
    dry = {
        "project_id": PID,
        "uuid": unique("u")[:12].ljust(12, "0"),
        "retry_count": 0,
        "params": {"jobname": jobname, "variable": {}},
    }
    status, answer = call("POST", f"{cluster.url}/third/interface/dry-run", writer, dry)
    assert status == 403 and "source: a path: source" in answer["info"], answer


def test_a_rolling_playbook_step_runs_each_batch_on_its_hosts_only(cluster, ssh_nodes):
    a, b, c = ssh_nodes.addresses[:3]
    name = unique("pb") + ".zip"
    play = (
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - copy:\n        dest: /tmp/{{ tag }}-{{ inventory_hostname }}\n"
        "        content: \"{{ ansible_play_hosts_all | join(',') }}\"\n"
    )
    upload(cluster, name, zipped({"site.yml": play}))
    tag = unique("r")
    rolling = step([a, b, c], f"fileserver:{name}", rolling="1 +1")
    task = start(cluster, job(cluster, [rolling]), {"tag": tag})
    assert cluster.wait(PID, task)["status"] == "success", log_of(cluster, task)
    try:
        seen = {}
        for host in (a, b, c):
            with open(f"/tmp/{tag}-{host}") as f:  # every node is this machine
                seen[host] = f.read()
    finally:
        for host in (a, b, c):
            if os.path.exists(f"/tmp/{tag}-{host}"):
                os.unlink(f"/tmp/{tag}-{host}")
    assert seen == {a: a, b: f"{b},{c}", c: f"{b},{c}"}  # batch 1: a alone; batch 2: b and c
    _, hosts = host_results(cluster, task)
    assert {h: hosts[h]["batch"] for h in (a, b, c)} == {a: 1, b: 2, c: 2}
