"""Turn the events of a playbook step's run into per-host results and a compact per-host log.

A host's result is final at the play recap (``playbook_on_stats``): ``unreachable`` if any
task could not reach it, ``failed`` if a task failed (the failed task's name and message are
kept), else ``ok``. Its stdout is one line per task (``ok``, ``changed``, ``skipped``,
``failed``...) and the recap line, never the raw event JSON.
"""

import time

from engine.ansible.results import HostResult, _epoch, excerpt

MAX_LINES = 2000  # task lines kept per host
COUNTS = ("ok", "changed", "unreachable", "failed", "skipped", "rescued", "ignored")
STATS_KEYS = {"dark": "unreachable", "failures": "failed"}


class PlaybookCollector:
    """The playbook counterpart of the runner's collector (same interface)."""

    def __init__(self, compiled, on_host_result, on_log):
        self.hosts = {name: HostResult(name) for name in compiled.targets}
        self.source = None
        self.started_hosts = set()
        self.on_host_result = on_host_result
        self.on_log = on_log
        self.lines = {name: [] for name in compiled.targets}
        self.failure = {}  # host -> (task, message, status)
        self.recap = False

    def handle(self, event):
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        if kind == "playbook_on_stats":
            self._stats(data, event)
            return
        host = data.get("host")
        if not kind.startswith("runner_on_") or host not in self.hosts:
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
        if len(self.lines[host]) < MAX_LINES:
            self.lines[host].append(line)

    def _stats(self, data, event):
        """Settle every host at the recap, and hand each result on."""
        self.recap = True
        end = _epoch(event.get("created"))
        for name, result in self.hosts.items():
            counts = {}
            for key in ("ok", "changed", "dark", "failures", "skipped", "rescued", "ignored"):
                counts[STATS_KEYS.get(key, key)] = int((data.get(key) or {}).get(name, 0))
            recap = " ".join(f"{k}={counts[k]}" for k in COUNTS)
            failure = self.failure.get(name)
            if counts["unreachable"]:
                status, rc = "unreachable", 4
            elif counts["failed"]:
                status, rc = "failed", 2
            else:
                status, rc = "ok", 0
            if status != "ok" and failure:
                result.msg = excerpt(f"task {failure[0]!r}: {failure[1]}", 4096)
            elif status != "ok":
                result.msg = f"{status} (see the task lines)"
            body = self.lines[name] or ["(no task ran on this host)"]
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

    def any_result(self):
        """Whether the play recap came (else ansible-playbook itself failed)."""
        return self.recap

    def settle(self, pending, error=""):
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


def _message(res):
    msg = res.get("msg")
    if not msg and isinstance(res.get("stderr"), str):
        msg = res["stderr"].strip()
    return str(msg or "").replace("\n", " ").strip()[:2000]
