"""Fan-out benchmark: one cmd step (`hostname`) on 1, 10 and 50 loopback nodes.

Compares opsjob (HTTP submit -> task success, through a real API and worker) with plain
`ansible-playbook` at its default settings on the same hosts, in the same run, and prints the
ratio opsjob / plain. Run from the repository root:  .venv/bin/python -m bench.fanout
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

from tests.cluster import Cluster
from tests.sshnodes import start_nodes

PLAYBOOK = """- hosts: all
  tasks:
    - command: hostname
"""


def plain_ansible(nodes, addresses, workdir):
    """Time plain ansible-playbook, default settings, on ``addresses``."""
    inventory = os.path.join(workdir, f"hosts-{len(addresses)}.ini")
    with open(inventory, "w") as f:
        for a in addresses:
            v = nodes.conn_vars(a)
            f.write(
                f"{a} ansible_port={v['ansible_port']} ansible_user={v['ansible_user']} "
                f"ansible_ssh_private_key_file={v['ansible_ssh_private_key_file']}\n"
            )
    playbook = os.path.join(workdir, "plain.yml")
    with open(playbook, "w") as f:
        f.write(PLAYBOOK)
    env = {
        **os.environ,
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
    }
    t0 = time.monotonic()
    out = subprocess.run(
        ["ansible-playbook", "-i", inventory, playbook], env=env, capture_output=True, text=True
    )
    elapsed = time.monotonic() - t0
    if out.returncode != 0:
        raise RuntimeError(f"plain ansible-playbook failed:\n{out.stdout[-2000:]}")
    return elapsed


def opsjob_run(cluster, addresses):
    """Time opsjob: submit over HTTP, poll the task until it ends."""
    t0 = time.monotonic()
    r = cluster.ok(
        "POST",
        "/task/1/plugin_cmd",
        {
            "name": "fanout",
            "node_type": "builtin",
            "node_cont": ",".join(addresses),
            "scripts_type": "shell",
            "scripts_cont": "hostname",
            "scripts_argv": "",
        },
    )
    task = cluster.wait(1, r["data"]["uuid"], timeout=600)
    elapsed = time.monotonic() - t0
    if task["status"] != "success":
        raise RuntimeError(f"opsjob task ended {task['status']}: {task['reason']}")
    return elapsed


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sizes", default="1,10,50")
    p.add_argument("--repeat", type=int, default=2, help="opsjob runs per size (best is kept)")
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    nodes = start_nodes(max(sizes))
    cluster = Cluster(nodes)
    workdir = tempfile.mkdtemp(prefix="opsjob-bench-")
    try:
        cluster.run("project", "add", "1", "bench")
        cluster.serve()
        cluster.worker()
        cluster.add_nodes(1, nodes.addresses)
        print(
            f"{'nodes':>5} {'plain (s)':>10} {'opsjob cold':>12} {'opsjob best':>12} {'ratio':>6}"
        )
        for n in sizes:
            addresses = nodes.addresses[:n]
            plain = plain_ansible(nodes, addresses, workdir)
            runs = [opsjob_run(cluster, addresses) for _ in range(args.repeat)]
            best = min(runs)
            print(
                f"{n:>5} {plain:>10.2f} {runs[0]:>12.2f} {best:>12.2f} {best / plain:>6.2f}",
                flush=True,
            )
    finally:
        cluster.close()
        nodes.stop()


if __name__ == "__main__":
    main()
