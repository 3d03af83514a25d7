"""The local processes of one step run, found by a marker in their environment, and killed.

ansible-core forks its workers into their own sessions, so killing ``ansible-playbook``'s
process group leaves them running. Every process of a run carries ``MARK=<marker>`` in its
environment instead, and a cancel kills them all (except the SSH master connections, which
are reused and run nothing of ours).
"""

import os
import signal
import time

MARK = "OPSJOB_RUN_MARK"  # environment variable that tags a run's local processes


def _marked_pids(marker: str) -> list[int]:
    """Pids of our processes whose environment holds ``MARK=marker``."""
    return pids_with_env(MARK, marker)


def pids_with_env(name: str, value: str) -> list[int]:
    """Pids of the processes we may read whose environment holds ``name=value``."""
    needle = f"{name}={value}".encode() + b"\0"
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as f:
                if needle in f.read() + b"\0":
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def _stat(pid: int) -> tuple[int, bytes] | None:
    """``(ppid, cmdline)`` of ``pid``, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return ppid, f.read()
    except (OSError, IndexError, ValueError):
        return None


def kill_local_tree(marker: str) -> None:
    """SIGKILL every process of this run except runner's own child (runner kills and reaps
    that one) and the SSH master connections (they are reused; they run nothing of ours)."""
    me = os.getpid()
    for _ in range(5):
        victims = []
        for pid in _marked_pids(marker):
            info = _stat(pid)
            if info is None or info[0] == me or b"[mux]" in info[1]:
                continue
            victims.append(pid)
        if not victims:
            return
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.02)


def stop_child(marker: str) -> None:
    """Freeze the run's processes so that none starts a new worker while they are killed.

    Runner's child is ``ansible-playbook``, or on the warm path the launcher, whose run is
    a child of the warm controller (engine.ansible.warm_server): all of them are frozen,
    the SSH master connections aside."""
    for pid in _marked_pids(marker):
        info = _stat(pid)
        if info and b"[mux]" not in info[1]:
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                pass
