"""TaskMonitor: a task's steps, hosts and log, with the buttons its state allows."""

import html
import threading
import time
from typing import Any

import ipywidgets as w

from api.client import DECISIONS, FINAL, ClientError, Task
from api.client.shapes import Step
from api.client.widgets.hostpager import HostPager, last_line
from api.client.widgets.look import COLOURS, error, seconds, show, since, status, table

# Keeps the newest line in view: a column-reverse box stays scrolled to its end as it grows.
LOG_BOX = (
    "height:14em;overflow:auto;display:flex;flex-direction:column-reverse;"
    "border:1px solid #ccc;background:#fafafa;padding:4px"
)
LOG_TEXT = (
    "margin:0;flex:none;overflow:visible;white-space:pre-wrap;overflow-wrap:anywhere;font-size:12px"
)
WHY_HOSTS = 10  # failed hosts named beside the decision buttons; the pager lists them all


class TaskMonitor(w.VBox):
    """A task's progress per step, its hosts (counts per status and one page of hosts, see
    :class:`HostPager`) and log tail, with only the buttons valid right now: Next (the task
    waits at a step's pause), Retry failed hosts / Ignore / Fail (a step waits for a decision;
    beside them, which hosts failed and why) and Kill (a task not ended)."""

    ACTIONS = {
        "next": ("Next", "success", "step-forward"),
        "running": ("Retry failed hosts", "warning", "redo"),
        "ignore": ("Ignore", "info", "forward"),
        "fail": ("Fail", "danger", "times"),
        "kill": ("Kill", "danger", "stop"),
    }

    def __init__(self, task: Task, log_lines: int = 200, pagesize: int = 50) -> None:
        self.task = task
        self.log_lines = log_lines
        self.title = w.HTML()
        self.progress = w.IntProgress(
            min=0, max=1, value=0, description="0/0 steps", style={"description_width": "initial"}
        )
        self.steps = w.HTML()
        self.hosts = HostPager(pagesize)
        self.why = w.HTML(layout=w.Layout(margin="0 0 0 8px"))
        self.log_view = w.HTML()
        self.message = w.HTML()
        self.buttons: dict[str, Any] = {}
        for action, (label, style, icon) in self.ACTIONS.items():
            button = w.Button(
                description=label,
                button_style=style,
                icon=icon,
                tooltip=label,
                layout=w.Layout(width="auto", min_width="6em", flex="0 0 auto"),
            )
            button.on_click(lambda _b, a=action: self.act(a))
            self.buttons[action] = button
        self._steps: list[Step] = []
        self._stamp: tuple[Any, ...] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        super().__init__(
            [
                self.title,
                self.progress,
                self.steps,
                self.hosts,
                w.HBox(
                    [*self.buttons.values(), self.why, self.message],
                    layout=w.Layout(flex_flow="row wrap", align_items="center"),
                ),
                self.log_view,
            ]
        )
        self.add_class("opsjob-monitor")
        self.refresh()

    # -- what the task allows --------------------------------------------------------------

    def waiting_step(self) -> Step | None:
        """Return the step the task waits at for a human (a decision, or its pause), or None."""
        if self.task.status != "waiting":
            return None
        for step in self._steps:
            if step["status"] == "decision":
                return step
            if step["pause"] and step["status"] in ("success", "ignore"):
                return step
        return None

    def valid_actions(self) -> list[str]:
        """Return the actions that apply to the task as last loaded: Next only once the task
        waits at the pause (the server would also take it earlier and drop the pause)."""
        if self.task.status in FINAL:
            return []
        step = self.waiting_step()
        if step is None:
            return ["kill"]
        return [*(DECISIONS if step["status"] == "decision" else ("next",)), "kill"]

    # -- drawing ---------------------------------------------------------------------------

    def _signature(self) -> tuple[Any, ...]:
        return (self.task.status, tuple(s["status"] for s in self._steps))

    def refresh(self) -> "TaskMonitor":
        """Reload the task, its steps, hosts and new log lines; show the valid buttons."""
        task = self.task.refresh()
        self._steps = task.steps if task.data.get("jobtype") == "jobs" else []
        self._draw_title(task)
        self._draw_progress(task)
        self._draw_steps()
        self._draw_hosts(task)
        task.tail()
        lines = task.text.splitlines()[-self.log_lines :]
        self.log_view.value = (
            f'<div class="opsjob-log" style="{LOG_BOX}"><pre style="{LOG_TEXT}">'
            f"{html.escape(chr(10).join(lines))}</pre></div>"
        )
        valid = self.valid_actions()
        for action, button in self.buttons.items():
            show(button, action in valid)
        self._draw_why()
        if self._stamp is not None and self._stamp != self._signature():
            self.message.value, self._stamp = "", None  # what it said is over
        return self

    def _draw_title(self, task: Task) -> None:
        data = task.data
        start, finish = data.get("starttimems"), data.get("finishtimems")
        took = (finish or time.time()) - start if start else None
        reason = f" · {html.escape(data['reason'] or '')}" if data.get("reason") else ""
        self.title.value = (
            f"<b>{html.escape(data.get('name') or '')}</b> · task {html.escape(task.uuid)}"
            f" · {status(task.status, 'init')} · runtime {seconds(took) or '-'}{reason}"
        )

    def _draw_progress(self, task: Task) -> None:
        total = len(self._steps) or 1
        finished = sum(s["status"] in ("success", "ignore", "fail") for s in self._steps)
        if not self._steps:
            finished = int(task.status in FINAL)
        if task.status == "success":
            finished = total
        self.progress.max = total
        self.progress.value = finished
        self.progress.description = f"{finished}/{total} steps"
        self.progress.bar_style = {"success": "success", "fail": "danger", "refuse": "danger"}.get(
            task.status or "", "info"
        )

    def _draw_steps(self) -> None:
        rows = []
        for i, s in enumerate(self._steps):
            took = s["runtime"] if s["status"] != "running" else since(s["starttime"])
            rows.append(
                (
                    str(i + 1),
                    html.escape(s["name"]),
                    status(s["status"]),
                    seconds(took),
                    html.escape(s["pause"] or ""),
                )
            )
        headers = ("#", "step", "status", "time", "pause")
        self.steps.value = table(headers, rows, "opsjob-steps") if rows else ""

    def _draw_hosts(self, task: Task) -> None:
        self.hosts.draw(task, {s["uuid"]: s["name"] for s in self._steps})

    def _draw_why(self) -> None:
        step = self.waiting_step()
        if step is None:
            self.why.value = ""
        elif step["status"] == "decision":
            parts = []
            for h in step["hosts"]:
                if h["status"] != "ok":
                    said = last_line(h["stderr"] or h["stdout"])
                    parts.append(
                        f"<b>{html.escape(h['host'])}</b> {html.escape(h['status'])}"
                        f" (rc={h['rc']})" + (f": {html.escape(said)}" if said else "")
                    )
            more = f"; and {len(parts) - WHY_HOSTS} more" if len(parts) > WHY_HOSTS else ""
            self.why.value = (
                f'<span class="opsjob-why" style="color:{COLOURS["fail"]}">'
                f"step <b>{html.escape(step['name'])}</b> failed on "
                f"{'; '.join(parts[:WHY_HOSTS]) or 'no host'}{more}</span>"
            )
        else:
            self.why.value = (
                f'<span class="opsjob-why">paused after <b>{html.escape(step["name"])}</b>: '
                f"{html.escape(step['pause'])}</span>"
            )

    # -- acting ----------------------------------------------------------------------------

    def act(self, action: str) -> "TaskMonitor":
        """Apply ``action`` (next, running, ignore, fail or kill) and refresh; an action the
        task does not allow now (as last loaded) is not sent."""
        self._stamp = None
        if action not in self.valid_actions():
            self.message.value = error(
                f"{self.ACTIONS[action][0]}: not now (task {self.task.status})"
            )
            self.refresh()
            self._stamp = self._signature()
            return self
        try:
            if action == "kill":
                self.message.value = html.escape(self.task.kill() or "")
            else:
                self.task.control(action)
                self.message.value = f"{html.escape(self.ACTIONS[action][0])}: sent"
        except ClientError as e:
            self.message.value = error(e.info)
        self.refresh()
        self._stamp = self._signature()
        return self

    def watch(self, timeout: float = 600, interval: float = 0.5) -> "TaskMonitor":
        """Refresh until the task ended or waits for a human; return self."""
        deadline = time.monotonic() + timeout
        while not self.refresh().task.stopped() and time.monotonic() < deadline:
            time.sleep(interval)
        return self

    def start(self, interval: float = 1.0) -> "TaskMonitor":
        """Keep refreshing in the background until the task ends (for a live notebook)."""
        if self._thread is not None and self._thread.is_alive():
            return self
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    if self.refresh().task.done:
                        return
                except ClientError as e:
                    self.message.value = error(e.info)

        self._thread = threading.Thread(target=loop, daemon=True, name=f"monitor-{self.task.uuid}")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the background refresh."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
