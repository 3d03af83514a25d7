"""Soak benchmark: many small tasks through one `opsjob up`, watching for leaks.

Sends ``--tasks`` one-host `true` cmd tasks (as bench.tasks does) to `opsjob up` at its
defaults (SQLite, 2 API processes, a worker running 4 tasks at once) on one loopback SSH node,
``--every`` at a time, and after each batch has ended prints:
- RSS (sum of VmRSS, MiB) of the worker's process tree (the warm controller included) and of
  the API processes (gunicorn's master and its workers);
- their open file descriptors and their process counts, and the SSH master connections
  (``[mux]`` processes, which leave the tree);
- leftovers: run dirs under ``$OPSJOB_HOME/runs``, this worker's warm controller folders,
  every entry of the ``/tmp/oj-*`` folders, and the node scripts' ``/tmp/.opsjob-*`` files
  (SSH masters and the last two are the machine's: another opsjob on it moves them too, so
  they are shown but not judged).
At the end it says which of them grew after the first ``--warmup`` tasks.

Run from the repository root:  .venv/bin/python -m bench.soak [--tasks 1500]
"""

import argparse
import glob
import os
import time

from tests.sshnodes import _children, start_nodes

from .proc import descendants
from .tasks import Deployment

MIB = 1024 * 1024
# Columns: (key, header, how much above the warm-up value counts as growth); None: the
# machine's figure (this user's SSH masters, every /tmp/oj-* and /tmp/.opsjob-* entry), which
# another opsjob on the machine moves too: shown, not judged.
COLUMNS = [
    ("worker_rss", "worker RSS", 0.10),
    ("api_rss", "API RSS", 0.10),
    ("worker_fds", "worker fds", 0),
    ("api_fds", "API fds", 0),
    ("worker_procs", "worker procs", 0),
    ("api_procs", "API procs", 0),
    ("run_dirs", "run dirs", 0),
    ("warm_dirs", "warm dirs", 0),
    ("masters", "ssh masters*", None),
    ("tmp_oj", "/tmp/oj-* entries*", None),
    ("node_files", "node files*", None),
]


def rss(pid):
    """Resident memory of ``pid`` in bytes (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def ssh_masters():
    """SSH master connections of this user (their ``[mux]`` processes)."""
    count = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                if f.read().startswith(b"ssh: ") and os.stat(f"/proc/{name}").st_uid == os.getuid():
                    count += 1
        except OSError:
            continue
    return count


def entries(pattern):
    """How many entries the folders matching ``pattern`` hold (recursively)."""
    count = 0
    for top in glob.glob(pattern):
        for _, dirs, files in os.walk(top):
            count += len(dirs) + len(files)
    return count


def sample(dep):
    """One row of figures for the deployment ``dep`` (a bench.tasks.Deployment)."""
    worker = dep.worker_pid()
    worker_tree = [worker, *descendants(worker)]
    api = [dep.up.pid] + [p for p in _children(dep.up.pid) if p != worker]
    api += [d for p in api[1:] for d in descendants(p)]
    runs = os.path.join(dep.cluster.home, "runs")
    return {
        "worker_rss": sum(rss(p) for p in worker_tree) / MIB,
        "api_rss": sum(rss(p) for p in api) / MIB,
        "worker_fds": sum(fds(p) for p in worker_tree),
        "api_fds": sum(fds(p) for p in api),
        "worker_procs": len(worker_tree),
        "api_procs": len(api),
        "masters": ssh_masters(),
        "run_dirs": len(glob.glob(os.path.join(runs, "run-*"))),
        "warm_dirs": len(glob.glob(f"/tmp/oj-warm-{os.getuid()}/{worker}-*")),
        "tmp_oj": entries("/tmp/oj-*"),
        "node_files": len(glob.glob("/tmp/.opsjob-*")),
    }


def row(done, figures, rate):
    cells = [f"{done:>6}"]
    for key, header, _ in COLUMNS:
        value = figures[key]
        text = f"{value:.1f}" if isinstance(value, float) else str(value)
        cells.append(f"{text:>{len(header)}}")
    return " | ".join(cells) + f" | {rate:>7.2f}"


def grown(warm, last, peak, tasks):
    """Say, per figure, whether it grew after the warm-up (its last value above the warm-up
    value by more than the column's margin), with its change per 1,000 tasks."""
    out = []
    for key, header, margin in COLUMNS:
        before, after, top = warm[key], last[key], peak[key]
        if margin is None:
            verdict = "not judged, the machine's"
        else:
            verdict = "GREW" if after > before * (1 + margin) else "steady"
        per_k = (after - before) * 1000 / max(1, tasks)
        if isinstance(before, float):
            figures = f"after warm-up {before:.1f}, last {after:.1f}, peak {top:.1f}"
        else:
            figures = f"after warm-up {before}, last {after}, peak {top}"
        out.append(f"{header}: {verdict} ({figures}; {per_k:+.2f} per 1,000 tasks)")
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--tasks", type=int, default=1500, help="tasks to send in all")
    p.add_argument("--every", type=int, default=100, help="tasks per batch, a row after each")
    p.add_argument("--warmup", type=int, default=300, help="tasks before growth is judged")
    args = p.parse_args(argv)
    nodes = start_nodes(1)
    host = nodes.addresses[0]
    dep = Deployment(nodes, [host])
    try:
        print(f"soak: {args.tasks} one-host `true` tasks, {args.every} at a time", flush=True)
        headers = ["tasks", *(h for _, h, _ in COLUMNS), "tasks/s"]
        print(" | ".join(headers) + "   (*: the machine's)", flush=True)
        print(row(0, sample(dep), 0.0), flush=True)
        done, warm, last, peak = 0, None, None, {}
        while done < args.tasks:
            batch = min(args.every, args.tasks - done)
            t0 = time.monotonic()
            for _ in range(batch):
                dep.launch([host], name="soak")
            dep.wait_all(done + batch, timeout=60 + batch * 5)
            rate = batch / (time.monotonic() - t0)
            done += batch
            time.sleep(1.0)  # let the last ansible processes end and be reaped
            last = sample(dep)
            print(row(done, last, rate), flush=True)
            if warm is None and done >= args.warmup:
                warm = last
            elif warm is not None:
                peak = {k: max(peak.get(k, v), v) for k, v in last.items()}
        print(f"tasks not success: {dep.failed()}")
        if warm is None or not peak:
            print(f"too few tasks past the warm-up ({args.warmup}) to judge growth")
            return
        lines = grown(warm, last, peak, done - args.warmup)
        print(f"after the warm-up ({args.warmup} tasks) to the end ({done}):")
        for line in lines:
            print("  " + line)
        grew = [line.split(":")[0] for line in lines if "GREW" in line]
        print("grew: " + (", ".join(grew) if grew else "nothing"), flush=True)
    finally:
        dep.close()
        nodes.stop()


if __name__ == "__main__":
    main()
