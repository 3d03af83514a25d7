"""CPU time of processes, read from /proc (what the benchmarks charge to a process tree)."""

import os

TICK = os.sysconf("SC_CLK_TCK")


def cpu(pid, reaped=True):
    """CPU-seconds of ``pid`` (with its reaped children when ``reaped``), 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if reaped:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / TICK


def descendants(pid):
    """Live descendants of ``pid``, whichever of their parent's threads started them."""
    out, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{parent}/task/{tid}/children") as f:
                    kids = [int(p) for p in f.read().split()]
            except OSError:
                continue
            out += kids
            todo += kids
    return out


def tree_cpu(pid):
    """CPU-seconds of ``pid`` and its live descendants, each with the children it reaped (a
    process's reaped children count in its counters only)."""
    return cpu(pid) + sum(cpu(p) for p in descendants(pid))
