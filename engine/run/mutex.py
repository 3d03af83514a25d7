"""Task mutexes: at most one running task of a project holds a given mutex.

A task with a mutex takes it at its first claim by inserting a ``task_mutex`` row whose
(projectid, mutex) key is unique, so two tasks claimed at the same moment cannot both get it.
The holder keeps the row until it ends (success, fail, refuse), including while it waits for
a decision or a pause, and the row is deleted when the ``task_changed`` event announces the
end. A task that finds the mutex held follows its policy:

- ``fail`` (OpenC3's behaviour, the default): the task fails at once with reason
  ``task mutex from: <holder uuid>``.
- ``skip``: the task ends ``refuse`` with reason ``task mutex skip: <mutex> held by <uuid>``
  and runs nothing (``refuse`` is terminal for OpenC3 clients and is never notified).
- ``queue``: the task goes back to ``init`` and holds no worker; when the holder ends, the
  oldest queued task of that mutex is queued to run, so queued tasks start in submission order.
  A periodic sweep repairs anything a lost message or a crashed process left behind.
"""

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from peewee import IntegrityError, fn

from engine.run import events
from engine.store.clock import now
from engine.store.db import database
from engine.store.models import Task, TaskMutex

if TYPE_CHECKING:
    from huey import Huey

    from engine.store.settings import Settings

log = logging.getLogger(__name__)

POLICIES = ("fail", "skip", "queue")
ENDED = ("success", "fail", "refuse")
GO = object()  # the gate's answer when the task holds the mutex (or has none) and may run


def register(huey: "Huey", settings: "Settings") -> None:
    """Release mutexes when their holder ends; sweep stale holders and stuck queues."""
    from huey import crontab

    events.subscribe("task_changed", on_task_changed)
    huey.periodic_task(crontab(minute="*"), name="opsjob.mutex_sweep")(sweep)


# -- taking the mutex at the first claim --------------------------------------------------------


def gate(task: Task, note: Callable[[str], None] | None = None) -> object:
    """Decide whether a just-claimed ``task`` may run; ``note(text)`` writes to its log.

    Return :data:`GO` when it may run (it now holds its mutex), ``(status, reason)`` when it
    must end at once, or ``None`` when it was put back to ``init`` to wait its turn.
    """
    if not task.mutex:
        return GO
    policy = task.mutex_policy if task.mutex_policy in POLICIES else "fail"
    if policy == "queue":
        head = _head(task.projectid, task.mutex)
        if head is not None and head.id < task.id:  # an earlier submission goes first
            _requeue(task, note, f"queued behind {head.uuid} for mutex {task.mutex}")
            _nudge(head.uuid)
            return None
    holder = _acquire(task)
    if holder is None:
        return GO
    if policy == "fail":
        return ("fail", f"task mutex from: {holder}")
    if policy == "skip":
        return ("refuse", f"task mutex skip: {task.mutex} held by {holder}")
    _requeue(task, note, f"queued: mutex {task.mutex} is held by {holder}")
    if _holder(task.projectid, task.mutex) is None:  # the holder ended while we stepped back
        wake_next(task.projectid, task.mutex)
    return None


def _acquire(task: Task) -> str | None:
    """Insert the mutex row for ``task``; return None if taken, else the holder's uuid."""
    for _ in range(3):
        try:
            with database.atomic():
                TaskMutex.insert(
                    projectid=task.projectid, mutex=task.mutex, taskuuid=task.uuid
                ).execute()
            return None
        except IntegrityError:
            pass
        holder = _holder(task.projectid, task.mutex)
        if holder is None:
            continue  # released in between: try again
        if holder == task.uuid:
            return None
        if not _clear_if_stale(task.projectid, task.mutex, holder):
            return holder
    return _holder(task.projectid, task.mutex) or "an unknown task"


def _holder(projectid: int, mutex: str) -> str | None:
    return (
        TaskMutex.select(TaskMutex.taskuuid)
        .where(TaskMutex.projectid == projectid, TaskMutex.mutex == mutex)
        .scalar()
    )


def _clear_if_stale(projectid: int, mutex: str, holder: str) -> bool:
    """Delete the row of a holder that has ended or vanished; tell whether it was stale."""
    status = Task.select(Task.status).where(Task.uuid == holder).scalar()
    if status is not None and status not in ENDED:
        return False
    TaskMutex.delete().where(
        TaskMutex.projectid == projectid, TaskMutex.mutex == mutex, TaskMutex.taskuuid == holder
    ).execute()
    log.info("mutex %s of project %s: cleared the row of ended task %s", mutex, projectid, holder)
    return True


def _requeue(task: Task, note: Callable[[str], None] | None, why: str) -> None:
    """Put a claimed task back to ``init``, as if it had never been claimed."""
    Task.update(
        status="init", slave="", pid=None, lease_until=None, starttime=None, starttimems=None
    ).where(Task.uuid == task.uuid, Task.status == "running", Task.plan == "").execute()
    if note is not None:
        note(f"[{now()}] {why}; the task waits in init and holds no worker")


# -- handing the mutex on -----------------------------------------------------------------------


def _head(projectid: int, mutex: str) -> Task | None:
    """Return the earliest queued task waiting for ``mutex``, or None."""
    return (
        Task.select(Task.id, Task.uuid)
        .where(
            Task.projectid == projectid,
            Task.mutex == mutex,
            Task.mutex_policy == "queue",
            Task.status == "init",
        )
        .order_by(Task.id)
        .first()
    )


def _nudge(uuid: str) -> None:
    from engine.run.queue import enqueue_run

    enqueue_run(uuid)


def wake_next(projectid: int, mutex: str) -> str | None:
    """Queue the earliest task waiting for ``mutex`` to run; return its uuid or None."""
    head = _head(projectid, mutex)
    if head is not None:
        _nudge(head.uuid)
        return head.uuid
    return None


def release(uuid: str) -> bool:
    """Drop the mutex ``uuid`` holds, if any, and wake the next task queued for it."""
    row = TaskMutex.select().where(TaskMutex.taskuuid == uuid).first()
    if row is None:
        return False
    if TaskMutex.delete().where(TaskMutex.id == row.id, TaskMutex.taskuuid == uuid).execute():
        wake_next(row.projectid, row.mutex)
        return True
    return False


def on_task_changed(uuid: str, status: str) -> None:
    """Listener: a task that ended gives its mutex up."""
    if status in ENDED:
        release(uuid)


def sweep() -> list[str | None]:
    """Clear rows of holders that ended without saying so, and wake queues nobody holds."""
    with database.connection_context():
        for row in list(TaskMutex.select()):
            _clear_if_stale(row.projectid, row.mutex, row.taskuuid)
        queued: Any = (  # tuples, which peewee's stubs type as Task rows
            Task.select(Task.projectid, Task.mutex, fn.MIN(Task.id))
            .where(Task.mutex_policy == "queue", Task.mutex != "", Task.status == "init")
            .group_by(Task.projectid, Task.mutex)
            .tuples()
        )
        woken = []
        for projectid, mutex, _ in list(queued):
            if _holder(projectid, mutex) is None:
                woken.append(wake_next(projectid, mutex))
    return woken
