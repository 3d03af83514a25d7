"""Small-task benchmark: many one-host `true` tasks through `opsjob up` at its defaults.

Two kinds of nodes, one after the other (``--kinds``, like bench.fanout):
- **rc files** (the default, first): nodes as they come, where the login shell runs root's
  start-up files for every remote command (on this machine about 0.12 s each: pyenv init);
- **no rc files**: the same nodes with ``SetEnv SHLVL=1``, as the test suite runs them.

Prints, for each kind, one deployment (SQLite state and queue, `opsjob up` with its default API
and worker counts) on one loopback SSH node:
- pickup latency: POST answered -> the task leaves `init` (median and 90th percentile of
  ``--pickups`` tasks sent one at a time to an idle worker);
- launches/s: POSTs answered per second while ``--tasks`` tasks are sent back to back;
- drain: tasks/s from the first of those POSTs until the last task ended;
- CPU-seconds per task of the worker's process tree (worker, ansible-runner, ansible-playbook
  and its forks, the ssh clients; not sshd) and of the API processes;
- its baseline: ``--plain`` (default 40) one-host `true` runs of plain ``ansible-playbook``,
  tuned (no facts, pipelining, one SSH connection reused), as many at a time as the worker runs
  tasks; the drain rate and CPU per task against it;
- with ``--hosts N`` (N > 0): controller CPU-seconds per host-step of one `true` step on N
  nodes, opsjob's worker tree against plain `ansible-playbook` at its default settings.

Run from the repository root:

    .venv/bin/python -m bench.tasks [--tasks 200] [--pickups 20] [--kinds rc,norc] [--plain 40]
                                    [--hosts N]
"""

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from tests.cluster import Cluster
from tests.httpclient import free_port, wait_until_up
from tests.sshnodes import _children, start_nodes

from .fanout import plain_command
from .proc import cpu, descendants, reaped_cpu, tree_cpu

TERMINAL = ("success", "fail", "refuse")
AT_ONCE = 4  # tasks the worker of `opsjob up` runs at once (its default), and the baseline


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


class Deployment:
    """`opsjob up` at its defaults on a fresh home, with one project and the given nodes."""

    def __init__(self, nodes, addresses):
        self.cluster = Cluster(nodes)
        self.cluster.run("project", "add", "1", "bench")
        port = free_port()
        self.cluster.url = f"http://127.0.0.1:{port}"
        self.up = self.cluster.spawn("up", "up", "--port", str(port))
        wait_until_up(self.cluster.url, self.up)
        self.cluster.add_nodes(1, addresses)
        self.db = sqlite3.connect(os.path.join(self.cluster.home, "opsjob.db"), timeout=30)
        deadline = time.monotonic() + 30
        while self.worker_pid() is None:
            if time.monotonic() > deadline:
                raise RuntimeError("the worker of `opsjob up` did not start")
            time.sleep(0.1)

    def worker_pid(self):
        for pid in _children(self.up.pid):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if b"\0worker\0" in f.read():
                        return pid
            except OSError:
                continue
        return None

    def api_cpu(self):
        worker = self.worker_pid()
        return cpu(self.up.pid, reaped=False) + sum(
            tree_cpu(p) for p in _children(self.up.pid) if p != worker
        )

    def launch(self, hosts, name="bench"):
        r = self.cluster.ok(
            "POST",
            "/task/1/plugin_cmd",
            {
                "name": name,
                "node_type": "builtin",
                "node_cont": ",".join(hosts),
                "scripts_type": "shell",
                "scripts_cont": "true",
                "scripts_argv": "",
            },
        )
        return r["data"]["uuid"]

    def status(self, uuid):
        row = self.db.execute("SELECT status FROM task WHERE uuid = ?", (uuid,)).fetchone()
        return row[0] if row else None

    def ended(self):
        marks = ",".join("?" * len(TERMINAL))
        q = f"SELECT COUNT(*) FROM task WHERE status IN ({marks})"
        return self.db.execute(q, TERMINAL).fetchone()[0]

    def failed(self):
        return self.db.execute("SELECT COUNT(*) FROM task WHERE status != 'success'").fetchone()[0]

    def wait_all(self, total, timeout):
        deadline = time.monotonic() + timeout
        while self.ended() < total:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.ended()} of {total} tasks ended\n{self.cluster.logs()}")
            time.sleep(0.05)
        return time.monotonic()

    def close(self):
        self.db.close()
        self.cluster.close()


def pickups(dep, host, count):
    """Latencies (s) from a POST's answer to its task leaving init, one task at a time."""
    out = []
    for _ in range(count):
        uuid = dep.launch([host], name="pickup")
        answered = time.monotonic()
        while dep.status(uuid) == "init":
            time.sleep(0.001)
        out.append(time.monotonic() - answered)
        while dep.status(uuid) not in TERMINAL:
            time.sleep(0.02)
    return out


def drain(dep, host, count):
    """Send ``count`` tasks back to back; return (launches/s, tasks/s, CPU per task)."""
    before = dep.ended()
    pid = dep.worker_pid()
    worker, own, api = tree_cpu(pid), cpu(pid, reaped=False), dep.api_cpu()
    t0 = time.monotonic()
    for _ in range(count):
        dep.launch([host], name="drain")
    sent = time.monotonic()
    done = dep.wait_all(before + count, timeout=60 + count * 5)
    time.sleep(0.5)  # let the last ansible processes be reaped into the worker's counters
    worker_cpu = (tree_cpu(pid) - worker) / count
    print(
        f"CPU per task in the worker process itself: {(cpu(pid, reaped=False) - own) / count:.3f} s"
    )
    api_cpu = (dep.api_cpu() - api) / count
    return count / (sent - t0), count / (done - t0), worker_cpu, api_cpu


def _plain_run(argv, env):
    out = subprocess.run(argv, env=env, capture_output=True)
    if out.returncode:
        raise RuntimeError(f"plain ansible-playbook failed:\n{(out.stdout + out.stderr)[-2000:]}")


def plain_cpu(argv, env):
    """CPU-seconds of one plain ansible-playbook run."""
    before = reaped_cpu()
    _plain_run(argv, env)
    return reaped_cpu() - before


def plain_drain(nodes, host, count, workdir, at_once=AT_ONCE):
    """The baseline of `drain`: ``count`` one-host `true` runs of plain ansible-playbook, tuned
    (no facts, pipelining, one SSH connection they share), ``at_once`` at a time; return
    (runs/s, CPU-seconds per run)."""
    argv, env = plain_command(nodes, [host], workdir, "cmd", False, True, 1, command="true")
    _plain_run(argv, env)  # opens the SSH connection the runs share
    before, t0 = reaped_cpu(), time.monotonic()
    with ThreadPoolExecutor(at_once) as pool:
        list(pool.map(lambda _: _plain_run(argv, env), range(count)))
    return count / (time.monotonic() - t0), (reaped_cpu() - before) / count


def host_steps(dep, nodes, addresses, repeat, workdir):
    """(opsjob, plain) controller CPU-seconds per host-step of a `true` step on ``addresses``."""
    argv, env = plain_command(nodes, addresses, workdir, "cmd", False, command="true")
    for _ in range(2):  # warm both: SSH master connections, caches
        dep.cluster.wait(1, dep.launch(addresses, name="hosts"), timeout=600)
        plain_cpu(argv, env)
    ops, plain = [], []
    for _ in range(repeat):
        worker = tree_cpu(dep.worker_pid())
        task = dep.cluster.wait(1, dep.launch(addresses, name="hosts"), timeout=600)
        if task["status"] != "success":
            raise RuntimeError(f"task ended {task['status']}: {task['reason']}")
        time.sleep(0.5)
        ops.append((tree_cpu(dep.worker_pid()) - worker) / len(addresses))
        plain.append(plain_cpu(argv, env) / len(addresses))
    return statistics.median(ops), statistics.median(plain)


def measure(args, rc_files):
    """Run the whole bench on nodes of one kind."""
    print(f"\n{'rc files (nodes as they come)' if rc_files else 'no rc files'}:", flush=True)
    nodes = start_nodes(max(1, args.hosts), rc_files=rc_files)
    addresses = nodes.addresses[: max(1, args.hosts)]
    dep = Deployment(nodes, addresses)
    workdir = tempfile.mkdtemp(prefix="opsjob-bench-")
    try:
        host = addresses[0]
        dep.cluster.wait(1, dep.launch([host], name="warm-up"))
        lat = sorted(pickups(dep, host, args.pickups))
        p90 = lat[min(len(lat) - 1, int(len(lat) * 0.9))]
        print(
            f"pickup: median {statistics.median(lat) * 1000:.0f} ms, p90 {p90 * 1000:.0f} ms",
            flush=True,
        )
        launches, rate, worker_cpu, api_cpu = drain(dep, host, args.tasks)
        print(f"launches: {launches:.0f}/s", flush=True)
        print(f"drain: {args.tasks} tasks at {rate:.2f} tasks/s", flush=True)
        print(f"CPU per task: worker tree {worker_cpu:.3f} s, API {api_cpu:.3f} s", flush=True)
        if args.plain:
            runs, plain = plain_drain(nodes, host, args.plain, workdir)
            print(
                f"baseline: {args.plain} one-host `true` runs of plain ansible-playbook, tuned, "
                f"{AT_ONCE} at a time: {runs:.2f} runs/s, {plain:.3f} CPU-s each; "
                f"opsjob drains {rate / runs:.1f}x as fast at {worker_cpu / plain:.2f}x the CPU",
                flush=True,
            )
        failed = dep.failed()
        worker = dep.worker_pid()
        fds = ", ".join(f"{p}: {fd_count(p)}" for p in [worker, *descendants(worker)])
        print(f"fds after (worker first, then its live descendants): {fds}")
        print(f"tasks not success: {failed}")
        if args.hosts:
            ops, plain = host_steps(dep, nodes, addresses, args.repeat, workdir)
            print(
                f"controller CPU per host-step at {args.hosts} nodes: opsjob {ops:.3f} s, "
                f"plain ansible-playbook {plain:.3f} s, ratio {ops / plain:.2f}",
                flush=True,
            )
    finally:
        dep.close()
        nodes.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--tasks", type=int, default=200)
    p.add_argument("--pickups", type=int, default=20)
    p.add_argument("--plain", type=int, default=40, help="baseline runs (0: none)")
    p.add_argument("--kinds", default="rc,norc", help="rc (nodes as they come), norc, or both")
    p.add_argument("--hosts", type=int, default=0, help="also measure a step on this many nodes")
    p.add_argument("--repeat", type=int, default=3, help="runs of the --hosts step")
    args = p.parse_args(argv)
    kinds = args.kinds.split(",")
    if not kinds or set(kinds) - {"rc", "norc"}:
        p.error("--kinds: rc, norc or both")
    print(f"one loopback node, {os.cpu_count()} cores")
    for kind in kinds:
        measure(args, kind == "rc")


if __name__ == "__main__":
    main()
