"""Retention: delete run history older than ``OPSJOB_RETENTION_DAYS`` so storage stays bounded.

What goes: finished tasks (``success``, ``fail``, ``refuse``) that ended before the cut-off,
with their steps, host results, log chunks, notification attempts and mutex rows; console
commands (``cmdlog``) and orphaned notification attempts older than the cut-off; file store
rows deleted before the cut-off; and blobs no row names whose file is older than the cut-off.
Tasks that are ``init``, ``running`` or ``waiting`` are never touched, however old.

Rows go in small batches, each its own short transaction followed by a pause at least as long
as the batch took, so the API and running tasks get the database (SQLite has one writer at a
time) and the CPU at least half of the time while a prune runs.

Free space: PostgreSQL's autovacuum makes deleted rows' space reusable. SQLite reuses freed
pages for new rows; a database created by this version has ``auto_vacuum=INCREMENTAL`` and a
prune also returns the free pages to the file system a few at a time (:func:`reclaim`). An older
SQLite database keeps ``auto_vacuum=NONE`` until ``opsjob prune --vacuum`` rewrites it once (a
full ``VACUUM``: it needs as much free disk as the database and blocks writers while it runs).

The scheduler of every worker asks for the daily prune each hour; a (reserved crontab id, day)
row in ``crontab_lock``, unique like a crontab's fire of a minute, lets only the first one of a
day run it.
"""

import datetime
import logging
import os
import re
import time
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from peewee import IntegrityError, fn

from engine.store.clock import now
from engine.store.db import database, is_sqlite
from engine.store.models import (
    Approval,
    AuditLog,
    CmdLog,
    CrontabLock,
    FileServer,
    HostResult,
    LogChunk,
    NotifyLog,
    Subtask,
    Task,
    TaskMutex,
)

if TYPE_CHECKING:
    from engine.store.settings import Settings

log = logging.getLogger(__name__)

FINAL = ("success", "fail", "refuse")
BATCH = 200  # tasks (or rows) per transaction
PAUSE = 0.02  # seconds between two batches
VACUUM_PAGES = 512  # pages one incremental vacuum step returns to the file system
PRUNE_LOCK_ID = -1  # the crontab id of the daily prune's row in crontab_lock (real ids are > 0)
TMP_AGE = 86400  # seconds after which an upload left in filestore/tmp is removed
# Rows that belong to a task, by the column naming it.
TASK_ROWS = [
    (Subtask, Subtask.parent_uuid),
    (HostResult, HostResult.taskuuid),
    (LogChunk, LogChunk.taskuuid),
    (NotifyLog, NotifyLog.taskuuid),
    (TaskMutex, TaskMutex.taskuuid),
    (Approval, Approval.taskuuid),
]
# Tables whose rows age out by a time column of their own.
DATED = [(CmdLog, CmdLog.time), (AuditLog, AuditLog.time)]
_state: dict[str, Any] = {"settings": None}


def register(huey: Any, settings: "Settings") -> None:
    """Start-up hook (engine.boot.EXTENSIONS): ask for the daily prune every hour."""
    from huey import crontab

    _state["settings"] = settings
    huey.periodic_task(crontab(minute="7"), name="opsjob.prune_daily")(daily)


def cutoff(settings: "Settings", at: datetime.datetime | None = None) -> datetime.datetime | None:
    """Return the time before which finished history goes, or None when it is kept forever."""
    if settings.retention_days <= 0:
        return None
    return (at or now()) - datetime.timedelta(days=settings.retention_days)


def prune(
    settings: "Settings",
    dry_run: bool = False,
    at: datetime.datetime | None = None,
    batch: int = BATCH,
    pause: float = PAUSE,
) -> dict[str, int]:
    """Delete (or with ``dry_run`` only count) what is older than the retention period.

    Return ``{what: count}``: rows per table, ``blobs`` and ``blob_bytes``, and with SQLite
    ``freed_pages`` returned to the file system.
    """
    limit = cutoff(settings, at)
    counts: Counter[str] = Counter()
    if limit is None:
        return {}
    with database.connection_context():
        _prune_tasks(limit, counts, dry_run, batch, pause)
        _prune_orphan_notices(limit, counts, dry_run, batch, pause)
        for model, column in DATED:
            _prune_rows(model, column < limit, counts, dry_run, batch, pause)
        deleted_files = (FileServer.status == "deleted") & (FileServer.edit_time < limit)
        _prune_rows(FileServer, deleted_files, counts, dry_run, batch, pause)
        _prune_blobs(settings, limit, counts, dry_run)
        if not dry_run:
            counts["freed_pages"] = reclaim(pause=pause)
    return {k: v for k, v in counts.items() if v}


def _old_tasks(limit: datetime.datetime, after: int, batch: int) -> list[Any]:
    return list(
        Task.select(Task.id, Task.uuid)
        .where(
            Task.id > after,
            Task.create_time < limit,  # a task that ended before the cut-off began before it
            Task.status.in_(FINAL),
            fn.COALESCE(Task.finishtime, Task.create_time) < limit,
        )
        .order_by(Task.id)
        .limit(batch)
        .tuples()
    )


def _prune_tasks(
    limit: datetime.datetime, counts: Counter[str], dry_run: bool, batch: int, pause: float
) -> None:
    after = 0
    while rows := _old_tasks(limit, after, batch):
        started = time.monotonic()
        after = rows[-1][0]
        ids, uuids = [r[0] for r in rows], [r[1] for r in rows]
        with database.atomic():
            for model, column in TASK_ROWS:
                table = model._meta.table_name
                if dry_run:
                    counts[table] += model.select().where(column.in_(uuids)).count()
                else:
                    counts[table] += model.delete().where(column.in_(uuids)).execute()
            if dry_run:
                counts["task"] += len(ids)
            else:  # a final task never changes again; the status test is a guard
                counts["task"] += (
                    Task.delete().where(Task.id.in_(ids), Task.status.in_(FINAL)).execute()
                )
        _rest(started, pause)


def _prune_orphan_notices(
    limit: datetime.datetime, counts: Counter[str], dry_run: bool, batch: int, pause: float
) -> None:
    """Delete notification attempts older than ``limit`` whose task is already gone."""
    gone = ~fn.EXISTS(Task.select(Task.id).where(Task.uuid == NotifyLog.taskuuid))
    _prune_rows(NotifyLog, (NotifyLog.create_time < limit) & gone, counts, dry_run, batch, pause)


def _prune_rows(
    model: Any, old: Any, counts: Counter[str], dry_run: bool, batch: int, pause: float
) -> None:
    """Delete the ``model`` rows matching ``old``, ``batch`` ids at a time."""
    table, after = model._meta.table_name, 0
    while ids := [
        r[0]
        for r in model.select(model.id)
        .where(old, model.id > after)
        .order_by(model.id)
        .limit(batch)
        .tuples()
    ]:
        started = time.monotonic()
        after = ids[-1]
        if dry_run:
            counts[table] += len(ids)
        else:
            counts[table] += model.delete().where(model.id.in_(ids)).execute()
        _rest(started, pause)


def _rest(started: float, pause: float) -> None:
    """Pause after a batch at least as long as it took (no pause when ``pause`` is 0): a prune
    takes at most about half of the database's write time and of a CPU."""
    if pause:
        time.sleep(max(pause, time.monotonic() - started))


def _prune_blobs(
    settings: "Settings", limit: datetime.datetime, counts: Counter[str], dry_run: bool
) -> None:
    """Remove blobs no file row names once they are older than the cut-off.

    A blob is first renamed aside, then checked again: an upload that reuses it touches it
    first (``filestore.keep``) and one that finds it gone writes it anew, so no row ever names a
    removed blob.
    """
    from engine.files.filestore import root

    oldest = limit.timestamp()
    naming: Any = FileServer.select(FileServer.sha256).where(  # Any: .tuples() below
        (FileServer.status != "deleted") | (FileServer.edit_time >= limit)
    )  # the rows a prune keeps (a dry run has not deleted the others)
    named = {r[0] for r in naming.distinct().tuples()}
    for path, digest in _blob_files(os.path.join(root(settings), "blobs")):
        try:
            info = os.stat(path, follow_symlinks=False)
        except FileNotFoundError:
            continue
        if digest in named or info.st_mtime >= oldest:
            continue
        if dry_run:
            counts["blobs"] += 1
            counts["blob_bytes"] += info.st_size
            continue
        aside = path + ".prune"
        os.replace(path, aside)
        still_named = naming.where(FileServer.sha256 == digest).exists()
        if still_named or os.stat(aside).st_mtime >= oldest:
            os.replace(aside, path)  # the same content: a copy written meanwhile is equal
            continue
        os.unlink(aside)
        counts["blobs"] += 1
        counts["blob_bytes"] += info.st_size
    _prune_uploads(os.path.join(root(settings), "tmp"), counts, dry_run)


def _blob_files(folder: str) -> Iterator[tuple[str, str]]:
    """Yield ``(path, sha256)`` of the regular files laid out as blobs under ``folder``."""
    try:
        shelves = list(os.scandir(folder))
    except FileNotFoundError:
        return
    for shelf in shelves:
        if not (re.fullmatch(r"[0-9a-f]{2}", shelf.name) and shelf.is_dir(follow_symlinks=False)):
            continue
        for entry in os.scandir(shelf.path):
            name = entry.name.removesuffix(".prune")
            if (
                re.fullmatch(r"[0-9a-f]{64}", name)
                and name.startswith(shelf.name)
                and entry.is_file(follow_symlinks=False)
            ):
                if entry.name != name:  # left aside by a prune that stopped midway
                    os.replace(entry.path, os.path.join(shelf.path, name))
                yield os.path.join(shelf.path, name), name


def _prune_uploads(folder: str, counts: Counter[str], dry_run: bool) -> None:
    """Remove uploads that stopped halfway and were left in the store's ``tmp`` folder."""
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return
    for entry in entries:
        if entry.name.startswith("in-") and entry.is_file(follow_symlinks=False):
            if entry.stat(follow_symlinks=False).st_mtime < time.time() - TMP_AGE:
                counts["uploads"] += 1
                if not dry_run:
                    os.unlink(entry.path)


def reclaim(pause: float = PAUSE, pages: int = VACUUM_PAGES) -> int:
    """On SQLite with ``auto_vacuum=INCREMENTAL``, return free pages to the file system a few
    at a time; return how many. Elsewhere return 0 (freed space is reused in place)."""
    if not is_sqlite():
        return 0
    with database.connection_context():
        if database.execute_sql("PRAGMA auto_vacuum").fetchone()[0] != 2:
            return 0
        freed = 0
        while (free := database.execute_sql("PRAGMA freelist_count").fetchone()[0]) > 0:
            # executescript steps the pragma to its end; a cursor would free one page only
            database.connection().executescript(f"PRAGMA incremental_vacuum({int(pages)});")
            step = free - database.execute_sql("PRAGMA freelist_count").fetchone()[0]
            if step <= 0:
                break
            freed += step
            time.sleep(pause)
        return freed


def vacuum() -> None:
    """Rewrite the database once to give back all free space (``opsjob prune --vacuum``).

    On SQLite this also switches an older database to ``auto_vacuum=INCREMENTAL``.
    """
    with database.connection_context():
        if is_sqlite():
            database.execute_sql("PRAGMA auto_vacuum = INCREMENTAL")
        database.execute_sql("VACUUM")


def daily(settings: "Settings | None" = None, day: int | None = None) -> dict[str, int] | None:
    """Periodic: run the day's prune unless another scheduler already started it today.

    Return the counts, or None when the day's prune was someone else's.
    """
    settings = settings or _state["settings"]
    day = int(time.time() // 86400) if day is None else day
    with database.connection_context():
        try:
            with database.atomic():
                CrontabLock.insert(
                    crontabid=PRUNE_LOCK_ID, timeid=day * 1440, taskuuid="prune"
                ).execute()
        except IntegrityError:
            return None
    started = time.monotonic()
    counts = prune(settings)
    log.info("daily prune took %.1f s: %s", time.monotonic() - started, counts or "nothing")
    return counts
