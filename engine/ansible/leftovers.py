"""End what a step run left running: its process groups on the nodes, and what a dead worker
left of its runs on this host.

The cleanup runs ``ansible-playbook`` directly with its output discarded: on a full disk
nothing of it needs writing under the run dir (ansible-runner would write its artifacts there).
"""

import logging
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from engine.ansible import proctree, rundir
from engine.ansible.forks import choose as choose_forks

if TYPE_CHECKING:
    from engine.store.settings import Settings

log = logging.getLogger(__name__)

# Seconds the cleanup playbook may take at most: enough for a slow, loaded controller (a step
# is judged only after it, so that nothing of it still runs).
CLEANUP_TIMEOUT = 30
CLEANUP_CONNECT_TIMEOUT = 5  # seconds for an SSH connection during the cleanup


def stop_orphan(settings: "Settings") -> Callable[[str, str], None]:
    """Return ``stop(pdd, marker)`` for :func:`engine.ansible.rundir.sweep_orphans`.

    It kills the local processes of a dead worker's run, then the process groups the run left
    on its nodes."""

    def stop(pdd: str, marker: str) -> None:
        if marker:
            proctree.kill_local_tree(marker)
        if os.path.exists(os.path.join(rundir.cleanup_dir(pdd), "project", "cleanup.yml")):
            log.warning("run %s: its worker died; stopping what it left running", pdd)
            stop_remote(pdd, settings)

    return stop


def stop_remote(
    pdd: str, settings: "Settings", hosts: Sequence[str] | None = None, agent: str | None = None
) -> None:
    """Kill what the run of ``pdd`` left on ``hosts`` (all its hosts when None): best effort,
    bounded in time. ``agent``: the socket of a contained run's identity (its broker's).

    The cleanup runs outside any sandbox, with plain ssh and the worker's network."""
    marker = uuid.uuid4().hex
    pdd = rundir.cleanup_dir(pdd)
    env = {
        **os.environ,
        **rundir.ansible_env(pdd, marker),
        "ANSIBLE_TIMEOUT": str(CLEANUP_CONNECT_TIMEOUT),
        "ANSIBLE_SSH_ARGS": rundir.ssh_args(settings),
        "ANSIBLE_SSH_EXECUTABLE": "ssh",
    }
    if agent:
        env["SSH_AUTH_SOCK"] = agent
    inventories = rundir.inventories(pdd)
    argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook")]
    for inventory in inventories if isinstance(inventories, list) else [inventories]:
        argv += ["-i", inventory]
    if hosts:
        argv += ["--limit", ",".join(hosts)]
    forks = choose_forks(len(hosts or ()) or 10, int(settings.ansible_forks))
    argv += ["--forks", str(forks), os.path.join(pdd, "project", "cleanup.yml")]
    try:
        proc = subprocess.Popen(
            argv,
            env=env,
            cwd=os.path.join(pdd, "project"),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            _, err = proc.communicate(timeout=CLEANUP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            _, err = proc.communicate()
            log.warning("stopping run %s on the nodes took over %s s", pdd, CLEANUP_TIMEOUT)
        if proc.returncode:
            tail = err.decode("utf-8", "replace").strip()[-500:]
            log.warning("stopping run %s on the nodes ended rc %s: %s", pdd, proc.returncode, tail)
    except Exception:
        log.exception("stopping run %s on the nodes failed", pdd)
    finally:
        proctree.kill_local_tree(marker)
