"""Task mutexes: one running holder per (project, mutex), with the fail, skip and queue policies.

The race tests claim many tasks at the same moment from threads with their own database
connections (SQLite and PostgreSQL); the end-to-end tests overlap real tasks that sleep on
loopback sshd nodes under a real worker process.
"""

import threading
import time

import pytest

from engine.run import mutex
from engine.run.queue import huey
from engine.store.db import database
from engine.store.models import Task, TaskMutex
from tests.cluster import Cluster
from tests.test_run import cmd, unique

PID = 1


def claimed(uuid, policy="fail", name="m1", projectid=PID):
    """A task row as a worker's claim leaves it: running, no plan yet."""
    with database.connection_context():
        return Task.create(
            projectid=projectid,
            uuid=uuid,
            name=uuid,
            user="root",
            status="running",
            mutex=name,
            mutex_policy=policy,
        )


def status_of(uuid):
    with database.connection_context():
        return Task.get(Task.uuid == uuid).status


def pending_runs():
    return [m.args[0] for m in huey().pending() if m.name == "opsjob.run_task"]


def race(tasks):
    """Pass every task through the gate at the same moment; return {uuid: verdict}."""
    barrier = threading.Barrier(len(tasks))
    verdicts = {}

    def one(task):
        with database.connection_context():
            barrier.wait()
            verdicts[task.uuid] = mutex.gate(task)

    threads = [threading.Thread(target=one, args=(t,)) for t in tasks]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return verdicts


@pytest.mark.parametrize("policy", ["fail", "skip", "queue"])
def test_claims_at_the_same_moment_let_exactly_one_run(api, policy):
    for round_ in range(3):
        tasks = [claimed(f"r{round_}{policy}{i:02d}", policy, name=f"m{round_}") for i in range(8)]
        verdicts = race(tasks)
        winners = [u for u, v in verdicts.items() if v is mutex.GO]
        assert len(winners) == 1, verdicts
        with database.connection_context():
            assert [r.taskuuid for r in TaskMutex.select()] == winners
            TaskMutex.delete().execute()
        losers = [v for u, v in verdicts.items() if u != winners[0]]
        if policy == "fail":
            assert losers == [("fail", f"task mutex from: {winners[0]}")] * 7
        elif policy == "skip":
            assert losers == [("refuse", f"task mutex skip: m{round_} held by {winners[0]}")] * 7
        else:
            assert losers == [None] * 7
            assert sorted(status_of(t.uuid) for t in tasks) == ["init"] * 7 + ["running"]


def test_no_mutex_always_runs_and_other_projects_do_not_block(api):
    with database.connection_context():
        free = Task.create(projectid=PID, uuid="nomutex00001", status="running")
    assert mutex.gate(free) is mutex.GO
    assert mutex.gate(claimed("p1holder0001")) is mutex.GO
    assert mutex.gate(claimed("p2other00001", projectid=2)) is mutex.GO
    assert mutex.gate(claimed("p1other00001")) == ("fail", "task mutex from: p1holder0001")


def test_queued_task_waits_in_init_and_the_holders_end_wakes_it(api):
    holder = claimed("holder000001")
    assert mutex.gate(holder) is mutex.GO
    lines = []
    first, second = claimed("queued000001", "queue"), claimed("queued000002", "queue")
    assert mutex.gate(first, note=lines.append) is None
    assert mutex.gate(second) is None
    with database.connection_context():
        row = Task.get(Task.uuid == "queued000001")
    assert (row.status, row.slave, row.pid, row.starttime) == ("init", "", None, None)
    assert "queued: mutex m1 is held by holder000001" in lines[0]
    before = len(pending_runs())
    with database.connection_context():
        Task.update(status="success").where(Task.uuid == holder.uuid).execute()
        mutex.on_task_changed(holder.uuid, "success")
        assert TaskMutex.select().count() == 0
    woken = pending_runs()[before:]
    assert woken == ["queued000001"]  # only the earliest, so they start in submission order


def test_a_later_queued_task_never_jumps_the_queue(api):
    with database.connection_context():
        Task.create(
            projectid=PID, uuid="earlier00001", status="init", mutex="m1", mutex_policy="queue"
        )
    later = claimed("later0000001", "queue")
    before = len(pending_runs())
    assert mutex.gate(later) is None  # the mutex is free, but an earlier task waits for it
    assert status_of("later0000001") == "init"
    assert pending_runs()[before:] == ["earlier00001"]


def test_a_holder_that_ended_without_releasing_is_cleared(api):
    ghost = claimed("ghost0000001")
    assert mutex.gate(ghost) is mutex.GO
    with database.connection_context():  # ended, but its release never ran (process died)
        Task.update(status="fail").where(Task.uuid == ghost.uuid).execute()
    assert mutex.gate(claimed("next00000001")) is mutex.GO
    with database.connection_context():
        assert [r.taskuuid for r in TaskMutex.select()] == ["next00000001"]


def test_sweep_wakes_a_queue_nobody_holds(api):
    holder = claimed("holder000002")
    assert mutex.gate(holder) is mutex.GO
    assert mutex.gate(claimed("stuck0000001", "queue")) is None
    with database.connection_context():  # the holder ended; its event was lost
        Task.update(status="success").where(Task.uuid == holder.uuid).execute()
    before = len(pending_runs())
    assert mutex.sweep() == ["stuck0000001"]
    assert pending_runs()[before:] == ["stuck0000001"]
    with database.connection_context():
        assert TaskMutex.select().count() == 0


def test_launch_routes_take_mutex_and_policy(api):
    job = api.post(
        "/jobs/1", json={"name": "j", "permanent": 1, "data": [cmd("s", ["127.0.0.2"], "true")]}
    ).json["uuid"]
    uuid = api.post(
        "/task/1/job", json={"jobuuid": job, "mutex": "deploy", "mutex_policy": "queue"}
    ).json["uuid"]
    detail = api.ok("GET", f"/task/1/{uuid}")
    assert (detail["mutex"], detail["mutex_policy"]) == ("deploy", "queue")
    again = api.post(
        "/task/1/job/byname", json={"jobname": "j", "mutex": "deploy", "mutex_policy": "skip"}
    ).json["uuid"]
    assert api.ok("GET", f"/task/1/{again}")["mutex_policy"] == "skip"
    plain = api.post("/task/1/job", json={"jobuuid": job}).json["uuid"]
    assert api.ok("GET", f"/task/1/{plain}")["mutex_policy"] == "fail"
    redo = api.post("/task/1/redo", json={"taskuuid": uuid}).json["uuid"]
    assert api.ok("GET", f"/task/1/{redo}")["mutex_policy"] == "queue"
    for path, body in (
        ("/task/1/job", {"jobuuid": job, "mutex": "m", "mutex_policy": "wait"}),
        ("/task/1/job/byname", {"jobname": "j", "mutex_policy": ["queue"]}),
    ):
        r = api.post(path, json=body)
        assert r.status_code == 400 and r.json["info"].startswith("mutex_policy:"), r.text


def test_crontab_keeps_its_policy_when_an_edit_omits_it(api):
    job = api.post(
        "/jobs/1", json={"name": "j", "permanent": 1, "data": [cmd("s", ["127.0.0.2"], "true")]}
    ).json["uuid"]
    body = {"name": "c", "jobuuid": job, "cron": "* * * * *", "mutex": "m"}
    cid = api.post("/crontab/1", json={**body, "mutex_policy": "queue"}).json["id"]
    assert api.ok("GET", f"/crontab/1/{cid}")["mutex_policy"] == "queue"
    api.ok("POST", f"/crontab/1/{cid}", json=body)  # an OpenC3 client's edit
    assert api.ok("GET", f"/crontab/1/{cid}")["mutex_policy"] == "queue"
    api.ok("POST", f"/crontab/1/{cid}", json={**body, "mutex_policy": "skip"})
    assert api.ok("GET", f"/crontab/1/{cid}")["mutex_policy"] == "skip"


# -- end to end: a real worker, real nodes, overlapping tasks -----------------------------------


@pytest.fixture(scope="module")
def cluster(ssh_nodes):
    c = Cluster(ssh_nodes, lease=10)
    c.run("project", "add", str(PID), "mutex")
    c.serve()
    c.worker(workers=4)
    c.add_nodes(PID, ssh_nodes.ensure(1))
    yield c
    c.close()


def sleeper(c, node, seconds, pause=""):
    return c.ok(
        "POST",
        f"/jobs/{PID}",
        {
            "name": unique("sleep"),
            "permanent": 1,
            "data": [cmd("sleep", [node], f"sleep {seconds}", pause=pause)],
        },
    )["uuid"]


def launch(c, jobuuid, name, policy):
    return c.ok(
        "POST", f"/task/{PID}/job", {"jobuuid": jobuuid, "mutex": name, "mutex_policy": policy}
    )["uuid"]


def detail(c, uuid):
    return c.ok("GET", f"/task/{PID}/{uuid}")["data"]


def wait_status(c, uuid, statuses, timeout=60):
    return c.wait(PID, uuid, statuses=statuses, timeout=timeout)


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["fail", "skip"])
def test_fail_and_skip_against_a_running_holder(cluster, ssh_nodes, policy):
    node = ssh_nodes.addresses[0]
    name = unique("m")
    holder = launch(cluster, sleeper(cluster, node, 4), name, "fail")
    wait_status(cluster, holder, ("running",))
    late = launch(cluster, sleeper(cluster, node, 0), name, policy)
    ended = cluster.wait(PID, late, timeout=20)
    if policy == "fail":
        assert (ended["status"], ended["reason"]) == ("fail", f"task mutex from: {holder}")
    else:
        assert ended["status"] == "refuse"
        assert ended["reason"] == f"task mutex skip: {name} held by {holder}"
    assert cluster.ok("GET", f"/subtask/{PID}/{late}")["data"] == []  # it ran nothing
    assert detail(cluster, holder)["status"] == "running"  # the holder is untouched
    assert cluster.wait(PID, holder)["status"] == "success"


@pytest.mark.slow
def test_queue_runs_waiting_tasks_one_at_a_time_in_submission_order(cluster, ssh_nodes):
    node = ssh_nodes.addresses[0]
    name = unique("q")
    holder = launch(cluster, sleeper(cluster, node, 3), name, "queue")
    wait_status(cluster, holder, ("running",))
    job = sleeper(cluster, node, 0)
    queued = [launch(cluster, job, name, "queue") for _ in range(3)]
    time.sleep(1.0)
    assert [detail(cluster, u)["status"] for u in queued] == ["init"] * 3
    assert detail(cluster, holder)["status"] == "running"
    runs = [cluster.wait(PID, u, timeout=60) for u in [holder, *queued]]
    assert [r["status"] for r in runs] == ["success"] * 4
    for before, after in zip(runs, runs[1:], strict=False):
        assert after["starttimems"] >= before["finishtimems"], (before, after)
    log = cluster.ok("GET", f"/slave/any/tasklog/{queued[0]}")["data"]["log"]
    assert f"queued: mutex {name} is held by {holder}" in log


@pytest.mark.slow
def test_a_waiting_holder_keeps_its_mutex_until_it_ends(cluster, ssh_nodes):
    node = ssh_nodes.addresses[0]
    name = unique("w")
    holder = launch(cluster, sleeper(cluster, node, 0, pause="look first"), name, "fail")
    wait_status(cluster, holder, ("waiting",))
    queued = launch(cluster, sleeper(cluster, node, 0), name, "queue")
    refused = launch(cluster, sleeper(cluster, node, 0), name, "fail")
    assert cluster.wait(PID, refused, timeout=20)["reason"] == f"task mutex from: {holder}"
    time.sleep(0.5)
    assert detail(cluster, queued)["status"] == "init"
    step = cluster.ok("GET", f"/subtask/{PID}/{holder}")["data"][0]
    body = {
        "taskuuid": holder,
        "subtaskuuid": step["uuid"],
        "subtasktype": "cmd",
        "control": "next",
    }
    cluster.ok("POST", f"/subtask/{PID}", body)
    done = cluster.wait(PID, holder)
    after = cluster.wait(PID, queued)
    assert (done["status"], after["status"]) == ("success", "success")
    assert after["starttimems"] >= done["finishtimems"]


@pytest.mark.slow
def test_two_tasks_submitted_together_never_both_run(cluster, ssh_nodes):
    node = ssh_nodes.addresses[0]
    name = unique("t")
    job = sleeper(cluster, node, 2)
    pair = [launch(cluster, job, name, "fail") for _ in range(2)]
    ends = sorted(cluster.wait(PID, u)["status"] for u in pair)
    assert ends == ["fail", "success"]
