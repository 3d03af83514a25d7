"""A task's life in the database: claim, park, wake and finish it, and sweep lost ones.

A task is claimed atomically (``init`` -> ``running`` happens once). While a worker runs it,
a heartbeat renews its lease and watches for a kill; a task whose lease runs out is failed as
lost. A waiting task holds no process: a control call wakes it and any worker resumes it.
"""

import datetime
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from peewee import fn

from engine.ansible import leftovers, rundir, warm
from engine.errors import Unavailable
from engine.run import events
from engine.store.clock import now
from engine.store.db import database, drop_connection, is_transient, retrying
from engine.store.models import Subtask, Task

if TYPE_CHECKING:
    from huey import Huey

    from engine.store.settings import Settings

log = logging.getLogger(__name__)

_settings: dict[str, Any] = {"value": None}  # the Settings, once registered
FINAL = ("success", "fail", "refuse")
HEARTBEAT_POLL = 0.5


_R = TypeVar("_R")


def settings() -> "Settings":
    return _settings["value"]


def durably(fn: Callable[..., _R], *args: Any, what: str = "database call", **kwargs: Any) -> _R:
    """Run a database call of a task's run, riding out a lost connection for up to a lease:
    by then the heartbeat has stopped the run, and the task is failed as lost."""
    lease = settings().task_lease if settings() else 60
    return retrying(fn, *args, seconds=lease, what=what, **kwargs)


def worker_name() -> str:
    s = settings()
    return (s.worker_name if s and s.worker_name else socket.gethostname())[:100]


def register_periodic(huey: "Huey", value: "Settings") -> None:
    """Remember the settings; schedule the lost-task sweep on the queue's periodic scheduler."""
    from huey import crontab

    _settings["value"] = value
    huey.periodic_task(crontab(minute="*"), name="opsjob.sweep")(sweep)


# -- claiming and finishing -------------------------------------------------------------------


def claim(uuid: str) -> Task | None:
    """Take task ``uuid`` for this worker if it is new, or waiting and woken. Return it or None."""
    stamp, epoch = now(), time.time()
    claimed = (
        Task.update(
            status="running",
            slave=worker_name(),
            pid=os.getpid(),
            wake=0,
            lease_until=epoch + settings().task_lease,
            starttime=fn.COALESCE(Task.starttime, stamp),
            starttimems=fn.COALESCE(Task.starttimems, epoch),
        )
        .where(
            Task.uuid == uuid,
            (Task.status == "init") | ((Task.status == "waiting") & (Task.wake == 1)),
        )
        .execute()
    )
    return Task.get(Task.uuid == uuid) if claimed else None


def finish(uuid: str, status: str, reason: str | None = None) -> None:
    """End a running task with ``status``; the first reason given sticks."""
    if durably(_finish, uuid, status, reason, what=f"task {uuid}: finish"):
        events.emit("task_changed", uuid, status)


def _finish(uuid: str, status: str, reason: str | None) -> int:
    task = Task.get(Task.uuid == uuid)
    end = time.time()
    fields = {
        "status": status,
        "finishtime": now(),
        "finishtimems": end,
        "notify": 0,
        "lease_until": None,
        "runtime": round(end - (task.starttimems or end), 3),
    }
    if reason and not task.reason:
        fields["reason"] = reason[:500]
    return Task.update(**fields).where(Task.uuid == uuid, Task.status == "running").execute()


def park(uuid: str, announce: bool = True) -> int:
    """Move a running task to ``waiting``: it holds no worker until a control call wakes it.

    Inside a transaction, pass ``announce=False`` and announce after the commit.
    """
    parked = durably(
        Task.update(status="waiting", notify=0, wake=0, lease_until=None)
        .where(Task.uuid == uuid, Task.status == "running")
        .execute,
        what=f"task {uuid}: park",
    )
    if parked and announce:
        events.emit("task_changed", uuid, "waiting")
    return parked


def wake(uuid: str) -> None:
    """Queue a waiting task to resume."""
    from engine.run.queue import enqueue_run

    if Task.update(wake=1).where(Task.uuid == uuid, Task.status == "waiting").execute():
        enqueue_run(uuid)


def sweep() -> int:
    """Fail running tasks whose worker stopped renewing the lease; requeue lost messages.

    What a dead worker of this host left running (its local Ansible processes, the commands
    on the nodes) is ended first, so a redo of a task failed here cannot overlap its old run;
    its run dirs and its warm controller's folder are removed.
    """
    runs = os.path.join(os.path.abspath(settings().home), "runs")
    rundir.sweep_orphans(runs, stop=leftovers.stop_orphan(settings()))
    warm.sweep_stale()
    with database.connection_context():
        lost = list(
            Task.select(Task.uuid, Task.slave).where(
                Task.status == "running", Task.lease_until < time.time()
            )
        )
        for task in lost:
            reason = (
                f"worker lost: {task.slave or 'a worker'} sent no heartbeat for "
                f"{settings().task_lease} s"
            )
            finish(task.uuid, "fail", reason)
            Subtask.update(status="fail", finishtime=now()).where(
                Subtask.parent_uuid == task.uuid, Subtask.status == "running"
            ).execute()
            log.warning("task %s: %s", task.uuid, reason)
    requeue_stranded()
    return len(lost)


def stranded_after() -> int:
    """Seconds a task may wait for its queue message before it is sent again: one lease."""
    return max(1, int(settings().task_lease))


def requeue_stranded() -> list[str]:
    """Send again the tasks whose queue message was lost (say, the API died between storing a
    task and queueing it, or the queue was down), whatever the queue's depth.

    A second message is harmless: a claim happens once. Each task is sent at most once per
    ``stranded_after()`` seconds, so a backlog is not multiplied: before its claim a task's
    ``lease_until`` holds when it may be sent again, and one sweeper wins each resend.
    """
    from engine.run import queue

    outage = getattr(queue.huey(), "outage", None)
    if outage is not None and outage.down:
        return []
    delay = stranded_after()
    epoch = time.time()
    old = datetime.datetime.now() - datetime.timedelta(seconds=delay)
    due = Task.lease_until.is_null() | (Task.lease_until < epoch)
    woken = (Task.status == "waiting") & (Task.wake == 1)
    new = (Task.status == "init") & (Task.mutex == "") & (Task.create_time < old)
    resent = []
    with database.connection_context():
        # A woken task has no wake time: the first sweep that sees it starts its clock.
        Task.update(lease_until=epoch + delay).where(woken, Task.lease_until.is_null()).execute()
        for task in Task.select(Task.uuid).where((woken | new) & due):
            claim_resend = Task.update(lease_until=epoch + delay).where(
                Task.uuid == task.uuid, woken | new, due
            )
            if not claim_resend.execute():
                continue  # another sweeper sent it
            log.warning("task %s: its queue message was lost; queueing it again", task.uuid)
            try:
                queue.enqueue_run(task.uuid)
            except Unavailable:
                break  # sent again once the queue is back and its delay passed
            resent.append(task.uuid)
    return resent


class Heartbeat(threading.Thread):
    """Renew a running task's lease, notice a kill, and stop a run whose lease was lost.

    A failed poll is tried again at the next one on a fresh connection. When no renewal got
    through for a whole lease, the task may have been failed as lost (and be run again): the
    heartbeat then sets ``lost`` and cancels the run, whose outcome it could not record.
    """

    def __init__(self, uuid: str, lease: float, cancel: threading.Event) -> None:
        super().__init__(daemon=True, name=f"heartbeat-{uuid}")
        self.uuid, self.lease, self.cancel = uuid, lease, cancel
        self.stopped = threading.Event()
        self.killed_by = ""
        self.lost = ""
        self.renewed = time.monotonic()  # the claim set the lease just now

    def run(self) -> None:
        down_since: float | None = None
        try:
            while not self.stopped.wait(HEARTBEAT_POLL):
                try:
                    self._beat()
                except Exception as exc:
                    if not is_transient(exc):
                        raise
                    drop_connection()
                    if down_since is None:
                        down_since = time.monotonic()
                        log.warning("task %s: heartbeat lost the database: %s", self.uuid, exc)
                    self._check_lease()
                    continue
                if down_since is not None:
                    log.warning(
                        "task %s: heartbeat reached the database again after %.1f s",
                        self.uuid,
                        time.monotonic() - down_since,
                    )
                    down_since = None
        except Exception as exc:  # never leave a run going that nothing renews
            log.exception("task %s: heartbeat failed", self.uuid)
            self._give_up(f"its heartbeat failed: {exc}")
        finally:
            if not database.is_closed():
                try:
                    database.close()
                except Exception:
                    drop_connection()

    def _beat(self) -> None:
        task = Task.select(Task.kill_by, Task.status).where(Task.uuid == self.uuid).first()
        if task is None or task.status != "running":
            self.cancel.set()
        elif task.kill_by:
            self.killed_by = task.kill_by
            self.cancel.set()
        if time.monotonic() - self.renewed >= max(1.0, self.lease / 4):
            sent = time.monotonic()
            Task.update(lease_until=time.time() + self.lease).where(
                Task.uuid == self.uuid, Task.status == "running"
            ).execute()
            self.renewed = sent

    def _check_lease(self) -> None:
        if not self.lost and time.monotonic() - self.renewed >= self.lease:
            self._give_up(f"the database was unreachable for {self.lease} s (the task's lease)")

    def _give_up(self, why: str) -> None:
        self.lost = why
        log.error("task %s: %s; stopping its steps", self.uuid, why)
        self.cancel.set()

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=5)


# -- the run ------------------------------------------------------------------------------------
