"""Crontabs fire: every minute, each switched-on crontab whose schedule matches becomes a task.

huey's periodic scheduler runs :func:`plan` once a minute, counted from the consumer's start
rather than from :00. ``plan`` therefore schedules :func:`fire` for the next minute boundary
(and fires the current minute at once when it runs within its first seconds), so crontabs
fire about a second after :00. A fire evaluates one minute only: a scheduler that was down
never fires the minutes it missed, and a fire that starts more than ``LATE`` seconds after its
minute began is dropped with a warning.

A (crontab, minute) fires once however many schedulers run: the fire inserts a
``crontab_lock`` row whose (crontabid, timeid) key is unique in the same transaction that
creates the task, and a second scheduler's insert fails.

Only crontabs that are ``available``, of an ``active`` project, whose job is ``permanent``
fire: a transient (unsaved) or deleted job is never launched by the schedule. The task runs
as the crontab's last editor with calltype ``crontab``, the crontab's mutex and mutex policy,
and no variables. Schedules are read in ``OPSJOB_TZ`` (default: the server's local zone).
"""

import datetime
import logging
import time
import zoneinfo
from typing import TYPE_CHECKING, Any

from peewee import IntegrityError

from engine.access import auth
from engine.errors import InvalidInput
from engine.insight import metrics
from engine.run import queue, tasks
from engine.schedule import cron
from engine.store.db import database
from engine.store.models import Crontab, CrontabLock, Job, Project

if TYPE_CHECKING:
    from huey import Huey
    from huey.api import TaskWrapper

    from engine.store.settings import Settings

log = logging.getLogger(__name__)

EARLY = 5  # seconds into a minute during which ``plan`` still fires that minute
LATE = 60  # seconds after its minute began beyond which a fire is dropped
KEEP_LOCKS_MINUTES = 7 * 24 * 60
_state: dict[str, Any] = {"settings": None, "fire": None}


def register(huey: "Huey", settings: "Settings") -> "TaskWrapper":
    """Check ``OPSJOB_TZ``; add the minute planner and the fire task to the queue."""
    zone_of(settings.tz)
    _state["settings"] = settings
    from huey import crontab

    # Ahead of queued runs where the queue supports priorities (SQLite does, plain Redis not).
    priority = 10 if getattr(huey.storage, "priority", False) else None
    fire_task = huey.task(name="opsjob.cron_fire", priority=priority)(fire_minute)
    _state["fire"] = fire_task

    huey.periodic_task(crontab(minute="*"), name="opsjob.cron_plan")(plan)
    return fire_task


# -- time ---------------------------------------------------------------------------------------


def zone_of(name: str | None) -> zoneinfo.ZoneInfo | None:
    """Return the ZoneInfo for an IANA name, or None for the server's local zone."""
    if not name:
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"OPSJOB_TZ: unknown time zone {name!r} (use an IANA name)") from None


def zone() -> zoneinfo.ZoneInfo | None:
    """Return the zone schedules are read in (None: the server's local zone)."""
    s = _state["settings"]
    if s is None:
        from engine.store.settings import Settings

        s = Settings.from_env()
    return zone_of(s.tz)


def zone_name() -> str:
    """Name the zone schedules are read in."""
    z = zone()
    return str(z) if z is not None else "local"


def local_minute(timeid: int) -> datetime.datetime:
    """Return the wall-clock time, in the schedule zone, of minute ``timeid``."""
    z = zone()
    if z is None:
        return datetime.datetime.fromtimestamp(timeid * 60)
    return datetime.datetime.fromtimestamp(timeid * 60, tz=z)


def now_in_zone() -> datetime.datetime:
    """Return the current time in the schedule zone, to the second."""
    z = zone()
    return datetime.datetime.now(z).replace(microsecond=0)


def minute_id(when: datetime.datetime | float | None = None) -> int:
    """Return the minute number (minutes since the epoch) of ``when``.

    ``when`` is a datetime (naive ones are read in the schedule zone), epoch seconds, or None
    for now.
    """
    if when is None:
        return int(time.time() // 60)
    if isinstance(when, (int, float)):
        return int(when // 60)
    if when.tzinfo is None and zone() is not None:
        when = when.replace(tzinfo=zone())
    return int(when.timestamp() // 60)


# -- the minute tick ----------------------------------------------------------------------------


def plan() -> None:
    """Periodic: schedule the fire of the coming minute; fire this one if it just began."""
    current = time.time()
    this = int(current // 60)
    fire_task = _state["fire"]
    if current - this * 60 < EARLY:
        enqueue_fire(this)
    fire_task.schedule(args=(this + 1,), delay=max(0.0, (this + 1) * 60 - current))
    with database.connection_context():
        CrontabLock.delete().where(CrontabLock.timeid < this - KEEP_LOCKS_MINUTES).execute()


def enqueue_fire(timeid: int) -> None:
    """Queue the fire of minute ``timeid`` now, as ``plan`` does at each minute boundary."""
    _state["fire"](timeid)


def fire_minute(timeid: int) -> list[str]:
    """Queue task: fire minute ``timeid`` unless the fire comes too late."""
    late = time.time() - timeid * 60
    if late > LATE:
        log.warning(
            "cron minute %s not fired: its fire started %.0f s late (scheduler down or "
            "every worker thread busy)",
            local_minute(timeid).strftime("%Y-%m-%d %H:%M"),
            late,
        )
        return []
    with database.connection_context():
        return fire(timeid)


def due(timeid: int) -> list[Any]:
    """Return the crontabs (with their job's name) that fire in minute ``timeid``."""
    at = local_minute(timeid)
    rows = (
        Crontab.select(Crontab, Job.name.alias("jobname"))
        .join(Job, on=(Job.uuid == Crontab.jobuuid) & (Job.projectid == Crontab.projectid))
        .switch(Crontab)
        .join(Project, on=(Project.id == Crontab.projectid))
        .where(
            Crontab.status == "available",
            Job.status == "permanent",
            Project.status == "active",
        )
        .order_by(Crontab.id)
        .objects()
    )
    out = []
    for row in rows:
        try:
            if cron.matches(row.cron, at):
                out.append(row)
        except InvalidInput as e:  # saved before a grammar change: never fire, never crash
            log.warning("crontab %s has a bad schedule %r: %s", row.id, row.cron, e.info)
    return out


def fire(timeid: int) -> list[str]:
    """Start a task for every crontab due in minute ``timeid`` that no scheduler has fired
    yet; return the new task uuids."""
    started = []
    for row in due(timeid):
        try:
            with database.atomic():
                CrontabLock.insert(crontabid=row.id, timeid=timeid).execute()
                task = tasks._create(
                    row.projectid,
                    auth.Principal(name=row.edit_user or row.create_user),
                    name=row.jobname,
                    jobtype="jobs",
                    jobuuid=row.jobuuid,
                    variable={},
                    mutex=row.mutex,
                    mutex_policy=row.mutex_policy,
                    calltype="crontab",
                )
                CrontabLock.update(taskuuid=task.uuid).where(
                    CrontabLock.crontabid == row.id, CrontabLock.timeid == timeid
                ).execute()
        except IntegrityError:
            continue  # another scheduler fired this crontab for this minute
        log.info("crontab %s (%s) fired task %s", row.id, row.name, task.uuid)
        metrics.fired()
        queue.enqueue_run(task.uuid)
        started.append(task.uuid)
    return started
