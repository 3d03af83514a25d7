"""Operating tasks: step (subtask) views, decision/pause control, kill, and log reads."""

import time
from collections.abc import Mapping
from typing import Any, cast

from peewee import fn

from engine.access import auth
from engine.catalog import steps, variables
from engine.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from engine.run import events, lifecycle
from engine.run.shapes import HostPage, HostView, SubtaskView, TaskLog
from engine.store.clock import now
from engine.store.listing import Columns, as_dict, paged
from engine.store.models import Approval, HostResult, Subtask, Task, database
from engine.store.prepared import Prepared
from engine.store.validate import ALNUM, Field, check
from engine.tasklog import logs

SUBTASK_FIELDS = (
    "id",
    "subtask_type",
    "uuid",
    "nodecount",
    "starttime",
    "finishtime",
    "runtime",
    "status",
    "pause",
)
APPROVAL_FIELDS = ("uuid", "user", "opinion", "remarks", "finishtime", "notifystatus")
HOST_FIELDS = (
    "host",
    "status",
    "rc",
    "attempt",
    "batch",
    "starttime",
    "finishtime",
    "stdout",
    "stderr",
)
FINAL = ("success", "fail", "refuse")
CONTROL = {
    "taskuuid": Field(required=True, pattern=ALNUM, max_len=20),
    "subtaskuuid": Field(required=True, pattern=ALNUM, max_len=20),
    "subtasktype": Field(required=True, choices=("cmd", "scp", "playbook", "approval")),
    "control": Field(required=True, choices=("next", "fail", "running", "ignore")),
    # with control=running: also run again the hosts whose outcome is unknown (may have run)
    "retry_unknown": Field(bool, default=False),
}
HOST_FILTERS = {
    # ok, failed, unreachable, timeout, canceled, unknown, refused, skipped
    "status": Field(pattern=r"[a-z]{1,20}", max_len=20),
}
LOG = {"offset": Field(int, default=0, minimum=0)}
VISIBLE = Columns(Task, ("uuid", "projectid", "jobuuid", "status"))
VISIBLE_TASK = Prepared(lambda arg: VISIBLE.select().where(Task.uuid == arg("uuid")).limit(1))


def _task(projectid: int, taskuuid: str, field: str = "taskuuid") -> Task:
    task = Task.get_or_none(Task.uuid == taskuuid, Task.projectid == projectid)
    if task is None:
        raise NotFound(f"{field}: task {taskuuid} does not exist")
    return task


def host_results(
    taskuuid: str, stepuuid: str | None = None, latest_only: bool = False
) -> list[HostView]:
    """Return per-host results of a task (or one step), oldest attempt first."""
    query = HostResult.select().where(HostResult.taskuuid == taskuuid)
    if stepuuid is not None:
        query = query.where(HostResult.stepuuid == stepuuid)
    rows = list(query.order_by(HostResult.attempt, HostResult.id))
    if latest_only and rows:
        last = max(r.attempt for r in rows)
        rows = [r for r in rows if r.attempt == last]
    return cast("list[HostView]", [{**as_dict(r, HOST_FIELDS), "step": r.stepuuid} for r in rows])


def task_hosts(projectid: int, taskuuid: str, params: Mapping[str, Any] | None = None) -> HostPage:
    """Return a task's per-host results (jobs and single steps) in the order they ran, with
    ``total`` (the rows ``status`` selects) and ``counts`` (the task's rows per status).

    ``params``: ``status`` keeps the rows of that status; ``page``/``pagesize`` return one
    page of them (without either: every row, as before paging existed).
    """
    task = _task(projectid, taskuuid, field="uuid")
    params = params or {}
    wanted = check(params, HOST_FILTERS)["status"]
    mine = HostResult.taskuuid == task.uuid
    counts = HostResult.select(HostResult.status, fn.COUNT(HostResult.id)).where(mine)
    per_status: dict[str, int] = dict(counts.group_by(HostResult.status).tuples())  # type: ignore[arg-type]
    query = HostResult.select().where(mine)
    if wanted:
        query = query.where(HostResult.status == wanted)
    query = query.order_by(HostResult.id)
    if "page" in params or "pagesize" in params:
        query = paged(query, params)
    rows = [{**as_dict(r, HOST_FIELDS), "step": r.stepuuid} for r in query]
    total = per_status.get(wanted, 0) if wanted else sum(per_status.values())
    return {"rows": cast("list[HostView]", rows), "total": total, "counts": per_status}


def _extended(kind: str, uuid: str) -> dict[str, Any]:
    model = steps.PLUGINS[kind]
    row = model.get_or_none(model.uuid == uuid)
    return {"id": row.id, **steps.shape(kind, row)} if row is not None else {}


def _approvals(row: Subtask) -> dict[str, Any]:
    """An approval step's approvers and their opinions, as ``{"approvals": [...]}``."""
    if row.subtask_type != "approval":
        return {}
    rows = Approval.select().where(
        Approval.taskuuid == row.parent_uuid, Approval.stepuuid == row.uuid
    )
    return {"approvals": [as_dict(r, APPROVAL_FIELDS) for r in rows.order_by(Approval.id)]}


def list_subtasks(projectid: int, taskuuid: str) -> list[SubtaskView]:
    """Return the steps of a ``jobs`` task in order, with their definition and host results
    (and, for an approval step, its approvers' opinions)."""
    task = _task(projectid, taskuuid)
    rows = Subtask.select().where(Subtask.parent_uuid == task.uuid).order_by(Subtask.position)
    return cast(
        "list[SubtaskView]",
        [
            {
                **as_dict(r, SUBTASK_FIELDS),
                "extended": _extended(r.subtask_type, r.uuid),
                "hosts": host_results(task.uuid, r.uuid, latest_only=True),
                **_approvals(r),
            }
            for r in rows
        ],
    )


def get_subtask(projectid: int, taskuuid: str, subtaskuuid: str) -> SubtaskView:
    """Return one step of a task with every attempt's host results."""
    task = _task(projectid, taskuuid)
    row = Subtask.get_or_none(Subtask.parent_uuid == task.uuid, Subtask.uuid == subtaskuuid)
    if row is None:
        raise NotFound(f"subtaskuuid: step {subtaskuuid} is not part of task {taskuuid}")
    ext = _extended(row.subtask_type, row.uuid)
    who = "approver" if row.subtask_type == "approval" else "user"
    return cast(
        SubtaskView,
        {
            **as_dict(row, SUBTASK_FIELDS),
            "extended": {k: ext.get(k) for k in ("id", "uuid", "name", who, "timeout", "pause")},
            "hosts": host_results(task.uuid, row.uuid),
            **_approvals(row),
        },
    )


def control(
    projectid: int,
    params: dict[str, Any],
    principal: auth.Principal,
    allowed: tuple[str, ...] = ("next", "fail", "running", "ignore"),
    role: str | None = None,
) -> int:
    """Release a pause (``next``) or decide a failed step (``running`` retries the failed
    hosts, ``ignore`` goes on, ``fail`` stops the task). The caller needs ``role``, by default
    the one that runs the task's job (control when its ``_authorization_`` is true)."""
    values = check(params, CONTROL)
    if values["control"] not in allowed:
        raise InvalidInput(f"control: must be one of {', '.join(allowed)}")
    task = _task(projectid, values["taskuuid"])
    auth.require(principal, projectid, role or variables.launch_role(task.jobuuid))
    where = (
        Subtask.parent_uuid == task.uuid,
        Subtask.uuid == values["subtaskuuid"],
        Subtask.subtask_type == values["subtasktype"],
    )
    if values["control"] == "running":
        _check_retry(task.uuid, values)
    with database.atomic():
        if values["control"] == "next":
            changed = Subtask.update(pause="").where(*where, Subtask.pause != "").execute()
        else:
            fields = {"status": values["control"]}
            if values["control"] == "running":
                fields["retry_unknown"] = bool(values["retry_unknown"])
            changed = Subtask.update(**fields).where(*where, Subtask.status == "decision").execute()
            if changed and values["control"] == "fail":
                Task.update(reason=f"stop by {principal.name}").where(
                    Task.uuid == task.uuid, Task.reason.is_null()
                ).execute()
    if not changed:
        raise Conflict("control: nothing to update (the step is not paused or not in decision)")
    lifecycle.wake(task.uuid)
    return 1


def _check_retry(taskuuid: str, values: dict[str, Any]) -> None:
    """Refuse a retry that would run nothing: every host left is of unknown outcome."""
    step = Subtask.get_or_none(
        Subtask.parent_uuid == taskuuid,
        Subtask.uuid == values["subtaskuuid"],
        Subtask.subtask_type == values["subtasktype"],
    )
    if step is None or step.status != "decision" or values["retry_unknown"]:
        return
    left = {
        r.host: r.status
        for r in HostResult.select(HostResult.host, HostResult.status).where(
            HostResult.taskuuid == taskuuid,
            HostResult.stepuuid == step.uuid,
            HostResult.attempt == step.attempt,
            HostResult.status != "ok",
        )
    }
    if left and all(status == "unknown" for status in left.values()):
        raise Conflict(
            "retry_unknown: no node of this step is known to have failed; the outcome of "
            + ",".join(sorted(left))
            + " is unknown (the step may have run there): send retry_unknown=1 to run it "
            "there again, or ignore"
        )


def _visible_task(uuid: str, principal: auth.Principal, role: str) -> dict[str, Any]:
    _authenticated(principal)
    return _visible(VISIBLE.first(VISIBLE_TASK, uuid=uuid[:12]), uuid, principal, role)


def _authenticated(principal: auth.Principal | None) -> None:
    if principal is None:
        raise Unauthenticated("missing credentials: send 'Authorization: Bearer <key>'")


def _visible(task, uuid, principal, role):
    """Return ``task`` (a dict with its projectid, or None) if ``principal`` may act on it
    with ``role``; one it may not read does not exist for it."""
    if task is None or not principal.allows(task["projectid"], "read"):
        raise NotFound(f"uuid: task {uuid} does not exist")
    auth.require(principal, task["projectid"], role)
    return task


def kill(uuid: str, principal: auth.Principal, wait_seconds: float = 5.0) -> str:
    """Stop a task: a queued or waiting one at once, a running one through its worker.

    Return the message OpenC3 answers with.
    """
    task = _visible_task(uuid, principal, "control")
    auth.require(principal, task["projectid"], variables.launch_role(task["jobuuid"]))
    if task["status"] in FINAL:
        return f"task {task['uuid']} has been closed, status is {task['status']}"
    reason = f"killed by {principal.name}"
    stamp = now()
    stopped = (
        Task.update(
            status="fail", reason=reason, finishtime=stamp, finishtimems=time.time(), notify=0
        )
        .where(Task.uuid == task["uuid"], Task.status.in_(["init", "waiting"]))
        .execute()
    )
    if stopped:
        events.emit("task_changed", task["uuid"], "fail")
        return "kill task succcess"
    Task.update(kill_by=principal.name).where(Task.uuid == task["uuid"]).execute()
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if Task.select(Task.status).where(Task.uuid == task["uuid"]).scalar() in FINAL:
            return "kill task succcess"
        time.sleep(0.1)
    return "kill requested; the worker stops the task at its next check"


def read_log(uuid: str, principal: auth.Principal, offset: Any) -> TaskLog:
    """Return the log of a task from ``offset``: ``{log, offset, done, status, uuid}``."""
    offset = LOG["offset"].clean("offset", offset)
    _authenticated(principal)
    # One statement reads the task and its text; nothing of it leaves before the check.
    read = _visible(logs.read(uuid[:12], offset), uuid, principal, "read")
    del read["projectid"]
    return cast(TaskLog, {**read, "uuid": uuid[:12]})
