"""End to end: a playbook step reaches only its own hosts, whatever the playbook sets, and logs
in with the team's own SSH identity (a credential, the worker's ``~/.ssh`` or its ssh-agent)
without any key file inside the sandbox.

Every loopback node accepts the same key, as one ops key across a fleet commonly does; the
node ``other`` is a machine of another project. All nodes share this machine's /tmp, so each
attempt writes a marker named after itself: it appears only if a connection got through.
"""

import os
import shutil
import subprocess
import time

import pytest

from engine.playbooks import agent as playbook_agent
from tests.cluster import Cluster, unique
from tests.sshnodes import SshNodes
from tests.test_playbook_steps import host_results, log_of, start, step, tar_gz, upload

pytestmark = pytest.mark.slow
PID, OTHER_PID = 1, 2


@pytest.fixture(scope="module")
def cluster(ssh_nodes):
    c = Cluster(ssh_nodes, lease=4)
    c.run("project", "add", str(PID), "reach")
    c.run("project", "add", str(OTHER_PID), "neighbours")
    c.serve()
    c.worker()
    with open(ssh_nodes.key_path) as f:
        key = f.read()
    cred = c.ok("POST", f"/credential/{PID}", {"name": "ops", "username": "root", "ssh_key": key})
    own = ssh_nodes.ensure(4)
    c.add_nodes(PID, own[:2], credential=cred["id"])
    c.add_nodes(OTHER_PID, own[3:4])
    yield c
    c.close()


def _job(c, steps):
    return c.ok("POST", f"/jobs/{PID}", {"name": unique("job"), "permanent": 1, "data": steps})[
        "uuid"
    ]


def _run(c, files, nodes, **fields):
    name = unique("pb") + ".tar.gz"
    upload(c, name, tar_gz(files))
    task = start(c, _job(c, [step(nodes, f"fileserver:{name}", **fields)]))
    return task, c.wait(PID, task, statuses=("success", "fail", "waiting"))


# Each way a playbook can point Ansible at another machine. OWN, OTHER and PORT are filled in;
# the task that would write the marker runs only where the escape took it.
ESCAPES = {
    "add_host into the limit group": (
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        "  - add_host: {name: OTHER, ansible_port: PORT, ansible_user: root,"
        " groups: opsjob_targets}\n"
        "- hosts: OTHER\n  gather_facts: false\n  tasks:\n"
        "  - shell: touch /tmp/MARK\n"
    ),
    "delegate_to another address": (
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        "  - shell: touch /tmp/MARK\n    delegate_to: OTHER\n"
        "    vars: {ansible_port: PORT, ansible_user: root}\n"
    ),
    "task vars ansible_host": (
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        "  - shell: touch /tmp/MARK\n    vars: {ansible_host: OTHER}\n"
    ),
    "set_fact ansible_host": (
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        "  - set_fact: {ansible_host: OTHER}\n"
        "  - shell: touch /tmp/MARK\n"
    ),
    "add_host renaming the own machine": (
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        "  - add_host: {name: OWN, ansible_host: OTHER}\n"
        "- hosts: OWN\n  gather_facts: false\n  tasks:\n"
        "  - shell: touch /tmp/MARK\n"
    ),
    "host_vars file in the source": (
        "- hosts: all\n  gather_facts: false\n  tasks:\n  - shell: touch /tmp/MARK\n"
    ),
    "raw ssh and a socket from the worker": (
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        "  - shell: >-\n"
        "      ssh -o StrictHostKeyChecking=no -o ConnectTimeout=5 -p PORT root@OTHER"
        " touch /tmp/MARK ||\n"
        "      (exec 3<>/dev/tcp/OTHER/PORT && echo reached > /tmp/MARK)\n"
        "    args: {executable: /bin/bash}\n"
        "    delegate_to: localhost\n"
    ),
}


@pytest.mark.parametrize("way", sorted(ESCAPES))
def test_a_playbook_cannot_reach_another_projects_machine(cluster, ssh_nodes, way):
    own, other = ssh_nodes.addresses[0], ssh_nodes.addresses[3]
    mark = unique("escape")
    text = (
        ESCAPES[way]
        .replace("MARK", mark)
        .replace("OTHER", other)
        .replace("OWN", own)
        .replace("PORT", str(ssh_nodes.port))
    )
    files = {"site.yml": text}
    if way.startswith("host_vars"):
        files[f"host_vars/{own}.yml"] = f"ansible_host: {other}\n"
    task, done = _run(cluster, files, [own])
    log = log_of(cluster, task)
    _, hosts = host_results(cluster, task)
    assert done["status"] == "waiting", log  # failed: the usual decision waits
    assert hosts[own]["status"] in ("failed", "unreachable"), hosts
    assert not os.path.exists(f"/tmp/{mark}"), f"{way} reached another machine"
    if way != "raw ssh and a socket from the worker":  # that one never asks the broker
        assert f"outside this step: {other}:{ssh_nodes.port}" in log, log


def test_a_playbook_on_its_own_hosts_still_works_with_delegation(cluster, ssh_nodes):
    a, b = ssh_nodes.addresses[:2]
    mark = unique("own")
    text = (
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        f"  - shell: touch /tmp/{mark}-{{{{ inventory_hostname }}}}\n"
        f"  - shell: touch /tmp/{mark}-delegated\n"
        f"    delegate_to: {b}\n    run_once: true\n"
    )
    task, done = _run(cluster, {"site.yml": text}, [a, b])
    assert done["status"] == "success", log_of(cluster, task)
    for name in (a, b, "delegated"):
        assert os.path.exists(f"/tmp/{mark}-{name}")
    assert "outside this step" not in log_of(cluster, task)


@pytest.fixture(scope="module")
def identity(ssh_nodes, tmp_path_factory):
    """A cluster whose worker reaches one node with the default key of its ``~/.ssh`` and
    another with a key only its ssh-agent holds; neither machine has a credential."""
    home_ssh = playbook_agent.ssh_dir()  # where ssh looks, as the worker's account
    own_key = os.path.join(home_ssh, "id_ed25519")
    if os.path.exists(own_key):
        pytest.skip(f"{own_key} exists already; this test would have to replace it")
    os.makedirs(home_ssh, mode=0o700, exist_ok=True)
    shutil.copyfile(ssh_nodes.key_path, own_key)
    os.chmod(own_key, 0o600)
    agent_nodes = SshNodes()  # its own sshd and key, on a port of its own
    agent_nodes.ensure(1)
    sock = str(tmp_path_factory.mktemp("agent") / "agent.sock")
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", sock], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not os.path.exists(sock) and time.monotonic() < deadline:
        time.sleep(0.05)
    env = {**os.environ, "SSH_AUTH_SOCK": sock}
    subprocess.run(["ssh-add", agent_nodes.key_path], env=env, check=True, capture_output=True)
    c = Cluster(ssh_nodes, lease=4)
    c.run("project", "add", str(PID), "identity")
    c.serve()
    c.worker(env={"SSH_AUTH_SOCK": sock})
    names = {"homekey": ssh_nodes, "agentkey": agent_nodes}
    for name, nodes in names.items():
        address = nodes.addresses[0]
        hostvars = {"ansible_host": address, "ansible_port": nodes.port, "ansible_user": "root"}
        c.ok("POST", f"/nodelist/{PID}", {"name": f"{name}::{address}", "hostvars": hostvars})
    try:
        yield c, names, own_key
    finally:
        c.close()
        agent.terminate()
        agent_nodes.stop()
        os.unlink(own_key)


def test_a_playbook_logs_in_with_the_workers_own_identity(identity):
    c, nodes, own_key = identity
    mark = unique("ident")
    text = (
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        f"  - shell: touch /tmp/{mark}-{{{{ ansible_port }}}}\n"
        "  - name: read the worker's key files\n"
        f"    shell: cat {own_key} ~/.ssh/id_ed25519 2>/dev/null | wc -c\n"
        "    delegate_to: localhost\n    run_once: true\n    register: keys\n"
        "  - fail: {msg: 'key bytes {{ keys.stdout }}'}\n"
        "    when: keys.stdout | int > 0\n"
    )
    task, done = _run(c, {"site.yml": text}, sorted(nodes))
    log = log_of(c, task)
    assert done["status"] == "success", log
    for name, n in nodes.items():
        assert os.path.exists(f"/tmp/{mark}-{n.port}"), (name, log)


def test_a_playbook_cannot_rewrite_what_stops_it(cluster, ssh_nodes):
    """A kill runs a cleanup outside the sandbox: it must not take the playbook's word for it.
    The playbook rewrites the cleanup playbook, the inventory and ansible.cfg of its run dir,
    and leaves a link where the worker reads ansible-playbook's output; then it is killed."""
    own = ssh_nodes.addresses[0]
    mark = unique("cleanup")
    evil = (
        "- hosts: all\\n  connection: local\\n  gather_facts: false\\n  tasks:\\n"
        f"  - shell: touch /tmp/{mark}\\n"
    )
    text = (
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        "  - name: rewrite the run dir\n"
        "    delegate_to: localhost\n"
        "    shell: |\n"
        "      cd {{ playbook_dir }}/../..\n"
        f"      printf '{evil}' > project/cleanup.yml\n"
        "      printf 'all:\\n  hosts:\\n    localhost: {ansible_connection: local}\\n'"
        " > inventory/hosts.yml\n"
        "      printf '[defaults]\\nremote_tmp = /tmp\\n' > ansible.cfg\n"
        "      rm -rf artifacts/main && ln -s / artifacts/main\n"
        "  - command: sleep 900\n"
    )
    name = unique("rw") + ".tar.gz"
    upload(cluster, name, tar_gz({"site.yml": text}))
    task = start(cluster, _job(cluster, [step([own], f"fileserver:{name}", timeout=900)]))
    deadline = time.monotonic() + 60
    while b"sleep 900" not in subprocess.run(["ps", "ax"], capture_output=True).stdout:
        assert time.monotonic() < deadline, log_of(cluster, task)
        time.sleep(0.2)
    cluster.ok("DELETE", f"/slave/any/killtask/{task}")
    assert cluster.wait(PID, task)["status"] == "fail"
    assert b"sleep 900" not in subprocess.run(["ps", "ax"], capture_output=True).stdout
    assert not os.path.exists(f"/tmp/{mark}")  # the playbook's own "cleanup" never ran
