"""Name the faults of the outside world: a full disk, an unreachable database or queue.

Errors of peewee, the database drivers, redis and the file system are translated here into
the error tree (:mod:`engine.errors`), so the API answers 503 or 507 with a clear message and
the CLI prints one line instead of a traceback.
"""

import errno
import os
import sqlite3
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import peewee

from engine.errors import InsufficientStorage, OpsjobError, Unavailable

if TYPE_CHECKING:
    from engine.store.settings import Settings

DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
SQLITE_FULL = ("database or disk is full",)
PG_DISK_FULL = "53100"  # SQLSTATE disk_full
LOW_SPACE = 1 << 20  # bytes free under which an SQLite I/O error means a full disk


def redact(url: str) -> str:
    """Return ``url`` without its password (``redis://:secret@h/0`` -> ``redis://:***@h/0``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    """Yield ``exc`` and the exceptions it was raised from or during."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's text, or its class name."""
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__


def is_disk_full(exc: BaseException) -> bool:
    """Tell whether ``exc`` (or what caused it) is a write refused for lack of space."""
    for e in _chain(exc):
        if isinstance(e, OSError) and e.errno in DISK_FULL_ERRNOS:
            return True
        if isinstance(e, (sqlite3.OperationalError, peewee.OperationalError)):
            if any(text in str(e) for text in SQLITE_FULL):
                return True
            if "disk i/o error" in str(e).lower() and _sqlite_disk_low():
                return True  # SQLite says only this when its WAL index cannot grow
        if getattr(e, "sqlstate", None) == PG_DISK_FULL or getattr(e, "pgcode", None) == (
            PG_DISK_FULL
        ):
            return True
    return False


def _sqlite_disk_low() -> bool:
    """Tell whether the filesystem of the bound SQLite database is (nearly) full."""
    from engine.store.db import database

    path = getattr(database.obj, "database", None)
    if not isinstance(path, str) or not path or path == ":memory:":
        return False
    try:
        st = os.statvfs(os.path.dirname(os.path.abspath(path)))
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < LOW_SPACE


def is_connection_error(exc: BaseException) -> bool:
    """Tell whether ``exc`` means a server (database or queue) could not be reached."""
    import redis

    for e in _chain(exc):
        if isinstance(e, (redis.ConnectionError, redis.TimeoutError, ConnectionError)):
            return True
        from_driver = type(e).__module__.startswith(("psycopg", "peewee"))
        if from_driver and "Error" in type(e).__name__ and _sounds_like_connection(e):
            return True
    return False


def _sounds_like_connection(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(
        words in text
        for words in (
            "connection refused",
            "connection failed",
            "could not connect",
            "connection to server",
            "server closed the connection",
            "the connection is closed",
            "the connection is lost",
            "terminating connection",
            "timeout expired",
            "timed out",
        )
    )


def translate(
    exc: BaseException, *, database_url: str = "", queue_url: str = "", detail: bool = True
) -> OpsjobError | None:
    """Return the :class:`OpsjobError` that names ``exc`` when it is a known fault, else None.

    Without ``detail`` an unreachable server is not described further (API answers do not
    show where the database or the queue lives).
    """
    if isinstance(exc, OpsjobError):
        return exc
    if is_disk_full(exc):
        return InsufficientStorage(f"insufficient storage: the disk is full ({first_line(exc)})")
    if is_connection_error(exc):
        import redis

        if any(isinstance(e, (redis.ConnectionError, redis.TimeoutError)) for e in _chain(exc)):
            where = f"the queue {redact(queue_url)}" if queue_url else "the queue"
        else:
            where = f"the database {redact(database_url)}" if database_url else "the database"
        return Unavailable(f"{where} is unreachable" + (f": {first_line(exc)}" if detail else ""))
    return None


def startup_failure(exc: BaseException, settings: "Settings") -> str | None:
    """Return one line that explains why start-up failed, or None when ``exc`` is unexpected."""
    known = translate(exc, database_url=settings.database, queue_url=settings.queue_url)
    if known is not None:
        return known.info
    for e in _chain(exc):
        if isinstance(e, PermissionError):
            return f"permission denied: {e.filename or first_line(e)}"
        if isinstance(e, (peewee.OperationalError, peewee.InterfaceError, sqlite3.Error)):
            return f"cannot open the database {redact(settings.database)}: {first_line(e)}"
        if isinstance(e, OSError) and e.filename:
            return f"{e.filename}: {e.strerror or first_line(e)}"
        if isinstance(e, RuntimeError) and "scheme" in str(e).lower():
            return f"unsupported database URL {redact(settings.database)}: {first_line(e)}"
    return None
