"""The dicts the client hands back, named after what the server answers."""

from typing import Any, Required, TypedDict


class Envelope(TypedDict, total=False):
    """A whole answer: ``stat`` and ``data``, and the keys some routes put beside them."""

    stat: Required[bool]
    data: Any
    info: str
    uuid: str
    id: int
    msg: str
    uuids: list[str]
    total: int  # a paged host list: the rows its filter selects
    counts: dict[str, int]  # a paged host list: the task's rows per status


class Project(TypedDict):
    """A project (``GET /project/:projectid``); ``webhook`` shows only scheme and host."""

    id: int
    name: str
    status: str
    edit_user: str
    edit_time: str
    webhook: str


class TaskData(TypedDict, total=False):
    """A task as ``GET /task/:projectid/:uuid`` answers it (empty before the first load)."""

    id: int
    uuid: str
    name: str
    user: str
    slave: str
    status: str
    starttime: str | None
    finishtime: str | None
    calltype: str
    jobtype: str
    jobuuid: str
    runtime: str | None
    reason: str | None
    extid: str
    mutex: str
    mutex_policy: str
    notify: int
    pid: int | None
    starttimems: float | None
    finishtimems: float | None
    create_time: str
    variable: str


class HostResult(TypedDict):
    """What one host did in one attempt of a step; times are epoch seconds."""

    step: str
    host: str
    status: str
    rc: int | None
    attempt: int
    batch: int | None  # the batch of a rolling step it ran in (None: all at once)
    starttime: float | None
    finishtime: float | None
    stdout: str
    stderr: str


class StepRow(TypedDict):
    """A step of a job task as ``GET /subtask/:projectid/:taskuuid`` answers it."""

    id: int
    subtask_type: str
    uuid: str
    nodecount: int
    starttime: str | None
    finishtime: str | None
    runtime: float | None
    status: str | None
    pause: str
    extended: dict[str, Any]
    hosts: list[HostResult]


class Step(StepRow):
    """A step with the name its definition gives it."""

    name: str


class LogPage(TypedDict):
    """A task's log from an offset, and the offset to ask next."""

    log: str
    offset: int
    done: bool
    status: str
    uuid: str


class PlannedStep(TypedDict):
    """What a dry run found for one step."""

    step: int
    kind: str
    name: str
    uuid: str
    nodes: list[str]
    refused: list[str]
    missing: list[str]
    problems: list[str]
    args: dict[str, Any]


class Plan(TypedDict):
    """A dry run: each step's plan, then the undefined variables, the nodes outside the
    project and every reason the run would stop."""

    steps: list[PlannedStep]
    missing: list[str]
    foreign: list[str]
    problems: list[str]
