"""A run seen from the client: :class:`Task` (its status, log, hosts and decisions) and the
:class:`ClientError` every client call raises. :mod:`api.client` re-exports both."""

import math
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from api.client.shapes import Step, StepRow, TaskData

if TYPE_CHECKING:
    from api.client import Client

FINAL = ("success", "fail", "refuse")
DECISIONS = ("running", "ignore", "fail")  # retry the failed hosts, go on, or stop
HOST_COLUMNS = [
    "step",
    "attempt",
    "batch",
    "host",
    "status",
    "rc",
    "starttime",
    "finishtime",
    "stdout",
    "stderr",
]


class ClientError(Exception):
    """A call failed. ``status`` is the HTTP status (0: the server was not reached or the
    client refused the call itself) and ``info`` the explanation, the server's when it sent one."""

    def __init__(self, status: int, info: str) -> None:
        super().__init__(f"HTTP {status}: {info}" if status else info)
        self.status = status
        self.info = info


@dataclass
class HostPage:
    """One page of a task's host results: ``rows`` (a DataFrame), ``total`` (the rows the
    status filter selects, over every page), ``counts`` (the task's rows per status, whatever
    the filter), and where the page sits."""

    rows: pd.DataFrame
    total: int
    counts: dict[str, int]
    page: int
    pagesize: int
    status: str | None

    @property
    def pages(self) -> int:
        """The number of pages (at least 1)."""
        return max(1, math.ceil(self.total / self.pagesize))


class Task:
    """One run on the server. ``refresh()`` reloads it; the properties read live data."""

    def __init__(self, client: "Client", projectid: int, uuid: str) -> None:
        self.client = client
        self.projectid = projectid
        self.uuid = uuid
        self.data: TaskData = {}
        self._log = ""
        self._offset = 0

    def __repr__(self) -> str:
        return f"<Task {self.uuid} {self.status or '?'}>"

    @property
    def status(self) -> str | None:
        """The status at the last refresh."""
        return self.data.get("status")

    @property
    def done(self) -> bool:
        """Whether the task ended (success, fail or refuse) at the last refresh."""
        return self.status in FINAL

    def refresh(self) -> "Task":
        """Reload the task from the server; return it."""
        self.data = self.client.call("GET", f"/task/{self.projectid}/{self.uuid}")
        return self

    def stopped(self) -> bool:
        """Whether the task (as last loaded) ended, or waits for a human: a step decision or
        a pause. A task woken by a control call is still ``waiting`` until a worker takes it
        up, and does not count."""
        if self.status in FINAL:
            return True
        return self.status == "waiting" and self.awaiting() is not None

    def awaiting(self) -> Step | None:
        """Return the step that waits for a human (a decision or a pause), or None."""
        for step in self.steps:
            if step["status"] == "decision":
                return step
            if step["pause"] and step["status"] in ("success", "ignore"):
                return step
        return None

    def wait(
        self, timeout: float = 600, interval: float = 0.3, until: Collection[str] | None = None
    ) -> "Task":
        """Refresh until the task ended or waits for a human; with ``until``, until its
        status is one of those."""
        deadline = time.monotonic() + timeout
        while True:
            self.refresh()
            if self.stopped() if until is None else self.status in until:
                return self
            if time.monotonic() > deadline:
                raise ClientError(0, f"task {self.uuid}: still {self.status} after {timeout} s")
            time.sleep(interval)

    @property
    def text(self) -> str:
        """The log text fetched so far (see :meth:`tail` and :meth:`log`)."""
        return self._log

    def tail(self) -> str:
        """Return the log text written since the last tail (or log) call."""
        page = self.client.log(self.uuid, offset=self._offset)
        self._log += page["log"]
        self._offset = page["offset"]
        return page["log"]

    def log(self) -> str:
        """Return the whole log so far, fetching only what is new."""
        while self.tail():
            pass
        return self._log

    @property
    def hosts(self) -> pd.DataFrame:
        """Per-host results of every step and attempt, in the order they ran (a DataFrame)."""
        rows = self.client.call("GET", f"/task/{self.projectid}/{self.uuid}/hosts")
        return pd.DataFrame(rows, columns=HOST_COLUMNS)

    def host_page(self, status: str | None = None, page: int = 1, pagesize: int = 100) -> HostPage:
        """Return one page of the per-host results (of one ``status`` when given), with the
        task's counts per status: what a person reads of a step on a thousand hosts."""
        answer = self.client.envelope(
            "GET",
            f"/task/{self.projectid}/{self.uuid}/hosts",
            status=status or None,
            page=page,
            pagesize=pagesize,
        )
        return HostPage(
            rows=pd.DataFrame(answer.get("data") or [], columns=HOST_COLUMNS),
            total=int(answer.get("total", 0)),
            counts=dict(answer.get("counts") or {}),
            page=page,
            pagesize=pagesize,
            status=status or None,
        )

    @property
    def steps(self) -> list[Step]:
        """The steps of a job task with their status (empty for a single-step task)."""
        rows: list[StepRow] = self.client.call("GET", f"/subtask/{self.projectid}/{self.uuid}")
        return [{**r, "name": (r.get("extended") or {}).get("name", "")} for r in rows]

    def pending(self, action: str) -> Step | None:
        """Return the step that ``action`` would apply to, or None."""
        for step in self.steps:
            if action == "next" and step["pause"] and step["status"] is not None:
                return step
            if action in DECISIONS and step["status"] == "decision":
                return step
        return None

    def control(self, action: str) -> "Task":
        """Apply ``action`` to the waiting step: next, running (retry the failed hosts),
        ignore or fail."""
        if action not in ("next", *DECISIONS):
            raise ClientError(0, "control: must be one of next, running, ignore, fail")
        step = self.pending(action)
        if step is None:
            raise ClientError(409, f"control: no step of task {self.uuid} waits for {action}")
        self.client.control(
            self.uuid, step["uuid"], step["subtask_type"], action, projectid=self.projectid
        )
        return self.refresh()

    def kill(self) -> str | None:
        """Stop the task; return the server's message."""
        message = self.client.kill(self.uuid)
        self.refresh()
        return message
