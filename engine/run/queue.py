"""The task queue: huey on SQLite under OPSJOB_HOME (embedded) or on Redis (scale-out).

The queue only carries task uuids. Everything a run needs lives in the database, so any
worker can pick up any task, and a lost message never loses a task (see ``requeue_stale``).
"""

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from huey import SqliteHuey

from engine.errors import Unavailable
from engine.run import events
from engine.run.queueguard import GuardedRedisHuey
from engine.store.faults import first_line, is_connection_error

if TYPE_CHECKING:
    from huey import Huey

    from engine.store.settings import Settings

_state: dict[str, Any] = {"huey": None, "run": None}


def configure(settings: "Settings", run_task: Callable[[str], None]) -> "Huey":
    """Create the huey instance for ``settings`` and bind ``run_task`` as the run entry point.

    Called by :func:`engine.boot.start`, which also registers the other rooms' queue tasks.
    """
    if settings.queue_url.startswith(("redis://", "rediss://", "unix://")):
        huey = GuardedRedisHuey("opsjob", settings.queue_url)
    else:
        os.makedirs(settings.home, exist_ok=True)
        huey = SqliteHuey("opsjob", filename=os.path.join(settings.home, "queue.db"), results=False)
    _state["huey"] = huey
    _state["run"] = huey.task(name="opsjob.run_task")(run_task)
    events.clear()
    return huey


def huey() -> "Huey":
    """Return the configured huey instance."""
    if _state["huey"] is None:
        raise RuntimeError("the queue is not configured; call engine.boot.start(settings)")
    return _state["huey"]


def enqueue_run(uuid: str) -> None:
    """Ask a worker to run (or resume) task ``uuid``.

    Raise :class:`Unavailable` when the queue cannot be reached. The task is in the database
    already; the sweep sends it again once the queue is back (see ``requeue_stranded``).
    """
    if _state["run"] is None:
        raise RuntimeError("the queue is not configured; call engine.boot.start(settings)")
    try:
        _state["run"](uuid)
    except Exception as exc:
        if not is_connection_error(exc):
            raise
        raise Unavailable(
            f"the queue is unreachable ({first_line(exc)}); task {uuid} is stored and "
            "starts when the queue is back"
        ) from None


def ping() -> None:
    """Raise :class:`Unavailable` unless the queue answers (used by readiness checks)."""
    storage = huey().storage
    try:
        if isinstance(huey(), GuardedRedisHuey):
            storage.conn.ping()
        else:
            storage.queue_size()
    except Exception as exc:
        raise Unavailable(f"queue: {first_line(exc)}") from None
