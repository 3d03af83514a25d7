"""One attempt at one step of a task: resolve its hosts, run them, record and judge them.

A step that rolls (:mod:`engine.catalog.rolling`) runs its hosts batch by batch. Each batch is
one Ansible run whose host results are stored when it ends, with the batch's number, so a
rollout that waited for ``control=next`` between two batches (``rolling_pause``) goes on, on any
worker, in the same attempt with the hosts that have no result yet. When
more hosts failed than ``max_fail`` tolerates, the later batches do not run: their hosts are
``skipped``, and a retry runs them together with the failed ones.
"""

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from engine.ansible import runner
from engine.catalog import rolling
from engine.errors import InvalidInput
from engine.run import events, hostresults, stepplan
from engine.run.lifecycle import durably, park, settings, wake
from engine.run.shapes import HostRow, Resolved
from engine.store.clock import now
from engine.store.models import HostResult, Subtask, Task
from engine.tasklog import hostlog
from engine.tasklog.logs import LogWriter

if TYPE_CHECKING:
    from engine.ansible.playbook import Compiled, Host
    from engine.ansible.results import HostResult as Result
    from engine.ansible.results import RunOutcome

log = logging.getLogger(__name__)


class StepFailed(Exception):
    """A step cannot run at all (undefined variable, missing script); the task fails."""


class StepRun:
    """One attempt (or the rest of one, for a rollout) at ``step`` of ``task``.

    :meth:`run` returns "ok", "failed", "killed" or "paused" (a rollout waits for ``next``);
    after "failed", :attr:`failure` says why and :attr:`unknown` names the hosts whose outcome
    is unknown (they may have run the step).
    """

    def __init__(
        self,
        task: Task,
        step: dict[str, Any],
        sub: Subtask | None,
        values: dict[str, Any],
        log: LogWriter,
        cancel: threading.Event,
        workdir: str,
    ) -> None:
        self.task, self.step, self.sub, self.values = task, step, sub, values
        self.log, self.cancel, self.workdir = log, cancel, workdir
        self.label = f"step {sub.position + 1}" if sub else "step"
        self.unknown: list[str] = []
        self.failure: str | None = None

    def run(self, retry: bool) -> str:
        """Run the step's hosts; ``retry``: the step ran before (a decision, or a lost worker)."""
        step, sub = self.step, self.sub
        plan = durably(self._resolve, what=f"task {self.task.uuid}: nodes")  # reads only
        attempt, targets, refused, kept, done = self._attempt(
            plan["targets"], plan["refused"], retry
        )
        self.attempt = attempt
        names = [h.name for h in targets] + refused
        going_on = sub is not None and attempt == sub.attempt  # a rollout's later batches
        if sub is not None and not going_on:
            started = now()
            fields = {
                "status": "running",
                "starttime": started,
                "nodecount": len(names),
                "attempt": attempt,
                "finishtime": None,
            }
            if attempt == 1:
                fields["pause"] = step.get("pause") or ""
            durably(Subtask.update(**fields).where(Subtask.id == sub.id).execute)
            sub.starttime = started
        doing = "going on" if going_on else "retrying" if retry else "running"
        self.log.line(
            f"[{now()}] {self.label} ({step['kind']}) {step['name']}: "
            f"{doing} on {len(names)} node(s): " + ",".join(names)
        )
        if refused:
            return self._refused(targets, refused, kept)
        kept_rows = [self._row(h, "unknown", msg=hostresults.NOT_RUN_AGAIN) for h in kept]
        if not targets:  # only hosts of unknown outcome were left, and they are not run again
            self._save(kept_rows)
            self.unknown = kept
            self.failure = "outcome unknown on: " + ",".join(kept)
            return "failed"
        if not going_on:
            self._save(kept_rows)
        return self._roll(plan, targets, kept, done)

    # -- which hosts this attempt runs

    def _attempt(
        self, targets: "list[Host]", refused: list[str], retry: bool
    ) -> tuple[int, "list[Host]", list[str], list[str], dict[str, str]]:
        """(attempt, targets, refused, kept, done): ``done`` maps the hosts this attempt ran
        already (a rollout going on) to their status."""
        sub = self.sub
        if sub is None or not retry:
            return (sub.attempt if sub else 0) + 1, targets, refused, [], {}
        if rolling.rolls(self.step):
            rows = HostResult.select(HostResult.host, HostResult.status).where(
                *self._of(sub.attempt)
            )
            ran = {r.host: r.status for r in rows}
            mine, out, kept = self._retried(targets, refused, sub.attempt - 1)
            if any(h.name not in ran for h in mine):
                return sub.attempt, mine, out, kept, ran
        return sub.attempt + 1, *self._retried(targets, refused, sub.attempt), {}

    def _retried(
        self, targets: "list[Host]", refused: list[str], attempt: int
    ) -> tuple["list[Host]", list[str], list[str]]:
        """The targets and refused names a retry after ``attempt`` runs, and the hosts of
        unknown outcome it leaves alone."""
        if attempt < 1 or self.sub is None:
            return targets, refused, []
        rerun, kept = durably(
            hostresults.retry_hosts,
            self.task.uuid,
            self.step["uuid"],
            attempt,
            self.sub.retry_unknown,
        )
        if not (rerun or kept):  # with no result at all (the run broke early), all run again
            return targets, refused, []
        return [h for h in targets if h.name in rerun], [n for n in refused if n in rerun], kept

    def _of(self, attempt: int) -> tuple[Any, ...]:
        return (
            HostResult.taskuuid == self.task.uuid,
            HostResult.stepuuid == self.step["uuid"],
            HostResult.attempt == attempt,
        )

    # -- running the batches

    def _roll(
        self, plan: Resolved, targets: "list[Host]", kept: list[str], done: dict[str, str]
    ) -> str:
        step = self.step
        expression = str(step.get("rolling") or "")
        series = rolling.batches([h.name for h in targets], expression)
        by_name = {h.name: h for h in targets}
        statuses = {**done, **dict.fromkeys(kept, "unknown")}
        left = sum(1 for h in targets if h.name not in done)
        self.progress = hostlog.Progress(self.log.write, left)
        error = ""
        for number, batch in enumerate(series, start=1):
            hosts = [by_name[n] for n in batch if n not in done]
            if not hosts:
                continue
            if self.cancel.is_set():
                return "killed"
            where = number if expression else None
            if where:
                self.log.line(
                    f"[{now()}] {self.label} batch {number} of {len(series)}: "
                    f"{len(hosts)} node(s): {hostlog.names([h.name for h in hosts])}"
                )
            outcome = self._run_batch(plan, hosts, where)
            if outcome.status == "canceled":
                return "killed"
            statuses.update((n, r.status) for n, r in outcome.hosts.items())
            if outcome.status == "error":
                error = outcome.error
                self.log.line(f"ERROR: {error}")
            later = series[number:]
            if later and self._stop(statuses, len(targets) + len(kept), error, later, number):
                break
            if later and step.get("rolling_pause") and self.sub is not None:
                return self._pause(number, len(series))
        if expression and step.get("rolling_pause") and self.sub is not None:
            # the step's own pause (after it ends) shares the column with the rollout's
            own = Subtask.update(pause=step.get("pause") or "")
            durably(own.where(Subtask.id == self.sub.id).execute)
        return self._judge(plan, [h.name for h in targets] + kept, statuses, error)

    def _run_batch(self, plan: Resolved, hosts: "list[Host]", batch: int | None) -> "RunOutcome":
        compiled = self._compile(plan["make"], hosts)
        outcome = runner.execute(
            compiled,
            self.workdir,
            settings(),
            on_log=lambda text: None,  # the hosts are logged grouped when the run ends
            on_host_result=self._host_ended,
            on_output=self._live_output,
            should_cancel=self.cancel.is_set,
            forks=int(self.step.get("forks") or 0) or None,
        )
        rows = [
            self._row(n, r.status, r.rc, r.start, r.end, r.stdout, r.stderr or r.msg, batch=batch)
            for n, r in outcome.hosts.items()
        ]
        self.log.write(hostlog.grouped(outcome.hosts))
        self._save(rows)
        events.emit("step_finished", self.task, self.step, outcome)
        return outcome

    def _stop(
        self,
        statuses: dict[str, str],
        total: int,
        error: str,
        later: list[list[str]],
        number: int,
    ) -> bool:
        """Whether the rollout stops after batch ``number``; if so, record its unrun hosts."""
        failed = sum(1 for s in statuses.values() if s != "ok")
        most = str(self.step.get("max_fail") or "0")
        if not error and not rolling.too_many_failed(failed, total, most):
            return False
        why = error or f"{failed} of {total} node(s) failed, more than max_fail {most}"
        reason = f"not run: the rollout stopped after batch {number}: {why}"
        rows = []
        for offset, batch in enumerate(later, start=number + 1):
            for name in batch:
                statuses[name] = "skipped"
                rows.append(self._row(name, "skipped", msg=reason, batch=offset))
        self._save(rows)
        self.log.line(
            f"[{now()}] {self.label}: the rollout stopped after batch {number} of "
            f"{number + len(later)}: {why}; {len(rows)} node(s) not run"
        )
        return True

    def _pause(self, number: int, total: int) -> str:
        """Wait for ``control=next`` before batch ``number + 1``."""
        sub, uuid = self.sub, self.task.uuid
        assert sub is not None
        text = f"rolling: batch {number} of {total} done, next runs batch {number + 1}"
        durably(Subtask.update(pause=text).where(Subtask.id == sub.id).execute)
        park(uuid)
        self.log.line(f"[{now()}] {self.label} paused after batch {number} of {total}: {text}")
        if durably(Subtask.get_by_id, sub.id).pause == "":  # `next` came while we parked
            wake(uuid)
        return "paused"

    def _judge(self, plan: Resolved, order: list[str], statuses: dict[str, str], error: str) -> str:
        self.unknown = [h for h in order if statuses.get(h) == "unknown"]
        failed = [h for h in order if statuses.get(h) != "ok"]
        after = plan.get("after")
        if not failed and not error and after is not None:
            try:
                self.log.line(after())
            except InvalidInput as e:
                self.failure = e.info
                self.log.line(f"ERROR: {e.info}")
                return "failed"
        if failed or error:
            kind = self.step["kind"]
            self.failure = (
                f"{kind} failed on {len(failed)} of {len(order)} node(s): " + ",".join(failed)
                if failed
                else error
            )
            self.log.line("failed: " + ",".join(failed))
            return "failed"
        return "ok"

    # -- results and the log

    def _refused(self, targets: "list[Host]", refused: list[str], kept: list[str]) -> str:
        self.log.line("ERROR: the node not in project: " + ",".join(refused))
        rows = [self._row(n, "refused", msg="not a machine of this project") for n in refused]
        rows += [
            self._row(h.name, "skipped", msg="not run: other nodes of the step were refused")
            for h in targets
        ]
        rows += [self._row(h, "unknown", msg=hostresults.NOT_RUN_AGAIN) for h in kept]
        self._save(rows)
        self.failure = "node not in project: " + ",".join(refused)
        return "failed"

    def _save(self, rows: list[HostRow]) -> None:
        hostresults.save(self.task.uuid, self.step["uuid"], self.attempt, rows)

    def _row(self, host: str, status: str, *result: Any, **fields: Any) -> HostRow:
        return hostresults.row(
            self.task.uuid, self.step["uuid"], self.attempt, host, status, *result, **fields
        )

    def _live_output(self, host: str, text: str) -> None:
        """Log what a host prints while a long step runs, line by line, each with its name."""
        self.log.write("".join(f"{host}| {line}\n" for line in text.splitlines()))

    def _host_ended(self, r: "Result") -> None:
        """Count a host as it ends, so a long step on many hosts shows progress."""
        try:
            self.progress.host_ended(r)
        except Exception:  # never stop a run for its log: every host is logged at the end
            log.exception("task %s: logging host %s failed", self.task.uuid, r.host)

    def _resolve(self) -> Resolved:
        try:
            return stepplan.resolve(self.task, self.step, self.values, settings())
        except InvalidInput as e:
            raise StepFailed(e.info) from None

    @staticmethod
    def _compile(
        make: Callable[["list[Host]"], "Compiled"] | None, targets: "list[Host]"
    ) -> "Compiled":
        if make is None:
            raise StepFailed("the step has nothing to run on its nodes")
        try:
            return make(targets)
        except InvalidInput as e:
            raise StepFailed(e.info) from None
