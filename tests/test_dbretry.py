"""A lost database connection is ridden out by the run path's writes (engine.store.db.retrying)."""

import time

import psycopg
import pytest
from peewee import InterfaceError, OperationalError

from engine.store.db import database, open_database, retrying
from tests.faultparts import PG_ADMIN
from tests.httpclient import free_port

LOST = (OperationalError, InterfaceError)


def terminate_backends(url):
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )


def one():
    return database.execute_sql("SELECT 1").fetchone()[0]


def statement():
    """Not a SELECT: a statement the database never sends again by itself."""
    return database.execute_sql("VALUES (1)").fetchone()[0]


@pytest.fixture
def pg(pg_url):
    open_database(pg_url)
    yield pg_url
    if not database.is_closed():
        database.close()


def test_a_terminated_connection_is_replaced_and_the_contexts_around_it_still_exit(pg):
    with database.connection_context():
        assert statement() == 1
        terminate_backends(pg)
        with pytest.raises(LOST):  # the fault is real: the held connection is gone
            statement()
        with database.connection_context():
            assert retrying(statement, seconds=5) == 1
            terminate_backends(pg)
            assert retrying(statement, seconds=5) == 1
        assert statement() == 1  # the fresh connection is this thread's from now on
    assert database.is_closed()


def test_a_read_outside_a_transaction_is_sent_again_once_on_a_fresh_connection(pg):
    with database.connection_context():
        assert one() == 1
        held = database._state.conn
        terminate_backends(pg)
        assert one() == 1  # SELECT: nothing changed, so it was sent again on a fresh one
        assert database._state.conn is not held
        terminate_backends(pg)
        with pytest.raises(LOST):  # anything else is its caller's to repeat
            statement()


def test_a_retry_gives_up_after_its_bound(pg):
    open_database(f"postgresql://postgres@127.0.0.1:{free_port()}/nothing")
    t0 = time.monotonic()
    with pytest.raises(LOST):
        retrying(one, seconds=1)
    assert 0.5 < time.monotonic() - t0 < 5


def test_nothing_is_retried_inside_a_transaction(pg):
    calls = []

    def inside():
        calls.append(1)
        return one()

    with database.connection_context():
        one()
        with pytest.raises(LOST):
            with database.atomic():
                terminate_backends(pg)
                retrying(inside, seconds=5)  # the transaction is lost: its opener retries
        assert calls == [1]
        assert retrying(one, seconds=5) == 1
