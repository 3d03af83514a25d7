"""How many hosts a step run drives at once: the automatic choice from the hosts and the
worker's cores, the worker's setting (OPSJOB_ANSIBLE_FORKS) and a step's own ``forks``."""

import pytest

from engine.ansible import forks
from tests.cluster import cmd_step, running

PID = 1


@pytest.mark.parametrize(
    ("hosts", "cores", "chosen"),
    [
        (1, 2, 1),  # never more than the hosts
        (5, 2, 5),
        (1000, 1, 10),  # a small worker still runs the old default at once
        (1000, 2, 16),
        (1000, 8, 64),
        (1000, 64, 200),  # never more than MOST
        (30, 8, 30),
    ],
)
def test_automatic_grows_with_cores_within_the_hosts(hosts, cores, chosen):
    assert forks.automatic(hosts, cores) == chosen


def test_automatic_reads_this_machines_cores():
    assert 1 <= forks.automatic(1000) <= forks.MOST


@pytest.mark.parametrize(
    ("hosts", "setting", "step", "chosen"),
    [
        (1000, 0, 0, 16),  # automatic
        (1000, 50, 0, 50),  # the worker's setting
        (1000, 50, 5, 5),  # a step's own wins, smaller
        (1000, 5, 300, 300),  # or larger
        (3, 50, 0, 3),  # never more than the hosts
        (3, 0, 10, 3),
        (0, 0, 0, 1),  # at least one
    ],
)
def test_the_step_then_the_worker_then_automatic(hosts, setting, step, chosen):
    assert forks.choose(hosts, setting, step, cores=2) == chosen


@pytest.fixture(scope="module")
def two_forks(ssh_nodes):
    """A worker told to drive two hosts at once, with four nodes."""
    env = {"OPSJOB_ANSIBLE_FORKS": "2"}
    with running(ssh_nodes, {PID: "forks"}, nodes=4, worker_env=env) as c:
        c.four = c.attached
        yield c


def test_the_workers_setting_is_honoured(two_forks):
    c = two_forks
    body = cmd_step("date +%s.%N; sleep 1; date +%s.%N", c.four, name="forks")
    body.pop("plugin_type")
    task = c.ok("POST", f"/task/{PID}/plugin_cmd", body)["data"]["uuid"]
    assert c.wait(PID, task)["status"] == "success"
    rows = c.ok("GET", f"/task/{PID}/{task}/hosts")["data"]
    # the nodes' own clocks (every node is this machine): when each command began and ended
    spans = [tuple(map(float, r["stdout"].split())) for r in rows]
    assert len(spans) == 4
    at_once = max(sum(1 for b, e in spans if b <= t < e) for t, _ in spans)
    assert at_once == 2, spans
