"""Each server thread keeps its database connection from one request to the next, and a lost
one is replaced: a terminated backend costs at most the one request that raced it."""

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
def test_a_request_racing_the_loss_fails_once_and_the_next_one_reconnects(
    api, settings, monkeypatch
):
    api.ok("GET", "/jobs/1")
    monkeypatch.setattr(db, "PING_AFTER", 3600.0)  # busy: no check before the request
    terminate_backends(settings.database)
    r = api.get("/jobs/1")
    assert r.status_code == 503 and r.json["stat"] is False
    api.ok("GET", "/jobs/1")
