"""Crontabs fire: the minute tick, exactly once across schedulers, time zones, and end to end
through a real worker's queue."""

import dataclasses
import datetime
import threading
import time

import pytest

from api.server.app import create_app
from engine import boot
from engine.errors import InvalidInput
from engine.run import queue
from engine.schedule import scheduler
from engine.store.db import database
from engine.store.models import CrontabLock, Task
from engine.store.settings import Settings
from tests.cluster import Cluster
from tests.conftest import Api
from tests.test_run import cmd, unique

AT = datetime.datetime(2026, 3, 2, 10, 5)  # a Monday, 10:05 server local time
STEP = cmd("s", ["127.0.0.2"], "true")


def make_job(api, name, pid=1, permanent=True):
    return api.post(
        f"/jobs/{pid}", json={"name": name, "permanent": permanent, "data": [STEP]}
    ).json["uuid"]


def make_crontab(api, jobuuid, cron, pid=1, on=True, key="admin", **kw):
    cid = api.post(
        f"/crontab/{pid}", json={"name": unique("c"), "jobuuid": jobuuid, "cron": cron, **kw}
    ).json["id"]
    if on:
        api.ok("POST", f"/crontab/{pid}/{cid}/status", json={"status": "available"}, key=key)
    return cid


def fired_tasks():
    with database.connection_context():
        return list(Task.select().where(Task.calltype == "crontab").order_by(Task.id))


def pending_runs():
    return [m.args[0] for m in queue.huey().pending() if m.name == "opsjob.run_task"]


def test_a_tick_fires_what_is_due_once(api):
    writer = api.user("writer", 1, "write")
    live = make_job(api, "live")
    draft = make_job(api, "draft", permanent=False)
    gone = make_job(api, "gone")
    other = make_job(api, "other", pid=2)
    due = make_crontab(api, live, "*/5 10 * * 1", key=writer, mutex="deploy", mutex_policy="queue")
    make_crontab(api, live, "6 10 * * *")  # not this minute
    make_crontab(api, live, "* * * * *", on=False)  # switched off
    make_crontab(api, draft, "* * * * *")  # a transient job never fires
    make_crontab(api, gone, "* * * * *")
    api.ok("DELETE", f"/jobs/1/{gone}")  # a deleted job never fires
    make_crontab(api, other, "* * * * *", pid=2)
    api.ok("POST", "/project/2", json={"status": "inactive"})  # nor does an inactive project

    minute = scheduler.minute_id(AT)
    with database.connection_context():
        started = scheduler.fire(minute)
    assert len(started) == 1
    (task,) = fired_tasks()
    assert (task.uuid, task.projectid, task.jobuuid, task.name) == (started[0], 1, live, "live")
    assert (task.calltype, task.jobtype, task.user, task.status) == (
        "crontab",
        "jobs",
        "writer",  # the crontab's last editor
        "init",
    )
    assert (task.mutex, task.mutex_policy, task.variable) == ("deploy", "queue", "{}")
    assert started[0] in pending_runs()
    with database.connection_context():
        lock = CrontabLock.get(CrontabLock.crontabid == due)
        assert (lock.timeid, lock.taskuuid) == (minute, task.uuid)
        assert scheduler.fire(minute) == []  # the same minute again: already fired
        assert len(scheduler.fire(scheduler.minute_id(AT.replace(minute=10)))) == 1
    assert len(fired_tasks()) == 2


def test_concurrent_ticks_fire_each_crontab_once(api, threads=4):
    job = make_job(api, "many")
    crontabs = [make_crontab(api, job, "* * * * *") for _ in range(12)]
    minutes = [scheduler.minute_id(AT) + n for n in range(3)]
    barrier = threading.Barrier(threads)
    started, errors = [], []

    def tick(minute):
        try:
            with database.connection_context():  # one connection per scheduler
                barrier.wait()
                started.extend(scheduler.fire(minute))
        except Exception as e:  # surfaced below; a thread must not swallow it
            errors.append(e)

    for minute in minutes:
        workers = [threading.Thread(target=tick, args=(minute,)) for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(60)
    assert errors == []
    assert len(started) == len(set(started)) == len(crontabs) * len(minutes)
    with database.connection_context():
        pairs = [(r.crontabid, r.timeid) for r in CrontabLock.select()]
    assert sorted(pairs) == sorted((c, m) for c in crontabs for m in minutes)
    assert len(fired_tasks()) == len(crontabs) * len(minutes)


def test_a_late_fire_is_dropped_so_a_returning_scheduler_fires_no_burst(api):
    make_crontab(api, make_job(api, "every"), "* * * * *")
    now = scheduler.minute_id()
    for missed in range(now - 10, now - 1):  # minutes a stopped scheduler left behind
        assert scheduler.fire_minute(missed) == []
    assert fired_tasks() == []
    assert len(scheduler.fire_minute(now)) == 1


def test_plan_schedules_the_next_minute_boundary(api):
    before = time.time()
    scheduler.plan()
    after = time.time()
    fires = [t for t in queue.huey().pending() if t.name == "opsjob.cron_fire"]
    later = [t for t in fires if t.eta is not None]
    assert len(later) == 1
    (minute,) = later[0].args
    assert int(before // 60) + 1 <= minute <= int(after // 60) + 1
    eta = later[0].eta.replace(tzinfo=datetime.UTC).timestamp()
    assert abs(eta - minute * 60) < 1.0  # at :00, not a minute after the consumer started
    at_once = [t.args for t in fires if t.eta is None]
    just_began = before - int(before // 60) * 60 < scheduler.EARLY
    assert at_once == ([(minute - 1,)] if just_began else [])


def test_schedules_are_read_in_opsjob_tz(settings):
    api = Api(create_app(dataclasses.replace(settings, tz="Asia/Tokyo")))
    cid = make_crontab(api, make_job(api, "tokyo"), "0 9 * * *")
    detail = api.ok("GET", f"/crontab/1/{cid}")
    assert detail["tz"] == "Asia/Tokyo"
    assert [t[11:] for t in detail["next"]] == ["09:00:00"] * 5
    today_tokyo = datetime.datetime.now(datetime.timezone(datetime.timedelta(hours=9))).date()
    first = datetime.date.fromisoformat(detail["next"][0][:10])
    assert first - today_tokyo in (datetime.timedelta(0), datetime.timedelta(days=1))
    midnight_utc = datetime.datetime(2026, 3, 2, 0, 0, tzinfo=datetime.UTC)
    with database.connection_context():
        assert scheduler.fire(scheduler.minute_id(midnight_utc + datetime.timedelta(hours=9))) == []
        assert len(scheduler.fire(scheduler.minute_id(midnight_utc))) == 1  # 09:00 in Tokyo


def test_an_unknown_time_zone_is_refused_at_start_up(settings):
    with pytest.raises(InvalidInput, match="OPSJOB_TZ"):
        create_app(dataclasses.replace(settings, tz="Mars/Olympus"))
    assert Settings.from_env({"OPSJOB_TZ": "Europe/Paris"}).tz == "Europe/Paris"


# -- end to end: a real worker process fires crontabs -------------------------------------------


@pytest.fixture(scope="module")
def cluster(ssh_nodes):
    c = Cluster(ssh_nodes)
    c.run("project", "add", "1", "cron")
    c.serve()
    c.add_nodes(1, ssh_nodes.ensure(1))
    node = ssh_nodes.addresses[0]
    every = c.ok(
        "POST",
        "/jobs/1",
        {"name": "every-minute", "permanent": 1, "data": [cmd("tick", [node], "echo tick")]},
    )["uuid"]
    cid = c.ok("POST", "/crontab/1", {"name": "every", "jobuuid": every, "cron": "* * * * *"})["id"]
    c.every = (cid, "every-minute")
    c.worker()
    yield c
    c.close()


def crontab_tasks(c, jobname):
    rows = c.ok("GET", f"/task/1?name={jobname}")["data"]
    return [r for r in rows if r["calltype"] == "crontab" and r["name"] == jobname]


@pytest.mark.slow
def test_the_registered_fire_task_runs_a_crontab_through_the_real_queue(cluster, ssh_nodes):
    c = cluster
    editor = c.run("user", "add", "cronedit", "--project", "1", "--role", "write")
    node = ssh_nodes.addresses[0]
    job = c.ok(
        "POST",
        "/jobs/1",
        {"name": "nightly", "permanent": 1, "data": [cmd("say", [node], "echo fired by cron")]},
    )["uuid"]
    # Point this process's queue at the cluster's, as its scheduler would use it.
    boot.start(Settings(home=c.home, database_url=c.env["OPSJOB_DATABASE_URL"]))
    minute = scheduler.minute_id()
    at = scheduler.local_minute(minute)
    cid = c.ok("POST", "/crontab/1", {"name": "n", "jobuuid": job, "cron": f"{at:%M %H} * * *"})[
        "id"
    ]
    c.ok("POST", f"/crontab/1/{cid}/status", {"status": "available"}, key=editor)
    scheduler.enqueue_fire(minute)
    deadline = time.monotonic() + 60
    while not crontab_tasks(c, "nightly") and time.monotonic() < deadline:
        time.sleep(0.2)
    (task,) = crontab_tasks(c, "nightly")
    done = c.wait(1, task["uuid"])
    assert (done["status"], done["user"], done["calltype"]) == ("success", "cronedit", "crontab")
    log = c.ok("GET", f"/slave/any/tasklog/{task['uuid']}")["data"]["log"]
    assert "fired by cron" in log
    scheduler.enqueue_fire(minute)  # a second scheduler's fire of the same minute
    time.sleep(2)
    assert len(crontab_tasks(c, "nightly")) == 1


@pytest.mark.slow
def test_the_periodic_scheduler_fires_on_the_minute(cluster):
    c = cluster
    cid, name = c.every
    c.ok("POST", f"/crontab/1/{cid}/status", {"status": "available"})
    deadline = time.monotonic() + 75
    while not crontab_tasks(c, name) and time.monotonic() < deadline:
        time.sleep(0.5)
    c.ok("POST", f"/crontab/1/{cid}/status", {"status": "unavailable"})
    first = crontab_tasks(c, name)[-1]
    done = c.wait(1, first["uuid"])
    assert done["status"] == "success"
    created = datetime.datetime.strptime(done["create_time"], "%Y-%m-%d %H:%M:%S")
    assert created.second <= 5, done  # aligned to :00, not to the worker's start
