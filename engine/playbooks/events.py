"""Turn the events of a playbook step's run into per-host results and a compact per-host log.

A host's result is final at the play recap (``playbook_on_stats``): ``unreachable`` if any
task could not reach it, ``failed`` if a task failed (the failed task's name and message are
kept), else ``ok``. Its stdout is one line per task (``ok``, ``changed``, ``skipped``,
``failed``...), the task's diff when the step asks for one, and the recap line, never the raw
event JSON. What the playbook did to hosts outside the step (``add_host``) goes to the log,
and a connection outside the step that the run's broker refused fails every host.
"""

import difflib
import json
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from engine.ansible.results import HostResult, _epoch, excerpt

if TYPE_CHECKING:
    from engine.ansible.playbook import Compiled

MAX_LINES = 2000  # task lines kept per host
MAX_DIFF_LINES = 200  # lines of one task's diff kept
COUNTS = ("ok", "changed", "unreachable", "failed", "skipped", "rescued", "ignored")
STATS_KEYS = {"dark": "unreachable", "failures": "failed"}


class PlaybookCollector:
    """The playbook counterpart of the runner's collector (same interface)."""

    def __init__(
        self,
        compiled: "Compiled",
        on_host_result: Callable[[HostResult], object] | None,
        on_log: Callable[[str], object] | None,
    ) -> None:
        self.hosts = {name: HostResult(name) for name in compiled.targets}
        self.source: HostResult | None = None
        self.started_hosts: set[str] = set()
        self.on_host_result = on_host_result
        self.on_log = on_log
        self.lines: dict[str, list[str]] = {name: [] for name in compiled.targets}
        self.failure: dict[str, tuple[str, ...]] = {}  # host -> (task, message, status)
        self.recap = False
        # lines about hosts the playbook added that are not the step's
        self.strangers: list[str] = []
        # connections to outside the step that the run's broker refused (it appends to it)
        self.refused: list[str] = []

    def handle(self, event: Mapping[str, Any]) -> None:
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        if kind == "playbook_on_stats":
            self._stats(data, event)
            return
        host = data.get("host")
        if not kind.startswith("runner_on_"):
            return
        if host not in self.hosts:
            self._stranger(kind, host, data)
            return
        result = self.hosts[host]
        if kind == "runner_on_start":
            self.started_hosts.add(host)
            result.started(event)
            return
        res = data.get("res") or {}
        task = str(data.get("task") or "")
        if kind == "runner_on_ok":
            word = "changed" if res.get("changed") else "ok"
        elif kind == "runner_on_skipped":
            word = "skipped"
        elif kind == "runner_on_unreachable":
            word = "unreachable"
            self.failure.setdefault(host, (task, _message(res), "unreachable"))
        elif kind == "runner_on_failed":
            word = "ignored" if data.get("ignore_errors") else "failed"
            if word == "failed":
                self.failure[host] = (task, _message(res), "failed")
        else:
            return
        line = f"{word:<11} {task}"
        if word in ("failed", "unreachable", "ignored"):
            line += f": {excerpt(_message(res), 500)}"
        lines = self.lines[host]
        for text in [line, *diff_lines(res)]:
            if len(lines) < MAX_LINES:
                lines.append(text)

    def _stranger(self, kind: str, host: Any, data: Any) -> None:
        if kind in ("runner_on_start", "runner_on_skipped") or len(self.strangers) >= MAX_LINES:
            return
        word = kind.removeprefix("runner_on_")
        res = data.get("res") or {}
        line = f"host {host} (not a host of this step): {word} {data.get('task') or ''}"
        if word in ("failed", "unreachable"):
            line += f": {excerpt(_message(res), 300)}"
        self.strangers.append(line)

    def _stats(self, data, event):
        """Settle every host at the recap, and hand each result on."""
        self.recap = True
        if self.strangers and self.on_log:
            self.on_log("\n".join(self.strangers) + "\n")
        end = _epoch(event.get("created"))
        for name, result in self.hosts.items():
            counts = {}
            for key in ("ok", "changed", "dark", "failures", "skipped", "rescued", "ignored"):
                counts[STATS_KEYS.get(key, key)] = int((data.get(key) or {}).get(name, 0))
            recap = " ".join(f"{k}={counts[k]}" for k in COUNTS)
            failure = self.failure.get(name)
            if counts["unreachable"]:
                status, rc = "unreachable", 4
            elif counts["failed"] or self.refused:
                status, rc = "failed", 2
            else:
                status, rc = "ok", 0
            outside = ""
            if self.refused:
                shown = excerpt(", ".join(dict.fromkeys(self.refused)), 500)
                outside = f"opsjob refused connection(s) outside this step: {shown}"
                failure = failure or ("", outside)
            if status != "ok" and failure:
                task = f"task {failure[0]!r}: " if failure[0] else ""
                result.msg = excerpt(f"{task}{failure[1]}", 4096)
            elif status != "ok":
                result.msg = f"{status} (see the task lines)"
            body = self.lines[name] or ["(no task ran on this host)"]
            if outside:
                body = [*body, outside]
                if failure[1] != outside:
                    result.msg = excerpt(f"{result.msg} ({outside})", 4096)
            text = "\n".join([*body, f"recap: {recap}"]) + "\n"
            result.status, result.rc = status, rc
            result.end = end
            result.start = result.start or end
            result.output = text
            result.stdout = excerpt(text)
            if status != "ok":
                result.stderr = result.msg
            if self.on_host_result:
                self.on_host_result(result)

    def any_result(self) -> bool:
        """Whether the play recap came (else ansible-playbook itself failed)."""
        return self.recap

    def settle(self, pending: str, error: str = "") -> None:
        """Give every host without a final result ``pending``, and say why."""
        why = {
            "canceled": "canceled before it finished",
            "timeout": "the run took too long",
            "unknown": f"outcome unknown, the playbook may have run: {error}",
        }.get(pending, error or "no result from Ansible")
        now = time.time()
        for name, result in self.hosts.items():
            if result.done:
                continue
            result.status, result.msg = pending, why
            result.stdout = excerpt("\n".join(self.lines[name]) + "\n") if self.lines[name] else ""
            result.end = result.end or now


def diff_lines(res: Any) -> list[str]:
    """Ansible's diff of one task result (``--diff``), as unified diff lines, indented."""
    diffs = res.get("diff")
    if isinstance(diffs, dict):
        diffs = [diffs]
    out: list[str] = []
    text: Iterable[str]
    for d in diffs if isinstance(diffs, list) else []:
        if not isinstance(d, dict):
            continue
        if d.get("prepared"):
            text = str(d["prepared"]).splitlines()
        elif "before" in d or "after" in d:
            text = difflib.unified_diff(
                _diff_side(d.get("before")),
                _diff_side(d.get("after")),
                str(d.get("before_header") or "before"),
                str(d.get("after_header") or "after"),
                lineterm="",
            )
        else:
            continue
        out.extend("    " + line.rstrip("\n") for line in text)
    if len(out) > MAX_DIFF_LINES:
        out = out[:MAX_DIFF_LINES] + [f"    ... ({len(out) - MAX_DIFF_LINES} more diff lines)"]
    return out


def _diff_side(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, str):
        value = json.dumps(value, indent=2, sort_keys=True, default=str) + "\n"
    return value.splitlines()


def _message(res: Any) -> str:
    msg = res.get("msg")
    if not msg and isinstance(res.get("stderr"), str):
        msg = res["stderr"].strip()
    # A module that never ran (become failed, no interpreter) says why only in what the node
    # printed: "sudo: not found" beats Ansible's "Module result deserialization failed".
    said = next((res[k] for k in ("module_stderr", "module_stdout") if _text(res.get(k))), "")
    if said and said.strip() not in str(msg or ""):
        msg = f"{msg or 'failed'}: {said.strip()[-500:]}"
    return str(msg or "").replace("\n", " ").strip()[:2000]


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())
