"""How many hosts one step run drives at once (Ansible's forks).

Per host the controller mostly waits: on the SSH handshake, on the node's shell and on the
command. A worker can therefore drive several hosts per core; past a point more forks only
add processes that compete for the same cores (and memory: each fork is a copy of the
controller). The automatic choice grows with the worker's cores and never exceeds the step's
hosts; ``OPSJOB_ANSIBLE_FORKS`` fixes it for a worker, and a step's own ``forks`` sets it for
that step.
"""

import os

PER_CORE = 8  # forks per core of the worker (measured: see README "Sizing a worker")
LEAST = 10  # a small worker still runs this many at once (the old fixed default)
MOST = 200  # never more, whatever the cores


def automatic(hosts: int, cores: int | None = None) -> int:
    """The forks a worker with ``cores`` (default: this machine's usable ones) uses for a step
    on ``hosts`` hosts when neither the worker nor the step sets them."""
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    return max(1, min(hosts, max(LEAST, min(MOST, PER_CORE * max(1, cores)))))


def choose(hosts: int, setting: int = 0, step: int = 0, cores: int | None = None) -> int:
    """Forks for a run on ``hosts`` hosts: the step's own ``step`` when it sets one, else the
    worker's ``setting``, else :func:`automatic`; never more than the hosts, at least 1."""
    chosen = step if step > 0 else setting if setting > 0 else automatic(hosts, cores)
    return max(1, min(hosts, chosen))
