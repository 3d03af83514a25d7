"""CPU time of processes, read from /proc (what the benchmarks charge to a process tree)."""

import os
import resource

from engine.ansible.proctree import pids_with_env

TICK = os.sysconf("SC_CLK_TCK")


def reaped_cpu():
    """CPU-seconds of the children this process has waited for (a finished subprocess, with
    the children it reaped in turn)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


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


def marked(name, value):
    """Pids whose environment holds ``name=value``: a tree that a bench tagged at its root,
    including the processes that left it (daemons in their own session, such as ssh's
    ControlPersist masters, whose parent is no longer in the tree)."""
    return pids_with_env(name, value)


def marked_cpu(pids):
    """CPU-seconds of ``pids``, each with the children it reaped. Taken before and after a run
    of processes that all carry the mark, the difference is the run's CPU: a process that
    ends is counted by the marked parent that reaps it (an ssh master outlives the run)."""
    return sum(cpu(p) for p in pids)


def memory(pids):
    """``(PSS bytes, open descriptors)`` of ``pids`` together (PSS splits shared pages among
    the processes that share them, so forked workers are not counted many times)."""
    pss = fds = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1]) * 1024
                        break
            fds += len(os.listdir(f"/proc/{pid}/fd"))
        except OSError:
            continue
    return pss, fds
