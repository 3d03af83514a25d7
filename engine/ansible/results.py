"""Per-host results of a run: what each host did, and the collector that turns
ansible-runner's events into them and into log chunks (used by :mod:`engine.ansible.runner`)."""

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.ansible import playbook

EXCERPT = 64 * 1024  # characters of stdout/stderr kept in a result excerpt

FINAL = ("ok", "failed", "unreachable", "timeout", "canceled", "unknown")


@dataclass
class HostResult:
    """What happened on one host."""

    host: str
    status: str = "pending"  # ok | failed | unreachable | timeout | canceled | unknown
    rc: int | None = None
    start: float | None = None  # epoch seconds
    end: float | None = None
    stdout: str = ""  # bounded excerpt
    stderr: str = ""  # bounded excerpt
    msg: str = ""  # Ansible's or opsjob's explanation when not ok
    output: str = ""  # the full stdout (for version capture)

    @property
    def done(self) -> bool:
        """Whether the host has its final status."""
        return self.status in FINAL

    def started(self, event: Mapping[str, Any]) -> None:
        """Note a task's start on the host (a ``runner_on_start`` event): the first one is the
        host's start time."""
        if self.start is None:
            self.start = _epoch(event.get("created"))


@dataclass
class RunOutcome:
    """The result of one step run."""

    status: str  # ok | failed | canceled | error
    hosts: dict[str, HostResult]  # target name -> result, in step order
    source: HostResult | None = None
    error: str = ""  # why, for status error
    started: float = 0.0
    ended: float = 0.0
    cleanup_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether every target host succeeded."""
        return self.status == "ok"

    @property
    def failed_hosts(self) -> list[str]:
        """Target hosts that did not succeed, in step order."""
        return [name for name, r in self.hosts.items() if r.status != "ok"]

    @property
    def unknown_hosts(self) -> list[str]:
        """Target hosts whose outcome is unknown: they may have run the step."""
        return [name for name, r in self.hosts.items() if r.status == "unknown"]


def excerpt(text: str, limit: int = EXCERPT) -> str:
    """Keep the head and the tail of ``text`` within ``limit`` characters."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[... {len(text) - 2 * half} characters omitted ...]\n{text[-half:]}"


def _epoch(stamp: Any) -> float:
    try:
        return datetime.fromisoformat(stamp).timestamp()
    except (TypeError, ValueError):
        return time.time()


# ---------------------------------------------------------------------------------------------
# Events -> results


class _Collector:
    """Turns runner events into per-host results and log chunks."""

    def __init__(
        self,
        compiled: playbook.Compiled,
        on_host_result: Callable[[HostResult], object] | None,
        on_log: Callable[[str], object] | None,
    ) -> None:
        self.compiled = compiled
        self.result_task = playbook.RESULT_TASK[compiled.kind]
        self.hosts = {name: HostResult(name) for name in compiled.targets}
        self.source = HostResult(compiled.source) if compiled.source else None
        self.started_hosts: set[str] = set()
        self.running: set[str] = set()  # target hosts started and not ended yet
        self.on_host_result = on_host_result
        self.on_log = on_log

    def handle(self, event: Mapping[str, Any]) -> None:
        self._track(event)
        text = event.get("stdout")
        if text and self.on_log:
            self.on_log(text.replace("\r\n", "\n") + "\n")

    def _track(self, event: Mapping[str, Any]) -> None:
        data = event.get("event_data") or {}
        kind = event.get("event", "")
        host = data.get("host")
        if not host or not kind.startswith("runner_on_"):
            return
        play = data.get("play")
        if play == playbook.SOURCE_PLAY:
            result = self.source
        elif play == playbook.TARGET_PLAY:
            result = self.hosts.get(host)
        else:
            result = None
        if result is None or result.done:
            return
        if kind == "runner_on_start":
            self.started_hosts.add(host)
            if result is not self.source:
                self.running.add(host)
            result.started(event)
            return
        res = data.get("res") or {}
        if kind == "runner_on_ok":
            if data.get("task") != (
                self.result_task if result is not self.source else playbook.SOURCE_RESULT_TASK
            ):
                return
            self._finish(result, "ok", res, event)
        elif kind == "runner_on_unreachable":
            self._finish(result, "unreachable", res, event)
        elif kind == "runner_on_failed" and not data.get("ignore_errors"):
            self._finish(result, "timeout" if _timed_out(res) else "failed", res, event)

    def _finish(self, result: HostResult, status: str, res: Any, event: Mapping[str, Any]) -> None:
        out = res.get("stdout") if isinstance(res.get("stdout"), str) else ""
        err = res.get("stderr") if isinstance(res.get("stderr"), str) else ""
        result.status = status
        self.running.discard(result.host)
        result.rc = res.get("rc") if isinstance(res.get("rc"), int) else None
        result.end = _epoch(event.get("created"))
        if result.start is None:
            result.start = result.end
        result.output = out
        result.stdout = excerpt(out)
        result.stderr = excerpt(err)
        if status != "ok":
            result.msg = excerpt(str(res.get("msg") or ""), 4096)
        if result is not self.source and self.on_host_result:
            self.on_host_result(result)

    def any_result(self) -> bool:
        """Whether Ansible reported on any host at all (else the playbook itself failed)."""
        return any(r.done for r in self.hosts.values()) or bool(self.source and self.source.done)

    def settle(self, pending: str, error: str = "") -> None:
        """Give every host without a final result the status ``pending``, and say why."""
        now = time.time()
        src = self.source
        why = {
            "canceled": "canceled before it finished",
            "timeout": "the run took too long",
            "unknown": f"outcome unknown, the step may have run: {error}",
        }.get(pending, error or "no result from Ansible")
        for result in self.hosts.values():
            if result.done:
                continue
            if pending == "failed" and src is not None and src.done and src.status != "ok":
                reason = excerpt((src.stderr.strip() or src.msg).strip(), 2000)
                result.status, result.msg = "failed", f"source {src.host} {src.status}: {reason}"
            else:
                result.status, result.msg = pending, why
            result.end = result.end or now
        if src is not None and not src.done:
            src.status, src.msg = pending, why


def _timed_out(res: Any) -> bool:
    if res.get("timedout"):
        return True
    stderr = res.get("stderr") if isinstance(res.get("stderr"), str) else ""
    return res.get("rc") in (124, 137) and "timeout: sending signal" in stderr
