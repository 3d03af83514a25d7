"""The approval step of a job, as the worker walks it: ask, park, and read the outcome.

The step's first turn resolves its approvers (``$var`` substituted), renders its text
(``${var}``; ``defaultTemplate`` is the environment's ``approvalTemplatePluginContent``),
stores one row per approver (:mod:`engine.approval.records`), queues their notifications and
parks the task: a waiting approval holds no worker. Each opinion wakes the task; a queue task
scheduled at the deadline (and a sweep every minute, should that message be lost) wakes it
when the step times out. Any worker resumes it and ends the step: ``success`` once the
approvals suffice, ``refuse`` (the task too) at the first refusal, ``fail`` at the timeout.
"""

import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from engine.approval import notify, records
from engine.catalog import environment, variables
from engine.run import events
from engine.run.lifecycle import durably, park, wake
from engine.store.clock import now
from engine.store.db import database
from engine.store.models import Approval, Project, Subtask, Task

if TYPE_CHECKING:
    from huey import Huey

    from engine.store.settings import Settings

log = logging.getLogger(__name__)

APPROVER = re.compile(r"[A-Za-z0-9_.@-]+")
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
DEFAULT_CONT = "Approve step ${stepname} of job ${jobname} (task ${taskuuid}, by ${submitter})"
Outcome = tuple[str, str | None]
_state: dict[str, Any] = {"deadline": None}


def register(huey: "Huey", settings: "Settings") -> None:
    """Register the deadline task and the minute sweep that wake timed-out approvals."""
    from huey import crontab

    _state["deadline"] = huey.task(name="opsjob.approval_deadline")(on_deadline)
    huey.periodic_task(crontab(minute="*"), name="opsjob.approval_sweep")(sweep)
    events.subscribe("task_changed", on_task_changed)


def on_task_changed(uuid: str, status: str) -> None:
    """Listener: a task that ended takes no opinion any more; its links stop working."""
    if status in ("success", "fail", "refuse"):
        records.close_task(uuid, status)


def advance(
    task: Task,
    step: Mapping[str, Any],
    sub: Subtask,
    values: Mapping[str, Any],
    note: Callable[[str], None],
) -> Subtask | Outcome | None:
    """Start or resume approval step ``step``; return its subtask once it succeeded (the
    worker then honours its pause), the task's outcome when it ends the task, or None when
    the task was parked to wait for the approvers."""
    label = f"step {sub.position + 1}"
    rows = durably(records.rows_of, task.uuid, step["uuid"])
    if sub.status is None or not rows:
        started = _start(task, step, sub, values, note)
        if started is not None:
            _end(sub, "fail")
            return started
        rows = durably(records.rows_of, task.uuid, step["uuid"])
    state = records.outcome(rows)
    if state == "pending" and time.time() >= rows[0].deadline:
        durably(records.close, task.uuid, step["uuid"], "_close_by_sys_ timeout")
        _end(sub, "fail")
        note(f"[{now()}] {label}: approval timed out after {step['timeout']} s")
        return ("fail", f"{label}: approval timed out after {step['timeout']} s")
    if state == "refuse":
        who = ",".join(r.user for r in rows if r.opinion == "refuse" and not r.remarks)
        durably(records.close, task.uuid, step["uuid"], "_close_by_sys_ refused")
        _end(sub, "refuse")
        note(f"[{now()}] {label}: approval refused by {who or 'an approver'}")
        return ("refuse", f"approval refused by {who or 'an approver'}")
    if state == "agree":
        who = ",".join(
            r.user for r in rows if r.opinion == "agree" and "_close_by_sys_" not in r.remarks
        )
        durably(records.close, task.uuid, step["uuid"], "_close_by_sys_ approved")
        _end(sub, "success")
        note(f"[{now()}] {label}: approved by {who}")
        return durably(Subtask.get_by_id, sub.id)
    park(task.uuid)
    waiting = [r.user for r in rows if r.opinion == "unconfirmed"]
    note(f"[{now()}] {label}: waiting for approval by {','.join(waiting)}")
    if records.outcome(durably(records.rows_of, task.uuid, step["uuid"])) != "pending":
        wake(task.uuid)  # an opinion came while we parked: its wake found the task running
    return None


def _start(
    task: Task,
    step: Mapping[str, Any],
    sub: Subtask,
    values: Mapping[str, Any],
    note: Callable[[str], None],
) -> Outcome | None:
    """Store the approvers' rows and queue their notifications; an outcome when it cannot."""
    label = f"step {sub.position + 1}"
    text, missing = variables.substitute(step["approver"], values)
    if missing:
        note(f"ERROR: {label}: variable undef: {','.join(missing)}")
        return ("fail", f"variable undef: {','.join(missing)}")
    approvers: list[str] = []
    for entry in (e.strip() for e in text.split(",")):
        if entry and entry not in approvers:
            approvers.append(entry)
    bad = [a for a in approvers if not APPROVER.fullmatch(a) or a[0] in "@%"]
    if bad or not approvers:
        why = f"approver: not a user name or an address: {','.join(bad)}" if bad else "no approver"
        note(f"ERROR: {label}: {why}")
        return ("fail", why)
    cont = _text(task, step, values)
    agreed = {task.user} if step.get("relaxed") == "on" and task.user in approvers else set()
    stamp = now()
    durably(
        Subtask.update(
            status="running",
            starttime=stamp,
            nodecount=len(approvers),
            attempt=1,
            finishtime=None,
            pause=step.get("pause") or "",
        )
        .where(Subtask.id == sub.id)
        .execute
    )
    sub.starttime = stamp
    tokens = durably(
        records.create,
        projectid=task.projectid,
        taskuuid=task.uuid,
        stepuuid=step["uuid"],
        name=step["name"],
        cont=cont,
        approvers=approvers,
        submitter=task.user,
        everyone=step.get("everyone") or "off",
        deadline=time.time() + int(step["timeout"]),
        agreed=agreed,
    )
    note(
        f"[{now()}] {label} (approval) {step['name']}: asking "
        + ",".join(approvers)
        + (" (all must agree)" if step.get("everyone") == "on" else " (any one)")
        + (f"; {task.user} approves as the submitter (relaxed)" if agreed else "")
    )
    if tokens:
        notify.queue(task.uuid, tokens)
    if _state["deadline"] is not None:
        try:
            _state["deadline"].schedule(args=(task.uuid,), delay=int(step["timeout"]) + 1)
        except Exception:  # the minute sweep wakes it anyway
            log.warning("task %s: could not schedule the approval deadline", task.uuid)
    return None


def _text(task: Task, step: Mapping[str, Any], values: Mapping[str, Any]) -> str:
    """Render the step's ``cont``: ``${name}`` from the task's variables and its context."""
    cont = step["cont"]
    if cont == "defaultTemplate":
        cont = environment.get_all().get("approvalTemplatePluginContent") or DEFAULT_CONT
    project = Project.get_or_none(Project.id == task.projectid)
    known = {
        **{k: str(v) for k, v in values.items() if v not in (None, "")},
        "jobname": task.name,
        "submitter": task.user,
        "stepname": step["name"],
        "taskuuid": task.uuid,
        "treename": project.name if project else "",
        "projectid": str(task.projectid),
    }
    return PLACEHOLDER.sub(lambda m: known.get(m.group(1), m.group(0)), cont)


def _end(sub: Subtask, status: str) -> None:
    stamp = now()
    start = sub.starttime or stamp
    durably(
        Subtask.update(
            status=status, finishtime=stamp, runtime=round((stamp - start).total_seconds(), 3)
        )
        .where(Subtask.id == sub.id)
        .execute
    )


def on_deadline(taskuuid: str) -> None:
    """Queue task: wake ``taskuuid`` if one of its approvals has timed out."""
    with database.connection_context():
        _wake_timed_out([taskuuid])


def sweep() -> None:
    """Wake every waiting task whose approval timed out (in case its deadline message was lost)."""
    with database.connection_context():
        _wake_timed_out(None)


def _wake_timed_out(uuids: list[str] | None) -> None:
    query = Approval.select(Approval.taskuuid).where(
        Approval.opinion == "unconfirmed",
        Approval.token_hash.is_null(False),
        Approval.deadline <= time.time(),
    )
    if uuids is not None:
        query = query.where(Approval.taskuuid.in_(uuids))
    due = {r.taskuuid for r in query}
    for task in Task.select(Task.uuid).where(Task.uuid.in_(list(due)), Task.status == "waiting"):
        wake(task.uuid)
