"""Follow a run's log as it is written: the whole task, or one step of a job.

A log uuid is the task uuid (12 characters), or ``<task uuid><step uuid><cmd|scp|approval>``
for one step, as OpenC3's web UI forms it. Logs live in the database, so any API node follows
any task. Each poll costs two indexed queries: the status, then the chunks written since the
last one (chunks are appended whole, so a reader that starts at 0 always stands on a chunk
boundary).
"""

import re
from typing import Any

from engine.access import auth, tickets
from engine.errors import NotFound, Unauthenticated
from engine.store.models import LogChunk, Subtask, Task
from engine.store.validate import ALNUM, Field, check

FINAL = ("success", "fail", "refuse")
STEP_OVER = ("success", "fail", "ignore")
LOGUUID = re.compile(
    r"(?P<task>[A-Za-z0-9]{12})(?:(?P<step>[A-Za-z0-9]{1,20}?)(?P<kind>cmd|scp|approval))?"
)
# Worker log lines that open a section: "[<time>] step 2 (cmd) ..." or "[<time>] task ...".
TICKET = {"uuid": Field(required=True, pattern=ALNUM, max_len=60, allow_empty=False)}
MARKER = re.compile(r"\[[^\]\n]*\] (?:step (?P<step>[0-9]+)\b|(?P<task>task) )")


class Follower:
    """The state of one reader: where it is in the log, and which section it is in."""

    def __init__(
        self, task: str, position: int | None = None, subtask_id: int | None = None
    ) -> None:
        self.task = task  # the task's uuid
        self.position = position  # 1-based step number, or None for the whole log
        self.subtask_id = subtask_id
        self.offset = 0
        self.section: int | None = None  # the step number the last marker line opened
        self.seen_step = False  # a line of this step was read
        self.left_step = False  # a later section began after this step's lines
        self.partial = ""  # the end of the text read so far, up to its last newline

    def poll(self) -> tuple[str, bool]:
        """Return ``(text, done)``: what was written since the last poll, and whether the
        task (or step) has ended and everything of it was read."""
        status = Task.select(Task.status).where(Task.uuid == self.task).scalar()
        chunks = list(
            LogChunk.select(LogChunk.offset, LogChunk.text)
            .where(LogChunk.taskuuid == self.task, LogChunk.offset >= self.offset)
            .order_by(LogChunk.offset)
        )
        parts = []
        for chunk in chunks:
            if chunk.offset != self.offset:
                break  # a chunk not committed yet: read on from there next time
            parts.append(chunk.text)
            self.offset += len(chunk.text)
        text = "".join(parts)
        if self.position is not None:
            text = self._step_lines(text)
        # The status was read before the chunks, and a worker writes every line before it
        # sets a final status: a final status and no new chunk means nothing is left.
        done = status in FINAL and not chunks
        if self.position is not None and not done and self.left_step:
            step = Subtask.select(Subtask.status).where(Subtask.id == self.subtask_id).scalar()
            done = step in STEP_OVER
        return text, done

    def _step_lines(self, text: str) -> str:
        lines = (self.partial + text).split("\n")
        self.partial = lines.pop()  # the last line is complete only once its newline arrives
        kept = []
        for line in lines:
            marker = MARKER.match(line)
            if marker:
                self.section = int(marker["step"]) if marker["step"] else None
                if self.section != self.position and self.seen_step:
                    self.left_step = True
            if self.section == self.position:
                self.seen_step = True
                self.left_step = False
                kept.append(line + "\n")
        return "".join(kept)


def follow(loguuid: str | None, principal: auth.Principal | None) -> Follower:
    """Return a :class:`Follower` for ``loguuid`` once ``principal`` may read its project."""
    if principal is None:
        raise Unauthenticated("missing credentials: send a key or a ticket")
    match = LOGUUID.fullmatch(loguuid or "")
    if match is None:
        raise NotFound(f"uuid: no log {loguuid!r}")
    task = Task.get_or_none(Task.uuid == match["task"])
    if task is None or not principal.allows(task.projectid, "read"):
        raise NotFound(f"uuid: no log {loguuid}")
    auth.require(principal, task.projectid, "read")
    if match["step"] is None or task.jobtype != "jobs":
        return Follower(task.uuid)  # a single-step task's log is its step's log
    step = Subtask.get_or_none(
        Subtask.parent_uuid == task.uuid,
        Subtask.uuid == match["step"],
        Subtask.subtask_type == match["kind"],
    )
    if step is None:
        raise NotFound(f"uuid: step {match['step']} is not part of task {task.uuid}")
    return Follower(task.uuid, step.position + 1, step.id)


def project_of(loguuid: str | None) -> int | None:
    """Return the project of the task ``loguuid`` names, or None."""
    match = LOGUUID.fullmatch(loguuid or "")
    if match is None:
        return None
    return Task.select(Task.projectid).where(Task.uuid == match["task"]).scalar()


def ticket(params: dict[str, Any], principal: auth.Principal, key: str) -> dict[str, Any]:
    """Issue a websocket ticket for the live log ``uuid`` names (read on its project):
    ``{ticket, expires, projectid}``."""
    loguuid = check(params, TICKET)["uuid"]
    projectid = project_of(loguuid)
    if projectid is None or not principal.allows(projectid, "read"):
        raise NotFound(f"uuid: no log {loguuid}")
    return {**tickets.issue(principal, key, projectid, "read"), "projectid": projectid}
