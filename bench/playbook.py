"""Playbook-step benchmark: a one-task playbook step at N loopback nodes vs plain ansible-playbook.

The same playbook (one `command: hostname` task) runs as an opsjob playbook step (HTTP submit ->
task success, through a real API and worker, fetched from the file store and contained by
bubblewrap) and as plain `ansible-playbook` at its default settings on the same hosts; prints
the ratio opsjob / plain. The nodes run their login shells' rc files, as real nodes do
(``--no-rc-files`` skips them). Run from the repository root:
    .venv/bin/python -m bench.playbook --nodes 48
"""

import argparse
import io
import tarfile
import tempfile
import time

from bench.fanout import plain
from tests.cluster import Cluster
from tests.sshnodes import start_nodes

# One task, Ansible's defaults otherwise: plain ansible-playbook gathers facts first.
PLAYBOOK = """- hosts: all
  tasks:
    - command: hostname
"""


def archive():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = PLAYBOOK.encode()
        info = tarfile.TarInfo("site.yml")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def upload(cluster, name, data):
    import urllib.request

    boundary = "benchboundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    req = urllib.request.Request(
        f"{cluster.url}/fileserver/1",
        data=body,
        method="POST",
        headers={
            "Authorization": f"Bearer {cluster.key}",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
    )
    urllib.request.urlopen(req).read()


def opsjob_run(cluster, addresses, jobuuid):
    """Time opsjob: start the one-step job over HTTP, poll the task until it ends."""
    t0 = time.monotonic()
    r = cluster.ok("POST", "/task/1/job", {"jobuuid": jobuuid, "variable": {}})
    task = cluster.wait(1, r["uuid"], timeout=900)
    elapsed = time.monotonic() - t0
    if task["status"] != "success":
        raise RuntimeError(f"opsjob task ended {task['status']}: {task['reason']}")
    return elapsed


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--nodes", type=int, default=48)
    p.add_argument("--repeat", type=int, default=2, help="opsjob runs (best is kept)")
    p.add_argument(
        "--rc-files",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="nodes run their rc files, as they come (default)",
    )
    args = p.parse_args(argv)
    nodes = start_nodes(args.nodes, rc_files=args.rc_files)
    cluster = Cluster(nodes)
    workdir = tempfile.mkdtemp(prefix="opsjob-bench-")
    try:
        cluster.run("project", "add", "1", "bench")
        cluster.serve()
        cluster.worker()
        # root's rc files put pyenv's shims first, and Ansible's discovery would pick a shim
        # that fails; a user of such nodes names the system Python once, as here
        python = {"ansible_python_interpreter": "/usr/bin/python3"}
        cluster.add_nodes(1, nodes.addresses, hostvars=python)
        addresses = nodes.addresses[: args.nodes]
        upload(cluster, "bench.tar.gz", archive())
        step = {
            "plugin_type": "playbook",
            "name": "one task",
            "node_type": "builtin",
            "node_cont": ",".join(addresses),
            "source": "fileserver:bench.tar.gz",
            "playbook": "site.yml",
            "timeout": 600,
        }
        body = {"name": "bench-playbook", "permanent": 1, "data": [step]}
        jobuuid = cluster.ok("POST", "/jobs/1", body)["uuid"]
        plain_s, _ = plain(nodes, addresses, workdir, "cmd", facts=True)
        runs = [opsjob_run(cluster, addresses, jobuuid) for _ in range(args.repeat)]
        best = min(runs)
        print(
            f"{'nodes':>5} {'plain (s)':>10} {'opsjob cold':>12} {'opsjob best':>12} {'ratio':>6}"
        )
        print(
            f"{args.nodes:>5} {plain_s:>10.2f} {runs[0]:>12.2f} {best:>12.2f} "
            f"{best / plain_s:>6.2f}"
        )
    finally:
        cluster.close()
        nodes.stop()


if __name__ == "__main__":
    main()
