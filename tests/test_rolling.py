"""Rolling a step over its hosts in batches: the grammar, and rollouts on real loopback nodes
(batches in order, a failure threshold that stops the rollout, a pause that waits for next, a
retry that runs only the hosts that did not succeed)."""

import os
import time

import pytest

from engine.catalog import rolling
from tests.cluster import cmd_step, unique

PID = 1


@pytest.mark.parametrize(
    ("total", "expression", "sizes"),
    [
        (10, "3", [3, 3, 3, 1]),
        (10, "25%", [3, 3, 3, 1]),
        (10, "100%", [10]),
        (20, "1 +2", [1, 3, 5, 7, 4]),
        (20, "1 *2", [1, 2, 4, 8, 5]),
        (20, "1 10% 50%", [1, 2, 10, 7]),
        (3, "5", [3]),
        (1, "1%", [1]),
    ],
)
def test_batch_sizes(total, expression, sizes):
    assert rolling.sizes(total, expression) == sizes
    names = [f"h{n}" for n in range(total)]
    batches = rolling.batches(names, expression)
    assert [len(b) for b in batches] == sizes
    assert [n for b in batches for n in b] == names  # every host once, in step order


def test_no_expression_is_one_batch():
    assert rolling.batches(["a", "b"], "") == [["a", "b"]]
    assert rolling.batches([], "2") == []


@pytest.mark.parametrize(
    ("failed", "total", "most", "stops"),
    [(0, 10, "0", False), (1, 10, "0", True), (2, 10, "2", False), (3, 10, "2", True),
     (1, 4, "25%", False), (2, 4, "25%", True), (0, 4, "0%", False), (4, 4, "100%", False)],
)  # fmt: skip
def test_failure_threshold(failed, total, most, stops):
    assert rolling.too_many_failed(failed, total, most) is stops


@pytest.fixture(scope="module")
def cluster(ssh_nodes):
    from tests.cluster import running

    with running(ssh_nodes, {PID: "rolling"}, nodes=5) as c:
        c.five = c.attached
        yield c


@pytest.mark.parametrize(
    ("field", "value"),
    [("rolling", "+2"), ("rolling", "2 x"), ("rolling", "0"), ("rolling", "120%"),
     ("max_fail", "-1"), ("max_fail", "101%"), ("rolling_pause", "maybe"),
     ("forks", "-1"), ("forks", "1001")],
)  # fmt: skip
def test_bad_rolling_fields_are_refused_naming_the_field(cluster, field, value):
    step = cmd_step("true", cluster.five, **{"rolling": "2", field: value})
    status, body = cluster.call("POST", f"/jobs/{PID}", {"name": unique("job"), "data": [step]})
    assert status == 400 and body["stat"] is False, body
    assert field in body["info"], body


def test_a_step_run_on_its_own_cannot_pause_between_batches(cluster):
    body = {**cmd_step("true", cluster.five, rolling="2", rolling_pause=1)}
    status, answer = cluster.call("POST", f"/task/{PID}/plugin_cmd", body)
    assert status == 400 and "rolling_pause" in answer["info"], answer


def run_job(c, step):
    job = c.ok("POST", f"/jobs/{PID}", {"name": unique("job"), "permanent": 1, "data": [step]})
    return c.ok("POST", f"/task/{PID}/job", {"jobuuid": job["uuid"]})["uuid"]


def hosts(c, task, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return c.ok("GET", f"/task/{PID}/{task}/hosts?{query}")["data"]


def log_of(c, task):
    return c.ok("GET", f"/slave/any/tasklog/{task}")["data"]["log"]


def subtask(c, task):
    return c.ok("GET", f"/subtask/{PID}/{task}")["data"][0]


def control(c, task, what):
    step = subtask(c, task)
    body = {"taskuuid": task, "subtaskuuid": step["uuid"], "subtasktype": "cmd", "control": what}
    c.ok("PUT", f"/subtask/{PID}", body)


def _assert_in_order(rows):
    """Every host of a batch started after every host of the batch before had ended."""
    by_batch = {}
    for r in rows:
        by_batch.setdefault(r["batch"], []).append(r)
    numbers = sorted(by_batch)
    for before, after in zip(numbers, numbers[1:], strict=False):
        ended = max(r["finishtime"] for r in by_batch[before])
        started = min(r["starttime"] for r in by_batch[after])
        assert started >= ended, (before, after, by_batch)


@pytest.mark.parametrize("expression", ["2", "40%"])
def test_batches_run_in_order(cluster, expression):
    batches = [1, 1, 2, 2, 3]
    c = cluster
    task = run_job(c, cmd_step("sleep 0.3; hostname -I", c.five, rolling=expression))
    assert c.wait(PID, task)["status"] == "success", log_of(c, task)
    rows = hosts(c, task)
    assert [(r["host"], r["batch"]) for r in rows] == list(zip(c.five, batches, strict=True))
    assert {r["status"] for r in rows} == {"ok"}
    _assert_in_order(rows)
    log = log_of(c, task)
    for number, first in ((1, c.five[0]), (2, c.five[2]), (3, c.five[4])):
        assert f"batch {number} of 3: " in log and first in log, log
    assert log.index("batch 1 of 3") < log.index("batch 2 of 3") < log.index("batch 3 of 3")


def test_the_failure_threshold_stops_the_rollout_and_a_retry_runs_only_the_rest(cluster):
    c = cluster
    flag = f"/tmp/opsjob-rolling-{unique()}"
    bad = c.five[1]
    script = f'case "$SSH_CONNECTION" in *" {bad} "*) test -e {flag} || exit 3;; esac; echo done'
    task = run_job(c, cmd_step(script, c.five, rolling="1 2", max_fail="0"))
    c.wait(PID, task, statuses=("waiting",))
    deadline = time.monotonic() + 30
    while subtask(c, task)["status"] != "decision":
        assert time.monotonic() < deadline, subtask(c, task)
        time.sleep(0.1)
    rows = {r["host"]: r for r in hosts(c, task)}
    assert [(h, rows[h]["status"], rows[h]["batch"]) for h in c.five] == [
        (c.five[0], "ok", 1),
        (bad, "failed", 2),
        (c.five[2], "ok", 2),
        (c.five[3], "skipped", 3),
        (c.five[4], "skipped", 3),
    ]
    assert rows[c.five[3]]["starttime"] is None  # never run
    assert "rollout stopped after batch 2" in rows[c.five[3]]["stderr"]
    log = log_of(c, task)
    assert "the rollout stopped after batch 2 of 3: 1 of 5 node(s) failed" in log, log
    assert "batch 3 of 3" not in log, log

    open(flag, "w").close()  # every node is this machine: the bad one now succeeds
    try:
        control(c, task, "running")
        assert c.wait(PID, task)["status"] == "success", log_of(c, task)
    finally:
        os.unlink(flag)
    second = [r for r in hosts(c, task) if r["attempt"] == 2]
    assert [(r["host"], r["status"]) for r in second] == [
        (bad, "ok"), (c.five[3], "ok"), (c.five[4], "ok")
    ]  # fmt: skip
    assert [r["batch"] for r in second] == [1, 2, 2]  # "1 2" over the three left


def test_a_pause_between_batches_waits_for_next(cluster):
    c = cluster
    step = cmd_step("hostname -I", c.five[:4], rolling="50%", rolling_pause=1, pause="look")
    task = run_job(c, step)
    c.wait(PID, task, statuses=("waiting",))
    paused = subtask(c, task)
    assert paused["status"] == "running", paused
    assert paused["pause"] == "rolling: batch 1 of 2 done, next runs batch 2", paused
    assert [r["host"] for r in hosts(c, task)] == c.five[:2]
    time.sleep(1.5)  # nothing moves while it waits
    assert [r["host"] for r in hosts(c, task)] == c.five[:2]
    assert c.ok("GET", f"/task/{PID}/{task}")["data"]["status"] == "waiting"

    control(c, task, "next")
    deadline = time.monotonic() + 60
    while subtask(c, task)["status"] != "success":
        assert time.monotonic() < deadline, subtask(c, task)
        time.sleep(0.2)
    rows = hosts(c, task)
    assert [(r["host"], r["batch"], r["attempt"]) for r in rows] == [
        (h, 1 + n // 2, 1) for n, h in enumerate(c.five[:4])
    ]
    _assert_in_order(rows)
    # then the step's own pause, after its last batch
    c.wait(PID, task, statuses=("waiting",))
    assert subtask(c, task)["pause"] == "look"
    control(c, task, "next")
    assert c.wait(PID, task)["status"] == "success"
    assert "paused after batch 1 of 2" in log_of(c, task)


def test_a_steps_forks_caps_the_hosts_run_at_once(cluster):
    c = cluster
    task = run_job(c, cmd_step("date +%s.%N; sleep 0.5; date +%s.%N", c.five[:3], forks=1))
    assert c.wait(PID, task)["status"] == "success", log_of(c, task)
    # the nodes' own clocks (every node is this machine): when the command began and ended
    spans = sorted(tuple(map(float, r["stdout"].split())) for r in hosts(c, task))
    for (_, ended), (started, _) in zip(spans, spans[1:], strict=False):
        assert started >= ended, spans  # one host at a time
    assert {r["batch"] for r in hosts(c, task)} == {None}  # not a rollout
