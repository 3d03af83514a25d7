"""Whether this process can serve: the database and the queue each answer within a timeout."""

import logging
import threading
from collections.abc import Callable

from engine.run import queue
from engine.store.db import database
from engine.store.faults import first_line

log = logging.getLogger(__name__)

TIMEOUT = 2.0  # seconds each check may take


def _database() -> None:
    with database.connection_context():
        database.execute_sql("SELECT 1").fetchall()


def _bounded(name: str, probe: Callable[[], object], timeout: float) -> str:
    """Run ``probe`` in a thread; return "ok", or a short reason (details go to the log)."""
    outcome: dict[str, str] = {}

    def run() -> None:
        try:
            probe()
            outcome["state"] = "ok"
        except Exception as exc:
            log.warning("readiness: %s failed: %s", name, first_line(exc))
            outcome["state"] = "unreachable"

    thread = threading.Thread(target=run, daemon=True, name=f"ready-{name}")
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        log.warning("readiness: %s gave no answer within %.0f s", name, timeout)
        return f"no answer within {timeout:.0f} s"
    return outcome["state"]


def check(timeout: float = TIMEOUT) -> dict[str, str]:
    """Return ``{"database": state, "queue": state}``; each state is "ok" or why not."""
    return {
        "database": _bounded("database", _database, timeout),
        "queue": _bounded("queue", queue.ping, timeout),
    }
