"""Run logs, stored in the database as ordered chunks so any API node can serve them."""

import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TypedDict

from peewee import JOIN, fn

from engine.store.db import retrying
from engine.store.faults import first_line, is_disk_full
from engine.store.models import LogChunk, Task, database
from engine.store.prepared import Prepared
from engine.tasklog.logcap import LogCap

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.5  # a line is stored within this long, by a timer if nothing else writes
HELD_CHARS = 4 * 1024 * 1024  # held in memory while the disk is full; later lines are counted
STALLED_RETRY = 1.0  # seconds between two tries to store held lines on a full disk
FLUSH_BYTES = 32 * 1024
MAX_LOG_CHARS = 10 * 1024 * 1024  # per task, unless given (OPSJOB_MAX_LOG_BYTES; see logcap)
READ_LIMIT = 256 * 1024
FINAL = ("success", "fail", "refuse")


class LogRead(TypedDict):
    """A task's log from an offset (:func:`engine.tasklog.logs.read`)."""

    log: str
    offset: int  # where to read on from
    done: bool
    status: str
    projectid: int


class LogWriter:
    """Buffer log text for one task and write it in batches (never a row per line)."""

    def __init__(
        self, taskuuid: str, retry_seconds: float = 30.0, max_chars: int = MAX_LOG_CHARS
    ) -> None:
        self.taskuuid = taskuuid
        self.retry_seconds = retry_seconds  # how long a write rides out a lost connection
        self.lock = threading.Lock()
        self.flushing = threading.Lock()  # one flush at a time: chunks land in offset order
        self.timer: threading.Timer | None = None
        self.stalled = False  # the last write found the disk full
        self.dropped = 0  # lines not kept while the disk was full
        self.buffer: list[str] = []
        self.size = 0
        self.last_flush = time.monotonic()
        with database.connection_context():
            last = (
                LogChunk.select(LogChunk.offset, fn.LENGTH(LogChunk.text).alias("n"))
                .where(LogChunk.taskuuid == taskuuid)
                .order_by(LogChunk.offset.desc())
                .first()
            )
        self.offset = last.offset + int(last.n) if last else 0
        self.cap = LogCap(max_chars)

    def write(self, text: str) -> None:
        """Append ``text``; flush when enough is buffered or enough time passed."""
        if not text:
            return
        with self.lock:
            if self.stalled and self.size + len(text) > HELD_CHARS:
                self.dropped += text.count("\n") or 1
                return
            text = self.cap.admit(self.offset + self.size, text)
            if not text:
                return
            self.buffer.append(text)
            self.size += len(text)
            due = self.size >= FLUSH_BYTES or time.monotonic() - self.last_flush >= FLUSH_SECONDS
        if due:
            self.flush()
        else:
            self._later(FLUSH_SECONDS)

    def line(self, text: str) -> None:
        self.write(text.rstrip("\n") + "\n")

    def finish(self) -> None:
        """End this turn at the task: store the tail the cap held back, then flush."""
        with self.lock:
            tail = self.cap.release()
            if tail:
                self.buffer.append(tail)
                self.size += len(tail)
        self.flush()

    def flush(self) -> None:
        """Write what is buffered as one chunk. On a full disk keep it (up to HELD_CHARS) and
        try again every STALLED_RETRY seconds; any other failure is raised."""
        with self.flushing:
            with self.lock:
                if not self.buffer and not self.dropped:
                    return
                held, dropped = "".join(self.buffer), self.dropped
                notice = f"[{dropped} log line(s) not stored: the disk was full]\n"
                text = held + (notice if dropped else "")
                self.buffer, self.size, self.dropped = [], 0, 0
                offset = self.offset
                self.offset += len(text)
                self.last_flush = time.monotonic()
            try:
                with database.connection_context():
                    retrying(
                        LogChunk.insert(taskuuid=self.taskuuid, offset=offset, text=text)
                        .on_conflict_ignore()  # a retry of a write whose reply was lost
                        .execute,
                        seconds=self.retry_seconds,
                        what=f"task {self.taskuuid}: log",
                    )
            except Exception as exc:
                with self.lock:  # put it back in front of what came meanwhile
                    self.buffer.insert(0, held)
                    self.size += len(held)
                    self.dropped += dropped
                    self.offset = offset
                if not is_disk_full(exc):
                    raise
                self._stall(exc)
                return
            if self.stalled:
                self.stalled = False
                log.warning("task %s: log lines are stored again", self.taskuuid)

    def _stall(self, exc: Exception) -> None:
        if not self.stalled:
            self.stalled = True
            message = f"task {self.taskuuid}: log lines held in memory: {first_line(exc)}"
            log.warning("%s", message)
            print(f"opsjob: {message}", file=sys.stderr, flush=True)  # the log may be on it
        self._later(STALLED_RETRY)

    def _later(self, seconds: float) -> None:
        """Flush in ``seconds`` from a timer thread, unless one is already due."""
        with self.lock:
            if self.timer is not None:
                return
            self.timer = timer = threading.Timer(seconds, self._tick)
            timer.daemon = True
        timer.start()

    def _tick(self) -> None:
        with self.lock:
            self.timer = None
        try:
            self.flush()
        except Exception:
            log.exception("task %s: storing log lines failed", self.taskuuid)


def _text_from(arg: Callable[[str], Any]) -> Any:
    """The task's project and status, joined with the chunks that hold its text from
    ``offset`` on (none: one row without a chunk). One statement reads both, so from the same
    snapshot: once the status is final there, all of the text is there too."""
    start = LogChunk.select(fn.COALESCE(fn.MAX(LogChunk.offset), 0)).where(
        LogChunk.taskuuid == arg("taskuuid"), LogChunk.offset <= arg("offset")
    )
    return (
        Task.select(Task.projectid, Task.status, LogChunk.offset, LogChunk.text)
        .join(
            LogChunk,
            JOIN.LEFT_OUTER,
            on=(LogChunk.taskuuid == Task.uuid) & (LogChunk.offset >= start),
        )
        .where(Task.uuid == arg("taskuuid"))
        .order_by(LogChunk.offset)
    )


TEXT_FROM = Prepared(_text_from)


def read(taskuuid: str, offset: int = 0, limit: int = READ_LIMIT) -> LogRead | None:
    """Return ``{log, offset, done, status, projectid}``: the text from ``offset`` on, the
    offset to ask next, and the task's status and project; None when there is no such task.

    ``done`` is true once the task has ended and everything was read.
    """
    parts, size, cut, row = [], 0, False, None
    for row in TEXT_FROM.execute(taskuuid=taskuuid, offset=offset):  # noqa: B007 (row is kept)
        chunk_offset, chunk_text = row[2], row[3]
        piece = chunk_text[max(0, offset - chunk_offset) :] if chunk_text else ""
        if piece:
            parts.append(piece)
            size += len(piece)
        if size >= limit:
            cut = True
            break
    if row is None:
        return None
    projectid, state = row[0], row[1]
    text = "".join(parts)[:limit]
    done = state in FINAL and not cut
    return {
        "log": text,
        "offset": offset + len(text),
        "done": done,
        "status": state,
        "projectid": projectid,
    }
