"""What happens to tasks, announced to listeners (notifications, version capture, ...).

Listeners subscribe at start-up (``engine.boot.start``), never at import. An event is
announced after its change is stored. A failing listener is logged and never breaks a run.
"""

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

# task_changed(task_uuid, status): a task was claimed the first time ("running"), parked
#   ("waiting"), or ended ("success", "fail", "refuse").
# step_finished(task, step, outcome): a step run ended; ``outcome`` is a results.RunOutcome.
EVENTS = ("task_changed", "step_finished")
_listeners: dict[str, list[Callable[..., Any]]] = {name: [] for name in EVENTS}


def subscribe(event: str, listener: Callable[..., Any]) -> None:
    """Call ``listener`` on every ``event`` from now on."""
    if listener not in _listeners[event]:
        _listeners[event].append(listener)


def clear() -> None:
    """Forget every listener (for tests)."""
    for listeners in _listeners.values():
        listeners.clear()


def emit(event: str, *args: Any) -> None:
    """Announce ``event`` to its listeners."""
    for listener in list(_listeners[event]):
        try:
            listener(*args)
        except Exception:
            log.exception("listener %r of %s failed", listener, event)
