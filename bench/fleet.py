"""Fleet benchmark: one cmd step (``hostname``) on N loopback nodes (default 1,000) through
opsjob at its defaults, against plain ``ansible-playbook`` tuned the same way (no facts,
pipelining, ControlPersist, as many forks as opsjob uses), on the same hosts, in the same run.

The nodes are as they come: their login shell runs its rc files for every command. opsjob is a
real deployment (``opsjob serve`` and ``opsjob worker``, SQLite) whose step runs over a node
group of the project's machines.

Controller CPU is that of every process carrying a marker the bench puts in the environment of
the worker (or of ``ansible-playbook``): the worker, the warm controller, Ansible's forks,
their ssh clients, and the ssh ControlPersist masters, which start their own session and
leave the process tree. Peak memory is the largest PSS of those processes together (sampled
each second), with their open descriptors at that moment. While opsjob's step runs a thread
polls the task, its log and its host results over HTTP and records the answer times.

    .venv/bin/python -m bench.fleet [--hosts 1000] [--repeat 1] [--forks N] [--no-plain]
                                    [--ssh-kex NAMES]

``--forks`` sets ``OPSJOB_ANSIBLE_FORKS`` for the worker (default: the worker's own choice);
plain Ansible gets the same number opsjob uses. ``--ssh-kex`` sets the worker's
``OPSJOB_SSH_KEX_ALGORITHMS`` and gives plain Ansible's ssh the same ``KexAlgorithms``.
"""

import argparse
import os
import resource
import statistics
import subprocess
import tempfile
import threading
import time
import uuid

from engine.ansible import forks as forks_of
from engine.store.settings import Settings
from tests.cluster import Cluster
from tests.httpclient import call
from tests.sshnodes import start_nodes

from .fanout import plain_command
from .proc import marked, marked_cpu, memory, reaped_cpu

MARK = "OPSJOB_BENCH_TREE"
ANSIBLE_SSH_ARGS = "-C -o ControlMaster=auto -o ControlPersist=60s"  # Ansible's default


class Tree:
    """CPU, peak memory and descriptors of the processes marked ``MARK=<tag>`` during a run;
    a marked process this one started counts through its reaped children's CPU once it ended
    (this process starts nothing else while a Tree measures)."""

    def __init__(self, tag):
        self.tag = tag
        self.peak = (0, 0, 0)  # PSS bytes, descriptors, processes
        self._stop = threading.Event()

    def __enter__(self):
        self.cpu0 = marked_cpu(marked(MARK, self.tag)) + reaped_cpu()
        self.t0 = time.monotonic()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(1.0):
            pids = marked(MARK, self.tag)
            pss, fds = memory(pids)
            if pss > self.peak[0]:
                self.peak = (pss, fds, len(pids))

    def __exit__(self, *exc):
        self.seconds = time.monotonic() - self.t0
        self._stop.set()
        self._thread.join()
        self.cpu = marked_cpu(marked(MARK, self.tag)) + reaped_cpu() - self.cpu0


class Poller(threading.Thread):
    """Reads the task, its log and a page of its host results in turn, timing each answer."""

    def __init__(self, cluster, task, every=0.2):
        super().__init__(daemon=True)
        self.cluster, self.every = cluster, every
        self.paths = [
            f"/task/1/{task}",
            f"/slave/bench/tasklog/{task}",
            f"/task/1/{task}/hosts?page=1&pagesize=100",
        ]
        self.times = []
        self.done = threading.Event()

    def run(self):
        n = 0
        while not self.done.is_set():
            path = self.paths[n % len(self.paths)]
            t0 = time.monotonic()
            status, _ = call("GET", self.cluster.url + path, self.cluster.key)
            self.times.append(time.monotonic() - t0)
            if status != 200:
                raise RuntimeError(f"GET {path} answered {status}")
            n += 1
            self.done.wait(self.every)


def raise_open_files(want):
    """Raise the soft limit of open files towards ``want`` (the hard limit caps it); return it.
    Each host holds an ssh master and its sockets for the whole step."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        soft = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft


def run_opsjob(cluster, group, tag, hosts):
    """One cmd step over the node group; return (Tree, API answer times, hosts ok)."""
    poller = None
    with Tree(tag) as tree:
        body = {
            "name": "fleet",
            "node_type": "group",
            "node_cont": str(group),
            "scripts_type": "shell",
            "scripts_cont": "hostname",
            "scripts_argv": "",
        }
        task = cluster.ok("POST", "/task/1/plugin_cmd", body)["data"]["uuid"]
        poller = Poller(cluster, task)
        poller.start()
        try:
            ended = cluster.wait(1, task, timeout=3600)
        finally:
            poller.done.set()
            poller.join()
        time.sleep(0.3)  # the worker's bookkeeping after the answer
    if ended["status"] != "success":
        raise RuntimeError(f"opsjob task ended {ended['status']}: {ended['reason']}")
    counts = cluster.ok("GET", f"/task/1/{task}/hosts?page=1&pagesize=1")["counts"]
    return tree, poller.times, counts.get("ok", 0)


def run_plain(argv, env, tag):
    """One plain ansible-playbook run; return its Tree."""
    with Tree(tag) as tree:
        out = subprocess.run(argv, env={**env, MARK: tag}, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"plain ansible-playbook failed:\n{out.stdout[-3000:]}")
    return tree


def row(name, tree, hosts, base=None):
    pss, fds, procs = tree.peak
    line = (
        f"  {name:22} {tree.seconds:8.1f} {tree.cpu / hosts * 1000:9.0f} "
        f"{pss / 2**20:9.0f} {fds:6} {procs:6}"
    )
    if base is not None:
        line += f"   {tree.seconds / base.seconds:5.2f}x {tree.cpu / base.cpu:5.2f}x"
    print(line, flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--hosts", type=int, default=1000)
    p.add_argument("--repeat", type=int, default=1, help="runs of each side (best is kept)")
    p.add_argument("--forks", type=int, default=0, help="OPSJOB_ANSIBLE_FORKS of the worker")
    p.add_argument("--no-plain", action="store_true", help="opsjob's runs only (to compare forks)")
    p.add_argument("--ssh-kex", default="", help="ssh KexAlgorithms of both sides")
    args = p.parse_args(argv)
    n = args.hosts
    limit = raise_open_files(4 * n + 1024)
    print(f"{n} loopback nodes (rc files run) on {os.cpu_count()} cores; open files limit {limit}")
    worker_env = {"OPSJOB_ANSIBLE_FORKS": str(args.forks)} if args.forks else {}
    if args.ssh_kex:
        worker_env["OPSJOB_SSH_KEX_ALGORITHMS"] = args.ssh_kex
    settings = Settings.from_env({**os.environ, **worker_env})
    forks = forks_of.choose(n, settings.ansible_forks)
    tag = uuid.uuid4().hex
    nodes = start_nodes(n, rc_files=True)
    workdir = tempfile.mkdtemp(prefix="opsjob-fleet-")
    cluster = Cluster(nodes)
    try:
        addresses = nodes.addresses[:n]
        cluster.run("project", "add", "1", "bench")
        cluster.serve()
        worker = cluster.worker(env={**worker_env, MARK: tag})
        t0 = time.monotonic()
        cluster.add_nodes(1, addresses)
        group = cluster.ok(
            "POST",
            "/nodegroup/1",
            {"name": "fleet", "plugin": "node", "params": addresses},
        )["id"]
        print(
            f"machines and node group added in {time.monotonic() - t0:.1f} s; forks {forks}; "
            f"worker pid {worker.pid}",
            flush=True,
        )
        argv, env = plain_command(nodes, addresses, workdir, "cmd", False, True, forks)
        if args.ssh_kex:
            env["ANSIBLE_SSH_ARGS"] = f"{ANSIBLE_SSH_ARGS} -o KexAlgorithms={args.ssh_kex}"
        ours, theirs, answers = [], [], []
        for r in range(args.repeat):
            tree, times, ok = run_opsjob(cluster, group, tag, n)
            ours.append(tree)
            answers += times
            print(
                f"opsjob run {r + 1}: {tree.seconds:.1f} s, {tree.cpu / n * 1000:.0f} CPU ms/host, "
                f"{ok} of {n} hosts ok",
                flush=True,
            )
            if args.no_plain:
                continue
            theirs.append(run_plain(argv, env, uuid.uuid4().hex))
            t = theirs[-1]
            print(
                f"plain run {r + 1}: {t.seconds:.1f} s, {t.cpu / n * 1000:.0f} CPU ms/host",
                flush=True,
            )
        if args.no_plain:
            return
        base = min(theirs, key=lambda t: t.seconds)
        best = min(ours, key=lambda t: t.seconds)
        print(
            f"\none cmd step on {n} hosts, {forks} forks, ssh key exchange "
            f"{args.ssh_kex or 'ssh default'}; best of {args.repeat}:\n"
            f"  {'':22} {'wall s':>8} {'CPU ms/h':>9} {'peak MiB':>9} {'fds':>6} {'procs':>6}"
            f"   {'wall':>6} {'CPU':>6}"
        )
        row("plain tuned", base, n)
        row("opsjob", best, n, base)
        answers.sort()
        print(
            f"  API while the step ran: {len(answers)} answers, slowest "
            f"{answers[-1] * 1000:.0f} ms, median {statistics.median(answers) * 1000:.0f} ms"
        )
    finally:
        cluster.close()
        nodes.stop()
        subprocess.run(["rm", "-rf", workdir], check=False)


if __name__ == "__main__":
    main()
