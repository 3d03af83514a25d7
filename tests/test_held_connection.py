"""Each server thread keeps its database connection from one request to the next, and a lost
one is replaced: a read that races a terminated backend is sent again on a fresh connection."""

import pytest

from engine.store import db
from engine.store.db import database
from tests.test_dbretry import terminate_backends


def test_a_thread_keeps_its_connection_between_requests(api):
    api.ok("GET", "/jobs/1")
    held = database._state.conn
    for _ in range(3):
        api.ok("GET", "/jobs/1")
    assert database._state.conn is held and not database.is_closed()


@pytest.mark.parametrize("settings", ["postgres"], indirect=True)
def test_an_idle_connection_whose_backend_was_terminated_is_replaced(api, settings, monkeypatch):
    api.ok("GET", "/jobs/1")
    before = database._state.conn
    monkeypatch.setattr(db, "PING_AFTER", 0.0)  # as if the connection had sat idle
    terminate_backends(settings.database)
    api.ok("GET", "/jobs/1")
    assert database._state.conn is not before
    terminate_backends(settings.database)
    api.ok("GET", "/task/1")


@pytest.mark.parametrize("settings", ["postgres"], indirect=True)
def test_a_read_racing_the_loss_is_sent_again_on_a_fresh_connection(api, settings, monkeypatch):
    api.ok("GET", "/jobs/1")
    monkeypatch.setattr(db, "PING_AFTER", 3600.0)  # busy: no check before the request
    held = database._state.conn
    terminate_backends(settings.database)
    api.ok("GET", "/jobs/1")
    assert database._state.conn is not held
    api.ok("GET", "/jobs/1")


def test_reads_on_two_api_processes_ride_out_terminated_backends(pg_url):
    """`opsjob serve` (two processes, their threads each holding a connection) while every
    backend of the database is terminated, three times: once a reader had its first answer,
    every read answers 200."""
    import threading
    import time

    from tests.cluster import Cluster
    from tests.httpclient import call

    c = Cluster(None, database_url=pg_url)
    stop, answers = threading.Event(), []

    def reader():
        first = False
        while not stop.is_set():
            try:
                status = call("GET", f"{c.url}/task/1", c.key)[0]
            except OSError as e:  # no answer at all: a failed read too
                status = repr(e)
            first = first or status == 200
            if first:
                answers.append(status)

    try:
        c.run("project", "add", "1", "p")
        c.serve()
        readers = [threading.Thread(target=reader) for _ in range(8)]
        for t in readers:
            t.start()
        deadline = time.monotonic() + 20
        while len(answers) < 200:
            assert time.monotonic() < deadline, answers[-5:]
            time.sleep(0.05)
        for _ in range(3):
            before = len(answers)
            killed = terminate(pg_url)
            assert killed >= 2  # at least one connection of each API process
            while len(answers) < before + 100:
                assert time.monotonic() < deadline + 30, answers[-5:]
                time.sleep(0.05)
    finally:
        stop.set()
        for t in readers:
            t.join(30)
        c.close()
    assert [a for a in answers if a != 200] == [], c.logs()[-2000:]


def terminate(url):
    """Terminate every backend of the database at ``url``; return how many there were."""
    import psycopg

    from tests.faultparts import PG_ADMIN

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (url.rsplit("/", 1)[1],),
        ).fetchone()[0]
