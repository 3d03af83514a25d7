"""The dict shapes the run room hands to the other rooms and the API: tasks, steps, host
results and logs. Times are OpenC3's ``YYYY-MM-DD HH:MM:SS`` text, host times epoch seconds."""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict

if TYPE_CHECKING:
    from engine.ansible.playbook import Compiled, Host


class TaskRow(TypedDict):
    """A task in a list (:func:`engine.run.tasks.list_tasks`)."""

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
    runtime: str | None  # seconds, with 3 decimals
    reason: str | None
    extid: str
    variable: str  # YAML of the variable hash ("" when empty)


class TaskDetail(TaskRow):
    """One task (:func:`engine.run.tasks.get_task`)."""

    mutex: str
    mutex_policy: str
    notify: int
    pid: int | None
    starttimems: float | None
    finishtimems: float | None
    create_time: str


class StepLaunch(TypedDict):
    """A single step started on its own (:func:`engine.run.tasks.run_step`)."""

    slave: str
    uuid: str
    loguuid: str


class HostRow(TypedDict):
    """One host's result of one attempt, as stored (:func:`engine.run.hostresults.row`)."""

    taskuuid: str
    stepuuid: str
    attempt: int
    host: str
    status: str
    rc: int | None
    starttime: float | None
    finishtime: float | None
    stdout: str
    stderr: str
    batch: int | None  # the batch of a rolling step it ran in


class HostView(TypedDict):
    """One host's result as replies show it (:func:`engine.run.control.host_results`)."""

    host: str
    status: str
    rc: int | None
    attempt: int
    starttime: float | None
    finishtime: float | None
    stdout: str
    stderr: str
    batch: int | None  # the batch of a rolling step it ran in
    step: str  # the step's uuid


class HostPage(TypedDict):
    """A page of a task's host results (:func:`engine.run.control.task_hosts`)."""

    rows: list[HostView]
    total: int  # rows the filter selects, over every page
    counts: dict[str, int]  # the task's rows per status, whatever the filter


class SubtaskView(TypedDict):
    """One step of a task (:func:`engine.run.control.list_subtasks`, ``get_subtask``)."""

    id: int
    subtask_type: str
    uuid: str
    nodecount: int
    starttime: str | None
    finishtime: str | None
    runtime: float | None
    status: str | None
    pause: str
    extended: dict[str, Any]  # the step's definition
    hosts: list[HostView]
    approvals: NotRequired[list[dict[str, Any]]]  # an approval step's approvers and opinions


class TaskLog(TypedDict):
    """A task's log as the API answers it (:func:`engine.run.control.read_log`)."""

    log: str
    offset: int
    done: bool
    status: str
    uuid: str


class Resolved(TypedDict):
    """A step ready to run (:func:`engine.run.stepplan.resolve`)."""

    targets: "list[Host]"
    refused: list[str]
    make: "Callable[[list[Host]], Compiled] | None"
    after: Callable[[], str] | None  # run once every target succeeded


class StepReport(TypedDict):
    """What one step of a dry-run would do (:func:`engine.run.third.plan`)."""

    step: int
    kind: str
    name: str
    uuid: str
    nodes: list[str]
    refused: list[str]
    missing: list[str]
    problems: list[str]
    args: dict[str, Any]
    rollout: list[int]  # the batch sizes of a rolling step ([n]: all n nodes at once)


class RunPlan(TypedDict):
    """A dry-run's plan of a whole job (:func:`engine.run.third.plan`)."""

    steps: list[StepReport]
    missing: list[str]
    foreign: list[str]
    problems: list[str]


class DryRun(TypedDict):
    """Whether a third-party run would start and run (:func:`engine.run.third.dry_run`)."""

    uuid: str
    ok: bool
    msg: str  # "ok", or every reason it would stop
    plan: RunPlan


class RunState(TypedDict):
    """A third-party run's state (:func:`engine.run.third.query`)."""

    uuid: str
    status: str  # complete, fail or running
    msg: str
    progress: list[int]  # [steps ended, steps]
    link: str
    ctrl: NotRequired[list[dict[str, str]]]  # while it waits: the controls that release it
