"""Logs are live and durable: a line is stored within a second even when nothing else is
written, and lines written while the disk is full are kept and stored once it has room."""

import os
import time

import pytest

from engine.store import schema
from engine.store.db import database, open_database
from engine.store.models import LogChunk, Task
from engine.tasklog import logs
from tests.faultparts import fill, small_disk


def stored(uuid):
    with database.connection_context():
        return logs.read(uuid)["log"]


def wait_for(predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_a_lone_line_is_stored_within_a_second(app):
    with database.connection_context():
        Task.create(projectid=1, uuid="lone00000000", name="t", status="running")
    writer = logs.LogWriter("lone00000000")
    writer.line("started")  # the first line of a run; the step after it may take minutes
    started = time.monotonic()
    assert wait_for(lambda: stored("lone00000000") == "started\n", 3)
    assert time.monotonic() - started < 1.5
    for i in range(5):  # lines written in a burst are batched, not a row each
        writer.line(f"line {i}")
    assert wait_for(lambda: "line 4" in stored("lone00000000"), 3)
    with database.connection_context():
        assert LogChunk.select().where(LogChunk.taskuuid == "lone00000000").count() <= 3


@pytest.fixture
def full_disk_db():
    with small_disk("16m") as home:
        open_database(f"sqlite:///{home}/opsjob.db")
        schema.upgrade()
        with database.connection_context():
            Task.create(projectid=1, uuid="full00000000", name="t", status="running")
        yield home
        database.close()


def test_lines_written_on_a_full_disk_are_stored_when_it_has_room(full_disk_db, capfd):
    writer = logs.LogWriter("full00000000")
    writer.line("before")
    writer.flush()
    ballast = fill(full_disk_db)
    for i in range(200):
        writer.line(f"while full {i} " + "x" * 500)  # more than the database's free pages
    writer.flush()  # does not raise: the lines are held
    assert writer.stalled and "while full 199" in "".join(writer.buffer)  # held in memory
    assert "log lines held in memory" in capfd.readouterr().err
    os.unlink(ballast)
    writer.line("after")
    assert wait_for(lambda: stored("full00000000").endswith("after\n"), 5)
    lines = stored("full00000000").splitlines()
    assert lines[0] == "before" and lines[-1] == "after"
    assert [line.split()[2] for line in lines[1:-1]] == [str(i) for i in range(200)]


def test_lines_beyond_the_bound_are_counted_in_the_log(full_disk_db, monkeypatch):
    monkeypatch.setattr(logs, "HELD_CHARS", 2000)
    writer = logs.LogWriter("full00000000")
    ballast = fill(full_disk_db)
    writer.line("first")
    writer.flush()
    assert writer.stalled
    for i in range(100):
        writer.line(f"line {i} " + "y" * 100)
    writer.flush()
    os.unlink(ballast)
    assert wait_for(lambda: not writer.stalled, 5)  # a timer stored what was held
    writer.line("after")
    assert wait_for(lambda: stored("full00000000").endswith("after\n"), 5)
    text = stored("full00000000")
    kept = [line for line in text.splitlines() if line.startswith("line ")]
    assert 5 < len(kept) < 100
    assert f"[{100 - len(kept)} log line(s) not stored: the disk was full]" in text
