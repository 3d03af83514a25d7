"""The worker side of a run: run a claimed task's steps, park it when a human must decide.

The task's state changes (claim, park, wake, finish, lease) live in :mod:`engine.run.lifecycle`.
A step whose hosts failed parks the task in ``waiting`` and the worker returns: the control
call queues the continuation, and any worker resumes it from the database.
"""

import json
import logging
import os
import threading
from typing import Any

from engine.approval import step as approval
from engine.catalog import variables
from engine.catalog.steps import PLUGINS, shape
from engine.ops import logformat
from engine.run import events, mutex
from engine.run.lifecycle import (
    Heartbeat,
    claim,
    durably,
    finish,
    park,
    settings,
    wake,
    worker_name,
)
from engine.run.steprun import StepFailed, StepRun
from engine.store.clock import now
from engine.store.db import database
from engine.store.models import Job, Subtask, Task
from engine.tasklog import logs

log = logging.getLogger(__name__)
STEPPED = ("jobs", "plugin_approval")  # tasks walked step by step (an approval parks)


def task_values(task: Task) -> dict[str, Any]:
    """The variables of ``task``'s run (see :func:`engine.catalog.variables.run_values`)."""
    jobuuid = task.jobuuid if task.jobtype == "jobs" else None
    return variables.run_values(jobuuid, json.loads(task.variable or "{}"))


def run_task(uuid: str) -> None:
    """Queue entry point: claim task ``uuid`` and run it until it ends or parks."""
    with logformat.for_task(uuid), database.connection_context():
        task = durably(claim, uuid, what=f"task {uuid}: claim")
        if task is None:
            return
        log.info("task %s: running (project %s)", uuid, task.projectid)
        try:
            TaskRun(task).run()
        except Exception as e:  # the run's own guard failed; never leave it running
            log.exception("task %s: worker error", uuid)
            finish(uuid, "fail", f"internal error: {e}")


class TaskRun:
    """One worker's turn at one task."""

    def __init__(self, task: Task) -> None:
        self.task = task
        self.cancel = threading.Event()
        lease, most = settings().task_lease, settings().max_log_bytes
        self.log = durably(logs.LogWriter, task.uuid, retry_seconds=lease, max_chars=most)
        self.workdir = os.path.join(os.path.abspath(settings().home), "runs")

    # The outcome of ``_run`` is (status, reason), or None when the task was parked.
    def run(self) -> None:
        beat = Heartbeat(self.task.uuid, settings().task_lease, self.cancel)
        beat.start()
        self.heartbeat = beat
        try:
            outcome = self._run()
        except StepFailed as e:
            self.log.line(f"ERROR: {e}")
            outcome = ("fail", str(e))
        except Exception as e:  # a bug must not leave the task running forever
            log.exception("task %s failed", self.task.uuid)
            self.log.line(f"ERROR: internal error: {e}")
            outcome = ("fail", f"internal error: {e}")
        finally:
            beat.stop()
        if beat.killed_by and outcome and outcome[0] != "success":
            outcome = ("fail", f"killed by {beat.killed_by}")
        elif beat.lost and outcome and outcome[0] != "success":
            outcome = ("fail", f"stopped: {beat.lost}")
        if outcome is not None:
            self.log.line(
                f"[{now()}] task {outcome[0]}" + (f": {outcome[1]}" if outcome[1] else "")
            )
        self.log.finish()  # before the final status, so a reader that sees it has every line
        if outcome is not None:
            finish(self.task.uuid, *outcome)

    def _run(self):
        task = self.task
        first = not task.plan
        if first:
            self.log.line(
                f"[{now()}] task {task.uuid} ({task.name}) started by {task.user} "
                f"on {worker_name()}"
            )
            gate = mutex.gate(task, note=self.log.line)
            if gate is not mutex.GO:  # ends now, or waits in init for the mutex (None)
                return gate
            durably(self._make_plan, what=f"task {task.uuid}: plan")
            events.emit("task_changed", task.uuid, "running")
        else:
            self.log.line(f"[{now()}] task resumed on {worker_name()}")
        plan = json.loads(self.task.plan)
        self.values = durably(task_values, self.task, what=f"task {task.uuid}: variables")
        if task.jobtype not in STEPPED:
            return self._run_direct(plan[0])
        for position, step in enumerate(plan):
            sub = durably(
                Subtask.get, Subtask.parent_uuid == task.uuid, Subtask.position == position
            )
            outcome = self._job_step(step, sub)
            if outcome != "next":
                return outcome
        return ("success", None)

    # -- plan and variables

    def _make_plan(self) -> None:
        """Snapshot the steps at the first claim: later job edits do not change this run."""
        task = self.task
        if task.jobtype == "jobs":
            job = Job.get_or_none(Job.uuid == task.jobuuid, Job.projectid == task.projectid)
            if job is None or job.status == "deleted":
                raise StepFailed(f"job {task.jobuuid} does not exist any more")
            from engine.catalog.steps import load

            plan = [{"kind": kind, **shape(kind, row)} for kind, row in load(job.uuids)]
        else:
            kind = task.jobtype.split("_", 1)[1]
            model = PLUGINS[kind]
            plan = [{"kind": kind, **shape(kind, model.get(model.uuid == task.jobuuid))}]
        with database.atomic():
            if task.jobtype in STEPPED:
                for position, step in enumerate(plan):
                    Subtask.insert(
                        parent_uuid=task.uuid,
                        position=position,
                        subtask_type=step["kind"],
                        uuid=step["uuid"],
                    ).on_conflict_ignore().execute()
            Task.update(plan=json.dumps(plan)).where(Task.uuid == task.uuid).execute()
        self.task = Task.get(Task.uuid == task.uuid)

    def _exit_on_error(self, kind: str) -> bool:
        return str(self.values.get("_exit_", "")).lower() in ("1", "true", kind)

    # -- steps inside a job

    def _job_step(self, step: dict[str, Any], sub: Subtask) -> str | tuple[str, str | None] | None:
        """Run or resume one step; return "next", an outcome, or None when parked."""
        uuid = self.task.uuid
        if step["kind"] == "approval" and sub.status in (None, "running"):
            done = approval.advance(self.task, step, sub, self.values, self.log.line)
            if not isinstance(done, Subtask):
                return done
            sub = done
        if sub.status is None or sub.status == "running":
            if self.cancel.is_set():
                return ("fail", None)
            retry = sub.status == "running" and sub.attempt > 0
            try:
                result = self._execute(step, sub, retry)
            except StepFailed:
                self._end_sub(sub, "fail")
                raise
            if result == "paused":  # a rollout waits for `next` between two batches
                return None
            if result == "killed":
                durably(
                    Subtask.update(status="fail", finishtime=now())
                    .where(Subtask.id == sub.id)
                    .execute
                )
                return ("fail", None)
            if result == "ok":
                self._end_sub(sub, "success")
            elif self._exit_on_error(step["kind"]):
                self._end_sub(sub, "fail")
                return ("fail", "stop by sys._exit_")
            else:

                def decide():
                    with database.atomic():
                        self._end_sub(sub, "decision")
                        return park(uuid, announce=False)

                self.log.line(
                    f"[{now()}] step {sub.position + 1} needs a decision: retry the "
                    "failed nodes, ignore, or fail"
                )
                if self.unknown:
                    self.log.line(
                        "outcome unknown (the step may have run) on: "
                        + ",".join(self.unknown)
                        + "; control=running retries them only with retry_unknown=1"
                    )
                self.log.flush()  # whoever sees the decision can read why
                if durably(decide, what=f"task {uuid}: decision"):
                    events.emit("task_changed", uuid, "waiting")
                return None
            sub = durably(Subtask.get_by_id, sub.id)
        if sub.status == "decision":  # woken without a decision: wait again
            park(uuid)
            return None
        if sub.pause:
            park(uuid)
            self.log.line(f"[{now()}] paused after step {sub.position + 1}: {sub.pause}")
            if durably(Subtask.get_by_id, sub.id).pause == "":  # `next` came while we parked
                wake(uuid)
            return None
        if sub.status == "fail":
            reason = durably(Task.get, Task.uuid == uuid).reason
            return ("fail", reason or f"step {sub.position + 1} failed")
        return "next"

    def _end_sub(self, sub: Subtask, status: str) -> None:
        stamp = now()
        runtime = (stamp - sub.starttime).total_seconds() if sub.starttime else 0.0
        ended = {"status": status, "finishtime": stamp, "runtime": round(runtime, 3)}
        durably(
            Subtask.update(**ended, retry_unknown=False)  # a later decision asks again
            .where(Subtask.id == sub.id)
            .execute
        )

    def _run_direct(self, step: dict[str, Any]) -> tuple[str, str | None]:
        result = self._execute(step, None, retry=False)
        if result == "killed":
            return ("fail", None)
        return ("success", None) if result == "ok" else ("fail", self.failure)

    # -- executing one step

    def _execute(self, step: dict[str, Any], sub: Subtask | None, retry: bool) -> str:
        """Run one step's hosts (engine.run.steprun); "ok", "failed", "killed" or "paused"."""
        run = StepRun(self.task, step, sub, self.values, self.log, self.cancel, self.workdir)
        result = run.run(retry)
        self.unknown, self.failure = run.unknown, run.failure
        return result
