"""Fan-out benchmark: one cmd step (``hostname``) and one scp step (a 10 MB file from one node
to the others) on 48 loopback nodes, against plain ``ansible-playbook`` on the same hosts, in
the same run.

Two kinds of nodes are measured, one after the other:
- **rc files**: nodes as they come. The login shell runs root's start-up files for every
  remote command (on this machine about 0.12 s each: pyenv init), and sftp goes through it.
- **no rc files**: the same nodes with ``SetEnv SHLVL=1``, which the test suite uses.

For each kind it prints plain Ansible at its defaults (facts on, 5 forks), plain with
``gather_facts: false``, tuned plain (no facts, pipelining, as many forks as opsjob), and
opsjob cold (the first run after the worker starts: no SSH connection is open yet) and warm
(best of the next runs), each with its ratio to the two plain baselines. Each plain variant
runs twice and keeps its best (its second run rides the SSH connections the first opened).
"controller CPU/host" is the CPU time of ansible-playbook and its processes (for opsjob: of
the worker's process tree, which runs them, warm controller included) divided by the hosts:
sshd on the nodes is not counted, nor, on either side, the SSH connection masters that
ControlPersist leaves running in the background.

    .venv/bin/python -m bench.fanout [--nodes 48] [--repeat 2] [--scp-mb 10] [--kinds rc,norc]
                                     [--steps cmd,scp]

On two busy cores the whole of it takes about half an hour (plain Ansible's scp with facts
on, over rc files, is the slow part).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

from engine.ansible import forks as forks_of
from engine.store.settings import Settings
from tests.cluster import Cluster
from tests.sshnodes import start_nodes

from .proc import reaped_cpu, tree_cpu

BIN = os.path.dirname(sys.executable)
SRC_FILE = "/tmp/opsjob-bench-payload.bin"
DST_DIR = "/tmp/opsjob-bench-dst/"

CMD_PLAY = """- hosts: all
  gather_facts: {facts}
  tasks:
    - command: '{command}'
"""
# node -> controller -> nodes, as opsjob's scp step does it
SCP_PLAY = """- hosts: source
  gather_facts: {facts}
  tasks:
    - fetch:
        src: {src}
        dest: "{{{{ playbook_dir }}}}/payload.bin"
        flat: true
- hosts: targets
  gather_facts: {facts}
  tasks:
    - copy:
        src: "{{{{ playbook_dir }}}}/payload.bin"
        dest: {dst}
"""


def plain_command(nodes, addresses, workdir, kind, facts, tuned=False, forks=5, command="hostname"):
    """``(argv, env)`` of plain ansible-playbook running a ``kind`` step on ``addresses`` (a
    cmd step runs ``command``): at its defaults, with ``facts`` or not, or ``tuned``
    (pipelining, ``forks`` forks). The runs of one ``(argv, env)`` share their SSH
    connections."""
    tag = f"{kind}-{facts}-{tuned}"
    inventory = os.path.join(workdir, f"hosts-{tag}.ini")
    with open(inventory, "w") as f:
        for group, members in (("source", addresses[:1]), ("targets", addresses[1:])):
            f.write(f"[{group}]\n")
            for a in members:
                v = nodes.conn_vars(a)
                f.write(
                    f"{a} ansible_port={v['ansible_port']} ansible_user={v['ansible_user']} "
                    f"ansible_ssh_private_key_file={v['ansible_ssh_private_key_file']}\n"
                )
    book = os.path.join(workdir, f"play-{tag}.yml")
    text = CMD_PLAY if kind == "cmd" else SCP_PLAY
    with open(book, "w") as f:
        f.write(text.format(facts=str(facts).lower(), command=command, src=SRC_FILE, dst=DST_DIR))
    env = {
        **os.environ,
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        # root's rc files put pyenv's shims first, and Ansible's discovery would pick a shim
        # that fails; a user of such nodes names the system Python once, as here
        "ANSIBLE_PYTHON_INTERPRETER": "/usr/bin/python3",
        "ANSIBLE_SSH_CONTROL_PATH_DIR": tempfile.mkdtemp(prefix="cp-", dir=workdir),
        "PATH": BIN + os.pathsep + os.environ["PATH"],
    }
    argv = ["ansible-playbook", "-i", inventory, book]
    if tuned:
        env["ANSIBLE_PIPELINING"] = "True"
        argv += ["--forks", str(forks)]
    return argv, env


def plain(nodes, addresses, workdir, kind, facts, tuned=False, forks=5):
    """Run plain ansible-playbook twice; return (best seconds, controller CPU s of that run)."""
    argv, env = plain_command(nodes, addresses, workdir, kind, facts, tuned, forks)
    best = None
    for _ in range(2):
        cpu0, t0 = reaped_cpu(), time.monotonic()
        out = subprocess.run(argv, env=env, capture_output=True, text=True)
        elapsed, cpu = time.monotonic() - t0, reaped_cpu() - cpu0
        if out.returncode != 0:
            raise RuntimeError(f"plain ansible-playbook failed:\n{out.stdout[-3000:]}")
        if best is None or elapsed < best[0]:
            best = (elapsed, cpu)
    return best


def opsjob(cluster, addresses, kind):
    """Submit one step over HTTP and wait for it; return (seconds, worker CPU s)."""
    if kind == "cmd":
        route, body = (
            "plugin_cmd",
            {
                "node_type": "builtin",
                "node_cont": ",".join(addresses),
                "scripts_type": "shell",
                "scripts_cont": "hostname",
                "scripts_argv": "",
            },
        )
    else:
        route, body = (
            "plugin_scp",
            {
                "src_type": "builtin",
                "src": addresses[0],
                "sp": SRC_FILE,
                "dst_type": "builtin",
                "dst": ",".join(addresses[1:]),
                "dp": DST_DIR,
            },
        )
    # The worker's tree: the worker, and what it started and is still running (the warm
    # controller), each with the processes it reaped (runner's, Ansible's forks, ssh).
    worker = cluster.procs["worker"].pid
    cpu0, t0 = tree_cpu(worker), time.monotonic()
    r = cluster.ok("POST", f"/task/1/{route}", {"name": f"fanout {kind}", **body})
    task = cluster.wait(1, r["data"]["uuid"], timeout=900)
    elapsed = time.monotonic() - t0
    if task["status"] != "success":
        raise RuntimeError(f"opsjob task ended {task['status']}: {task['reason']}")
    time.sleep(0.3)  # the worker's bookkeeping after the answer
    return elapsed, tree_cpu(worker) - cpu0


def measure(rc_files, n, repeat, scp_mb, steps):
    label = "rc files" if rc_files else "no rc files"
    nodes = start_nodes(n, rc_files=rc_files)
    workdir = tempfile.mkdtemp(prefix="opsjob-bench-")
    cluster = Cluster(nodes)
    try:
        addresses = nodes.addresses[:n]
        with open(SRC_FILE, "wb") as f:  # all nodes are this machine: one file serves all
            f.write(os.urandom(scp_mb << 20))
        cluster.run("project", "add", "1", "bench")
        cluster.serve()
        cluster.worker()
        cluster.add_nodes(1, addresses)
        forks = forks_of.choose(n, Settings.from_env(os.environ).ansible_forks)
        for kind in steps:
            hosts = n if kind == "cmd" else n - 1
            rows = [
                ("plain defaults", plain(nodes, addresses, workdir, kind, True)),
                ("plain no facts", plain(nodes, addresses, workdir, kind, False)),
                ("plain tuned", plain(nodes, addresses, workdir, kind, False, True, forks)),
            ]
            runs = [opsjob(cluster, addresses, kind) for _ in range(repeat + 1)]
            rows += [("opsjob cold", runs[0]), ("opsjob warm", min(runs[1:]))]
            base, nofacts = rows[0][1][0], rows[1][1][0]
            print(f"\n{kind} step, {hosts} target nodes, {label}:")
            print(
                f"  {'':16} {'seconds':>8} {'/defaults':>10} {'/no facts':>10} "
                f"{'controller CPU/host':>20}"
            )
            for name, (secs, cpu) in rows:
                print(
                    f"  {name:16} {secs:8.2f} {secs / base:10.2f} {secs / nofacts:10.2f} "
                    f"{cpu / hosts:19.3f}s",
                    flush=True,
                )
    finally:
        cluster.close()
        nodes.stop()
        subprocess.run(["rm", "-rf", SRC_FILE, DST_DIR, workdir], check=False)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--nodes", type=int, default=48)
    p.add_argument("--repeat", type=int, default=2, help="warm opsjob runs (best is kept)")
    p.add_argument("--scp-mb", type=int, default=10)
    p.add_argument("--kinds", default="rc,norc", help="rc (nodes as they come), norc, or both")
    p.add_argument("--steps", default="cmd,scp", help="cmd, scp or both")
    args = p.parse_args(argv)
    print(f"{args.nodes} loopback nodes on {os.cpu_count()} cores; plain defaults use 5 forks")
    for kind in args.kinds.split(","):
        measure(kind == "rc", args.nodes, args.repeat, args.scp_mb, args.steps.split(","))


if __name__ == "__main__":
    main()
