"""The worker side of a run: run a claimed task's steps, park it when a human must decide.

The task's state changes (claim, park, wake, finish, lease) live in :mod:`engine.run.lifecycle`.
A step whose hosts failed parks the task in ``waiting`` and the worker returns: the control
call queues the continuation, and any worker resumes it from the database.
"""

import json
import logging
import os
import threading
from typing import TYPE_CHECKING, Any

from engine.ansible import runner
from engine.approval import step as approval
from engine.catalog import variables
from engine.catalog.steps import PLUGINS, shape
from engine.errors import InvalidInput
from engine.ops import logformat
from engine.run import events, hostlog, hostresults, logs, mutex, stepplan
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
from engine.run.shapes import HostRow, Resolved
from engine.store.clock import now
from engine.store.db import database
from engine.store.models import Job, Subtask, Task

if TYPE_CHECKING:
    from engine.ansible.playbook import Compiled, Host
    from engine.ansible.results import HostResult

log = logging.getLogger(__name__)
STEPPED = ("jobs", "plugin_approval")  # tasks walked step by step (an approval parks)


def task_values(task: Task) -> dict[str, Any]:
    """The variables of ``task``'s run (see :func:`engine.catalog.variables.run_values`)."""
    jobuuid = task.jobuuid if task.jobtype == "jobs" else None
    return variables.run_values(jobuuid, json.loads(task.variable or "{}"))


class StepFailed(Exception):
    """A step cannot run at all (undefined variable, missing script); the task fails."""


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

                if durably(decide, what=f"task {uuid}: decision"):
                    events.emit("task_changed", uuid, "waiting")
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
        durably(
            Subtask.update(status=status, finishtime=stamp, runtime=round(runtime, 3))
            .where(Subtask.id == sub.id)
            .execute
        )

    def _run_direct(self, step: dict[str, Any]) -> tuple[str, str | None]:
        result = self._execute(step, None, retry=False)
        if result == "killed":
            return ("fail", None)
        return ("success", None) if result == "ok" else ("fail", self.failure)

    # -- executing one step

    def _execute(self, step, sub, retry):
        """Resolve, compile and run one step. Return "ok", "failed" or "killed"."""
        kind = step["kind"]
        attempt = (sub.attempt if sub else 0) + 1
        plan = durably(self._resolve, step, what=f"task {self.task.uuid}: nodes")  # reads only
        targets, refused = plan["targets"], plan["refused"]
        self.unknown, kept = [], []  # hosts whose outcome is unknown; those not run again
        if retry:
            rerun, kept = durably(
                hostresults.retry_hosts,
                self.task.uuid,
                step["uuid"],
                sub.attempt,
                sub.retry_unknown,
            )
            if rerun or kept:  # with no result at all (the run broke early), all run again
                targets = [h for h in targets if h.name in rerun]
                refused = [n for n in refused if n in rerun]
        names = [h.name for h in targets] + refused
        if sub is not None:
            fields = {
                "status": "running",
                "starttime": now(),
                "nodecount": len(names),
                "attempt": attempt,
                "finishtime": None,
                "retry_unknown": False,  # a later decision asks again
            }
            if attempt == 1:
                fields["pause"] = step.get("pause") or ""
            durably(Subtask.update(**fields).where(Subtask.id == sub.id).execute)
            sub.starttime = fields["starttime"]
        label = f"step {sub.position + 1}" if sub else "step"
        self.log.line(
            f"[{now()}] {label} ({kind}) {step['name']}: "
            f"{'retrying' if retry else 'running'} on {len(names)} node(s): " + ",".join(names)
        )
        if refused:
            self.log.line("ERROR: the node not in project: " + ",".join(refused))
            results = [
                self._row(step, attempt, n, "refused", msg="not a machine of this project")
                for n in refused
            ]
            results += [
                self._row(
                    step,
                    attempt,
                    h.name,
                    "skipped",
                    msg="not run: other nodes of the step were refused",
                )
                for h in targets
            ]
            self._save_results(step, attempt, results + self._kept_rows(step, attempt, kept))
            self.failure = "node not in project: " + ",".join(refused)
            return "failed"
        if not targets:  # only hosts of unknown outcome were left, and they are not run again
            self._save_results(step, attempt, self._kept_rows(step, attempt, kept))
            self.unknown = kept
            self.failure = "outcome unknown on: " + ",".join(kept)
            return "failed"
        compiled = self._compile(plan["make"], targets)
        self.progress = hostlog.Progress(self.log.write, len(targets))
        outcome = runner.execute(
            compiled,
            self.workdir,
            settings(),
            on_log=lambda text: None,  # the hosts are logged grouped when the step ends
            on_host_result=self._host_ended,
            on_output=self._live_output,
            should_cancel=self.cancel.is_set,
        )
        rows = [
            self._row(
                step, attempt, name, r.status, r.rc, r.start, r.end, r.stdout, r.stderr or r.msg
            )
            for name, r in outcome.hosts.items()
        ]
        self.log.write(hostlog.grouped(outcome.hosts))
        rows += self._kept_rows(step, attempt, kept)
        self._save_results(step, attempt, rows)
        self.unknown = outcome.unknown_hosts + kept
        events.emit("step_finished", self.task, step, outcome)
        if outcome.status == "canceled":
            return "killed"
        if outcome.status == "error":
            self.log.line(f"ERROR: {outcome.error}")
        failed = outcome.failed_hosts + kept
        if not failed and outcome.status == "ok" and plan.get("after"):
            try:
                self.log.line(plan["after"]())
            except InvalidInput as e:
                self.failure = e.info
                self.log.line(f"ERROR: {e.info}")
                return "failed"
        if failed or outcome.status != "ok":
            self.failure = (
                (
                    f"{kind} failed on {len(failed)} of {len(outcome.hosts)} node(s): "
                    + ",".join(failed)
                )
                if failed
                else outcome.error
            )
            self.log.line("failed: " + ",".join(failed))
            return "failed"
        return "ok"

    def _kept_rows(self, step: dict[str, Any], attempt: int, kept: list[str]) -> list[HostRow]:
        return [self._row(step, attempt, h, "unknown", msg=hostresults.NOT_RUN_AGAIN) for h in kept]

    def _save_results(self, step: dict[str, Any], attempt: int, rows: list[HostRow]) -> None:
        hostresults.save(self.task.uuid, step["uuid"], attempt, rows)

    def _row(self, step, attempt, host, status, *result, **fields):
        return hostresults.row(
            self.task.uuid, step["uuid"], attempt, host, status, *result, **fields
        )

    def _live_output(self, host: str, text: str) -> None:
        """Log what a host prints while a long step runs, line by line, each with its name."""
        self.log.write("".join(f"{host}| {line}\n" for line in text.splitlines()))

    def _host_ended(self, r: "HostResult") -> None:
        """Count a host as it ends, so a long step on many hosts shows progress."""
        try:
            self.progress.host_ended(r)
        except Exception:  # never stop a run for its log: every host is logged at the end
            log.exception("task %s: logging host %s failed", self.task.uuid, r.host)

    def _resolve(self, step: dict[str, Any]) -> Resolved:
        try:
            return stepplan.resolve(self.task, step, self.values, settings())
        except InvalidInput as e:
            raise StepFailed(e.info) from None

    @staticmethod
    def _compile(make: Any, targets: "list[Host]") -> "Compiled":
        try:
            return make(targets)
        except InvalidInput as e:
            raise StepFailed(e.info) from None
