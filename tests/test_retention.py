"""Retention: a prune deletes exactly the old finished history, on SQLite and PostgreSQL; a dry
run deletes nothing; the daily prune runs once however many schedulers ask; the API keeps
answering while a prune runs."""

import datetime
import os
import threading
import time

from engine.ops import retention
from engine.store import schema
from engine.store.clock import now
from engine.store.db import database, open_database
from engine.store.models import (
    Approval,
    CmdLog,
    CrontabLock,
    FileServer,
    HostResult,
    LogChunk,
    NotifyLog,
    Subtask,
    Task,
    TaskMutex,
)
from tests.test_run import cmd

DAY = datetime.timedelta(days=1)
STEP = cmd("s", ["127.0.0.2"], "true")
TABLES = [Task, Subtask, HostResult, LogChunk, NotifyLog, TaskMutex, CmdLog, FileServer, Approval]


def add_task(uuid, status, created, finished=None, rows=True):
    """A task with one row in each table that belongs to a task."""
    Task.create(projectid=1, uuid=uuid, status=status, create_time=created, finishtime=finished)
    if rows:
        Subtask.create(parent_uuid=uuid, position=0, subtask_type="cmd", uuid=f"s{uuid}")
        HostResult.create(taskuuid=uuid, stepuuid=f"s{uuid}", host="h", status="ok")
        LogChunk.create(taskuuid=uuid, offset=0, text=f"log of {uuid}\n")
        NotifyLog.create(
            taskuuid=uuid, event="e", status=status, channel="email", outcome="ok",
            create_time=created,
        )  # fmt: skip
        Approval.create(
            projectid=1, taskuuid=uuid, stepuuid=f"a{uuid}", uuid=f"a{uuid}", user="ann",
            deadline=0, create_time=created,
        )  # fmt: skip


def counts():
    return {m._meta.table_name: m.select().count() for m in TABLES}


def uuids():
    return sorted(t.uuid for t in Task.select(Task.uuid))


def blob(settings, content, age_days):
    import hashlib

    digest = hashlib.sha256(content).hexdigest()
    path = os.path.join(settings.home, "filestore", "blobs", digest[:2], digest)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(content)
    stamp = time.time() - age_days * 86400
    os.utime(path, (stamp, stamp))
    return digest, path


def history(settings):
    """Old and recent history of every kind; return the blobs by what should become of them."""
    open_database(settings.database)
    schema.upgrade()
    old, recent = now() - 100 * DAY, now() - 10 * DAY
    with database.connection_context():
        for status in ("success", "fail", "refuse"):
            add_task(f"old-{status}", status, old, old + DAY)
            add_task(f"new-{status}", status, recent, recent + DAY)
        add_task("old-nofinish", "refuse", old)  # refused before it started: no finish time
        for status in ("init", "running", "waiting"):  # live tasks stay, however old
            add_task(f"live-{status}", status, old)
        TaskMutex.create(projectid=1, mutex="m", taskuuid="live-running")
        add_task("long-wait", "success", old, recent)  # began long ago, ended recently
        CmdLog.create(projectid=1, user="u", node="n", cmd="old", time=old)
        CmdLog.create(projectid=1, user="u", node="n", cmd="new", time=recent)
        NotifyLog.create(  # attempts of tasks that are gone
            taskuuid="gone-old", event="e", status="fail", channel="sms", outcome="ok",
            create_time=old,
        )  # fmt: skip
        NotifyLog.create(
            taskuuid="gone-new", event="e", status="fail", channel="sms", outcome="ok",
            create_time=recent,
        )  # fmt: skip
        blobs = {
            "orphan-old": blob(settings, b"nobody names me", 100),
            "orphan-new": blob(settings, b"nobody names me yet", 1),
            "live-old": blob(settings, b"a live row names me", 100),
            "deleted-new": blob(settings, b"deleted recently", 100),
            "deleted-old": blob(settings, b"deleted long ago", 100),
        }
        for name, status, edited in (
            ("live-old", "available", old),
            ("deleted-new", "deleted", recent),
            ("deleted-old", "deleted", old),
        ):
            FileServer.create(
                projectid=1, name=name, md5="0" * 32, sha256=blobs[name][0], status=status,
                create_time=old, edit_time=edited,
            )  # fmt: skip
    return blobs


def test_prune_deletes_exactly_the_old_finished_history(settings):
    blobs = history(settings)
    with database.connection_context():
        before = counts()
    dry = retention.prune(settings, dry_run=True, batch=2, pause=0)
    with database.connection_context():
        assert counts() == before  # a dry run deletes nothing
    assert all(os.path.exists(path) for _, path in blobs.values())

    done = retention.prune(settings, batch=2, pause=0)  # small batches: many of them
    expected = {
        "task": 4,
        "subtask": 4,
        "host_result": 4,
        "log_chunk": 4,
        "notify_log": 5,  # four of deleted tasks, one of a task gone long ago
        "task_mutex": 0,
        "approval": 4,
        "cmdlog": 1,
        "fileserver": 1,
        "blobs": 2,
    }
    for what, n in expected.items():
        assert dry.get(what, 0) == n, (what, dry)
        assert done.get(what, 0) == n, (what, done)
    assert (
        done["blob_bytes"]
        == dry["blob_bytes"]
        == len(b"nobody names me") + len(b"deleted long ago")
    )
    with database.connection_context():
        assert uuids() == sorted(
            ["new-success", "new-fail", "new-refuse", "long-wait"]
            + ["live-init", "live-running", "live-waiting"]
        )
        kept = set(uuids())
        for model, column in retention.TASK_ROWS:
            assert {getattr(r, column.name) for r in model.select()} <= kept | {"gone-new"}
        assert Subtask.select().count() == HostResult.select().count() == len(kept)
        assert TaskMutex.select().count() == 1
        assert [r.cmd for r in CmdLog.select()] == ["new"]
        assert sorted(r.name for r in FileServer.select()) == ["deleted-new", "live-old"]
        assert NotifyLog.select().where(NotifyLog.taskuuid == "gone-new").count() == 1
    gone = {"orphan-old", "deleted-old"}
    for name, (_, path) in blobs.items():
        assert os.path.exists(path) == (name not in gone), name

    again = retention.prune(settings, pause=0)
    assert {k: v for k, v in again.items() if k != "freed_pages"} == {}


def test_retention_days_zero_keeps_everything(settings):
    import dataclasses

    history(settings)
    with database.connection_context():
        before = counts()
    assert retention.prune(dataclasses.replace(settings, retention_days=0)) == {}
    with database.connection_context():
        assert counts() == before


def test_the_daily_prune_runs_once_with_two_schedulers(settings):
    history(settings)
    day = int(time.time() // 86400)
    barrier, results, errors = threading.Barrier(2), [], []

    def scheduler():
        try:
            with database.connection_context():  # each scheduler its own connection
                barrier.wait()
                results.append(retention.daily(settings, day=day))
        except Exception as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=scheduler) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    ran = [r for r in results if r is not None]
    assert len(results) == 2 and len(ran) == 1 and ran[0]["task"] == 4
    assert retention.daily(settings, day=day) is None  # later that day: already done
    with database.connection_context():
        locks = CrontabLock.select().where(CrontabLock.crontabid == retention.PRUNE_LOCK_ID)
        assert [r.timeid for r in locks] == [day * 1440]
    assert retention.daily(settings, day=day + 1) is not None  # the next day runs again


def test_sqlite_gives_freed_pages_back(settings, monkeypatch):
    if not settings.database.startswith("sqlite"):
        return  # PostgreSQL's autovacuum reuses space in place
    open_database(settings.database)
    schema.upgrade()
    old = now() - 200 * DAY
    with database.connection_context():
        assert database.execute_sql("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
        with database.atomic():
            for n in range(300):
                add_task(f"t{n}", "success", old, old, rows=False)
                LogChunk.create(taskuuid=f"t{n}", offset=0, text="x" * 20000)
    path = settings.database.split(":///", 1)[1]
    with database.connection_context():
        database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    before = os.path.getsize(path)
    done = retention.prune(settings, pause=0)
    with database.connection_context():
        database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    assert done["task"] == 300 and done["freed_pages"] > 0
    assert os.path.getsize(path) < before / 4, (before, os.path.getsize(path))

    with database.connection_context(), database.atomic():  # free pages again
        for n in range(300):
            LogChunk.create(taskuuid="again", offset=n, text="y" * 20000)
    with database.connection_context():
        LogChunk.delete().execute()
        free = database.execute_sql("PRAGMA freelist_count").fetchone()[0]
    steps = []
    monkeypatch.setattr(retention.time, "sleep", steps.append)
    assert retention.reclaim(pause=0.5, pages=512) == free
    assert len(steps) <= free // 512 + 1  # a step gives back up to 512 pages, not one


def test_the_api_answers_while_a_prune_runs(api, settings):
    old = now() - 200 * DAY
    with database.connection_context(), database.atomic():
        for n in range(1500):
            add_task(f"p{n:05d}", "success", old, old)
        add_task("recent", "success", now(), now())
    job = api.post("/jobs/1", json={"name": "kept", "permanent": True, "data": [STEP]}).json["uuid"]
    statuses, errors = [], []
    prune = threading.Thread(
        target=lambda: errors.append(retention.prune(settings, batch=50, pause=0.02))
    )
    prune.start()
    n = during = 0
    while prune.is_alive() or n < 20:
        during += prune.is_alive()
        for r in (
            api.get("/task/1", params={"pagesize": 20}),
            api.get("/slave/any/tasklog/recent"),
            api.get(f"/jobs/1/{job}"),
            api.post("/jobs/1", json={"name": f"during-{n}", "data": [STEP]}),
        ):
            statuses.append(r.status_code)
        n += 1
    prune.join(120)
    (done,) = errors
    assert done["task"] == 1500 and done["log_chunk"] == 1500
    assert set(statuses) == {200}, [s for s in statuses if s != 200][:5]
    assert during >= 5, during  # rounds of requests that overlapped the prune


def test_the_prune_command_counts_then_deletes(tmp_path):
    import subprocess
    import sys

    from engine.store.settings import Settings

    settings = Settings(home=str(tmp_path))
    history(settings)
    opsjob = os.path.join(os.path.dirname(sys.executable), "opsjob")
    env = {**os.environ, "OPSJOB_HOME": str(tmp_path), "OPSJOB_DATABASE_URL": ""}

    def prune(*args):
        out = subprocess.run([opsjob, "prune", *args], env=env, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return out.stdout

    assert "would delete 4 task\n" in prune("--dry-run")
    with database.connection_context():
        assert Task.select().count() == 11
    out = prune()
    assert "deleted 4 task\n" in out and "deleted 2 blobs\n" in out
    with database.connection_context():
        assert Task.select().count() == 7
    assert "deleted" not in prune("--vacuum").replace("deleted 0", "")
