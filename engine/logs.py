"""Run logs, stored in the database as ordered chunks so any API node can serve them."""

import threading
import time

from peewee import fn

from .models import LogChunk, Task, database

FLUSH_SECONDS = 0.5
FLUSH_BYTES = 32 * 1024
MAX_LOG_CHARS = 20 * 1024 * 1024  # per task; beyond it lines are dropped with a notice
READ_LIMIT = 256 * 1024
FINAL = ("success", "fail", "refuse")


class LogWriter:
    """Buffer log text for one task and write it in batches (never a row per line)."""

    def __init__(self, taskuuid):
        self.taskuuid = taskuuid
        self.lock = threading.Lock()
        self.buffer = []
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
        self.truncated = False

    def write(self, text):
        """Append ``text``; flush when enough is buffered or enough time passed."""
        if not text:
            return
        with self.lock:
            if self.offset + self.size + len(text) > MAX_LOG_CHARS:
                if self.truncated:
                    return
                self.truncated = True
                text = "\n[log limit reached; further output is not stored]\n"
            self.buffer.append(text)
            self.size += len(text)
            due = self.size >= FLUSH_BYTES or time.monotonic() - self.last_flush >= FLUSH_SECONDS
        if due:
            self.flush()

    def line(self, text):
        self.write(text.rstrip("\n") + "\n")

    def flush(self):
        """Write what is buffered as one chunk."""
        with self.lock:
            if not self.buffer:
                return
            text, self.buffer, self.size = "".join(self.buffer), [], 0
            offset = self.offset
            self.offset += len(text)
            self.last_flush = time.monotonic()
        with database.connection_context():
            LogChunk.create(taskuuid=self.taskuuid, offset=offset, text=text)


def read(taskuuid, offset=0, limit=READ_LIMIT):
    """Return ``{log, offset, done}``: the text from ``offset`` on and the offset to ask next.

    ``done`` is true once the task has ended and everything was read.
    """
    start = (
        LogChunk.select(fn.MAX(LogChunk.offset))
        .where(LogChunk.taskuuid == taskuuid, LogChunk.offset <= offset)
        .scalar()
    ) or 0
    chunks = (
        LogChunk.select(LogChunk.offset, LogChunk.text)
        .where(LogChunk.taskuuid == taskuuid, LogChunk.offset >= start)
        .order_by(LogChunk.offset)
    )
    parts, size = [], 0
    for chunk in chunks:
        piece = chunk.text[max(0, offset - chunk.offset) :]
        if piece:
            parts.append(piece)
            size += len(piece)
        if size >= limit:
            break
    text = "".join(parts)[:limit]
    end = offset + len(text)
    status = Task.select(Task.status).where(Task.uuid == taskuuid).scalar()
    more = (
        LogChunk.select()
        .where(LogChunk.taskuuid == taskuuid, LogChunk.offset + fn.LENGTH(LogChunk.text) > end)
        .exists()
    )
    # ``status`` is the one ``done`` was judged by, read after the text.
    return {"log": text, "offset": end, "done": status in FINAL and not more, "status": status}
