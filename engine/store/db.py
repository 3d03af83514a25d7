"""Database connection: one proxy every model binds to, opened from a URL."""

import logging
import os
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlparse

import peewee
from peewee import DatabaseProxy, InterfaceError, OperationalError
from playhouse import db_url, pool

database = DatabaseProxy()
log = logging.getLogger(__name__)
T = TypeVar("T")

SQLITE_PRAGMAS = {
    # takes effect on a new database only (see engine.ops.retention.reclaim)
    "auto_vacuum": "incremental",
    "journal_mode": "wal",
    "synchronous": "normal",
    "foreign_keys": 1,
    "busy_timeout": 10000,
    "cache_size": -16000,
    "temp_store": "memory",
}


def open_database(url: str) -> peewee.Database:
    """Bind the models to the database at ``url`` and return the peewee database."""
    scheme = urlparse(url).scheme
    if scheme.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
        db = db_url.connect(url, pragmas=SQLITE_PRAGMAS, timeout=10)
    elif scheme in ("postgres", "postgresql") and "+pool" not in scheme:
        # A connection per request costs 15-25 ms on PostgreSQL: pool them per process.
        pooled = url.replace(f"{scheme}://", f"{scheme}+pool://", 1)
        sizes: dict[str, Any] = {"max_connections": 64, "stale_timeout": 300, "timeout": 30}
        parsed = db_url.connect(pooled, **sizes)  # checks the URL
        db = _PooledPostgres(parsed.database, **sizes, **parsed.connect_params)
    else:
        db = db_url.connect(url)
    if db.thread_safe:
        db._state = _ContextsKept()
    database.initialize(db)
    return db


class _ContextsKept(peewee._ConnectionLocal):
    """A thread's connection state whose open connection contexts survive a reconnect.

    Peewee forgets them when it connects or closes; a context entered before a lost connection
    was replaced would then fail on exit, and a run would fail for nothing.
    """

    def reset(self) -> None:
        contexts = getattr(self, "ctx", [])
        super().reset()
        self.ctx = contexts

    def set_connection(self, conn: Any) -> None:
        contexts = self.ctx
        super().set_connection(conn)
        self.ctx = contexts


_READ = re.compile(r"\s*\(*\s*SELECT\b", re.IGNORECASE)


if TYPE_CHECKING:
    _Mixin = peewee.Database  # what the mixin is mixed into
else:
    _Mixin = object


class _ReadsRetried(_Mixin):
    """A server database on which a read outside a transaction rides out a lost connection.

    After a restart, a failover or terminated backends, the first statement on a connection
    a thread kept finds it dropped. A SELECT outside a transaction changes nothing, so it is
    sent once more on a fresh connection (the pool checks the one it hands out) before the
    error reaches the caller. Writes are never repeated here (see :func:`retrying`).
    """

    _state: Any  # peewee keeps each thread's connection there

    def execute_sql(self, sql: str, params: Any = None) -> Any:
        try:
            return super().execute_sql(sql, params)
        except (OperationalError, InterfaceError):
            if self.in_transaction() or not _READ.match(sql) or not self._dropped():
                raise
            drop_connection(self)
            return super().execute_sql(sql, params)

    def _dropped(self) -> bool:
        conn = self._state.conn  # the driver marks a connection it found dropped
        return conn is not None and bool(getattr(conn, "closed", 0) or getattr(conn, "broken", 0))


class _PooledPostgres(_ReadsRetried, pool.PooledPostgresqlDatabase):
    """PostgreSQL, with connections pooled per process and reads that ride out a lost one."""


def is_sqlite() -> bool:
    """Tell whether the bound database is SQLite."""
    return database.obj is not None and database.obj.__class__.__name__.startswith("Sqlite")


# -- riding out a lost connection ------------------------------------------------------------

RETRY_FIRST = 0.1  # seconds before the first retry; doubled up to RETRY_MAX after each failure
RETRY_MAX = 2.0
_SQLITE_TRANSIENT = ("locked", "busy", "disk i/o", "unable to open")


def is_transient(exc: BaseException) -> bool:
    """Tell whether ``exc`` is a lost or busy connection that a retry may get past.

    On PostgreSQL every operational or interface error is about the connection or the server
    (a bad statement is a ProgrammingError); on SQLite only a lock or an I/O error is.
    """
    if not isinstance(exc, (OperationalError, InterfaceError)):
        return False
    if is_sqlite():
        text = str(exc).lower()
        return any(word in text for word in _SQLITE_TRANSIENT)
    return True


def drop_connection(db: Any = None) -> None:
    """Forget this thread's connection (of ``db``, by default the bound database), which may
    be dead; the next query opens another.

    (The pool checks an idle connection with a round trip before it hands it out.)
    """
    db = database.obj if db is None else db
    if db is None or db.in_transaction():
        return
    try:
        if hasattr(db, "manual_close"):
            db.manual_close()
        else:
            db.close()
    except Exception:  # closing a dead connection may fail: forget it anyway
        db._state.reset()


PING_AFTER = 1.0  # seconds a held connection may sit idle before it is checked with a round trip
HOLD_RETRY_SECONDS = 5.0  # how long a request waits for a lost database to come back


def hold_connection() -> None:
    """Give this thread a working connection, keeping the one it used last.

    Each request of a server thread reuses that thread's connection: no connect, no PRAGMAs,
    no pool check-out. One the driver already knows is broken is replaced. On a server
    database, one that sat idle for PING_AFTER seconds is checked with a round trip first,
    riding out a restart or a terminated backend (see :func:`retrying`). A read that races
    the loss is sent again on a fresh connection (:class:`_ReadsRetried`); a write that
    races it fails once and drops the connection (:func:`drop_connection`).
    """
    db = database.obj
    state = db._state
    if not db.is_closed() and getattr(state.conn, "closed", False):
        drop_connection()
    opened = db.connect(reuse_if_open=True)
    started = time.monotonic()
    if not opened and not is_sqlite() and started - getattr(state, "held_at", 0.0) > PING_AFTER:
        retrying(_ping, seconds=HOLD_RETRY_SECONDS, what="database check")
    state.held_at = started


def _ping() -> None:
    database.execute_sql("SELECT 1").fetchone()


def retrying(
    fn: Callable[..., T],
    *args: Any,
    seconds: float = 30.0,
    what: str = "database write",
    **kwargs: Any,
) -> T:
    """Call ``fn(*args, **kwargs)``; on a lost connection reconnect and call it again.

    Retries back off from RETRY_FIRST to RETRY_MAX seconds and stop after ``seconds``: then
    the last error is raised. Inside a transaction nothing is retried (the error goes to
    whoever opened it, who can retry the whole transaction). ``fn`` must be safe to repeat:
    a write whose reply was lost may have been committed.
    """
    deadline = time.monotonic() + seconds
    delay = RETRY_FIRST
    failures = 0
    while True:
        try:
            result = fn(*args, **kwargs)
        except (OperationalError, InterfaceError) as exc:
            if not is_transient(exc) or database.obj.in_transaction():
                raise
            failures += 1
            drop_connection()
            if time.monotonic() + delay > deadline:
                log.error("%s failed %d time(s), giving up: %s", what, failures, exc)
                raise
            if failures == 1:
                log.warning("%s: database connection lost (%s); retrying", what, _brief(exc))
            time.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)
            continue
        if failures:
            log.warning("%s succeeded after %d retry(ies)", what, failures)
        return result


def _brief(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
