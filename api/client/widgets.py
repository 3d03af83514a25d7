"""Notebook widgets built on :mod:`api.client`: launch a job, watch and steer a task, chart
the history.

    JobLauncher(client)            pick a job, fill its variables, Run
    TaskMonitor(task).watch()      steps, hosts, log tail; Next/Retry/Ignore/Fail/Kill buttons
    AnalysisDashboard(client)      charts of the analysis routes and the version table

Every widget works headless too: ``refresh()`` reloads it and ``button.click()`` acts.
"""

import html
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import ipywidgets as w
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from api.client import DECISIONS, FINAL, Client, ClientError, Task

ERROR_STYLE = "color:#b00020"


def _error(message: object) -> str:
    return f'<span style="{ERROR_STYLE}">{html.escape(str(message))}</span>'


def _show(widget: Any, visible: bool) -> None:
    widget.layout.display = "" if visible else "none"


class JobLauncher(w.VBox):
    """Pick a job, fill a form of its variables (a dropdown where a variable has options, a
    comma or semicolon list), and run it. ``task`` is the last task started; ``on_start(task)``
    is called with it."""

    def __init__(
        self,
        client: Client,
        projectid: int | None = None,
        on_start: Callable[[Task], object] | None = None,
    ) -> None:
        self.client = client
        self.projectid = client.project_id(projectid)
        self.on_start = on_start
        self.task: Task | None = None
        self.fields: dict[str, Any] = {}
        jobs = client.jobs.list(self.projectid)
        options = [(r["name"], r["uuid"]) for _, r in jobs.iterrows()] if len(jobs) else []
        self.job = w.Dropdown(options=options, description="Job")
        self.form = w.VBox()
        self.run_button = w.Button(description="Run", button_style="primary", icon="play")
        self.message = w.HTML()
        self.job.observe(self._load, names="value")
        self.run_button.on_click(self._run)
        super().__init__([self.job, self.form, self.run_button, self.message])
        self._load()

    def _load(self, change: Any = None) -> None:
        self.fields = {}
        if self.job.value is None:
            self.form.children = ()
            return
        variables = self.client.variables(self.job.value, projectid=self.projectid)
        for _, v in variables.iterrows() if len(variables) else []:
            options = [o for o in re.split(r"[,;]", str(v["option"] or "")) if o]
            label = v["describe"] or v["name"]
            if options:
                value = v["value"] if v["value"] in options else options[0]
                field = w.Dropdown(options=options, value=value, description=v["name"])
            else:
                field = w.Text(value=v["value"] or "", description=v["name"], placeholder=label)
            field.tooltip = label
            self.fields[v["name"]] = field
        self.form.children = tuple(self.fields.values())

    def values(self) -> dict[str, Any]:
        """Return the variables as the form holds them."""
        return {name: field.value for name, field in self.fields.items()}

    def _run(self, button: Any = None) -> None:
        try:
            self.task = self.client.run(
                self.job.value, self.values(), wait=False, projectid=self.projectid
            )
        except ClientError as e:
            self.message.value = _error(e.info)
            return
        self.message.value = f"started task <b>{html.escape(self.task.uuid)}</b>"
        if self.on_start is not None:
            self.on_start(self.task)


class TaskMonitor(w.VBox):
    """A task's progress per step, per-host status and log tail, with the buttons that are
    valid right now: Next (a paused step), Retry failed hosts / Ignore / Fail (a step waiting
    for a decision) and Kill (a task not ended)."""

    ACTIONS = {
        "next": ("Next", "success", "step-forward"),
        "running": ("Retry failed hosts", "warning", "redo"),
        "ignore": ("Ignore", "info", "forward"),
        "fail": ("Fail", "danger", "times"),
        "kill": ("Kill", "danger", "stop"),
    }

    def __init__(self, task: Task, log_lines: int = 40) -> None:
        self.task = task
        self.log_lines = log_lines
        self.title = w.HTML()
        self.progress = w.IntProgress(min=0, max=1, value=0, description="steps")
        self.steps = w.HTML()
        self.hosts = w.HTML()
        self.log_view = w.Textarea(disabled=True, layout=w.Layout(width="100%", height="14em"))
        self.message = w.HTML()
        self.buttons: dict[str, Any] = {}
        for action, (label, style, icon) in self.ACTIONS.items():
            button = w.Button(description=label, button_style=style, icon=icon)
            button.on_click(lambda _b, a=action: self.act(a))
            self.buttons[action] = button
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        super().__init__(
            [
                self.title,
                self.progress,
                self.steps,
                self.hosts,
                w.HBox(list(self.buttons.values())),
                self.message,
                self.log_view,
            ]
        )
        self.refresh()

    def valid_actions(self) -> list[str]:
        """Return the actions that apply to the task as last loaded."""
        if self.task.status in FINAL:
            return []
        valid = ["kill"]
        for step in self._steps:
            if step["status"] == "decision":
                valid += list(DECISIONS)
            elif step["pause"] and step["status"] is not None:
                valid.append("next")
        return valid

    def refresh(self) -> "TaskMonitor":
        """Reload the task, its steps, hosts and new log lines; show the valid buttons."""
        task = self.task.refresh()
        self._steps = task.steps if task.data.get("jobtype") == "jobs" else []
        self.title.value = (
            f"<b>{html.escape(task.data.get('name') or '')}</b> · task {html.escape(task.uuid)}"
            f" · <b>{html.escape(task.status or '')}</b>"
            + (f" · {html.escape(task.data['reason'] or '')}" if task.data.get("reason") else "")
        )
        total = max(len(self._steps), 1)
        finished = sum(s["status"] in ("success", "ignore", "fail") for s in self._steps)
        self.progress.max = total
        self.progress.value = total if task.status == "success" else finished
        self.progress.bar_style = {"success": "success", "fail": "danger"}.get(
            task.status or "", ""
        )
        rows = "".join(
            f"<tr><td>{i + 1}</td><td>{html.escape(s['name'])}</td>"
            f"<td>{html.escape(s['status'] or 'not yet run')}</td>"
            f"<td>{html.escape(s['pause'] or '')}</td></tr>"
            for i, s in enumerate(self._steps)
        )
        self.steps.value = (
            f"<table><tr><th>#</th><th>step</th><th>status</th><th>pause</th></tr>{rows}</table>"
            if rows
            else ""
        )
        hosts = task.hosts
        if len(hosts):
            latest = hosts.groupby(["step", "host"], sort=False).tail(1)
            shown = latest[["step", "host", "attempt", "status", "rc"]]
            self.hosts.value = shown.to_html(index=False, escape=True)
        else:
            self.hosts.value = ""
        task.tail()
        self.log_view.value = "\n".join(task.text.splitlines()[-self.log_lines :])
        valid = self.valid_actions()
        for action, button in self.buttons.items():
            _show(button, action in valid)
        return self

    def act(self, action: str) -> "TaskMonitor":
        """Apply ``action`` (next, running, ignore, fail or kill) and refresh."""
        try:
            if action == "kill":
                self.message.value = html.escape(self.task.kill() or "")
            else:
                self.task.control(action)
                self.message.value = f"{html.escape(action)}: sent"
        except ClientError as e:
            self.message.value = _error(e.info)
        return self.refresh()

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
                    self.message.value = _error(e.info)

        self._thread = threading.Thread(target=loop, daemon=True, name=f"monitor-{self.task.uuid}")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the background refresh."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


class AnalysisDashboard(w.VBox):
    """Charts of a project's task history (per day, per hour, runtime, per project) and its
    versions (share per value, node-by-name table). ``frames`` and ``figures`` hold what is
    shown, for use elsewhere."""

    CHARTS = ("date", "hour", "runtime", "statistics", "versions", "table")
    TITLES = (
        "Tasks per day",
        "Tasks per hour",
        "Runtime",
        "Per project",
        "Versions",
        "Version table",
    )

    def __init__(self, client: Client, projectid: int | None = None) -> None:
        self.client = client
        self.projectid = client.project_id(projectid)
        self.frames: dict[str, pd.DataFrame] = {}
        self.figures: dict[str, Any] = {}
        self.outputs = {name: w.Output() for name in self.CHARTS}
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.refresh_button.on_click(lambda _b: self.refresh())
        self.message = w.HTML()
        self.tabs = w.Tab(children=[self.outputs[n] for n in self.CHARTS])
        for i, title in enumerate(self.TITLES):
            self.tabs.set_title(i, title)
        super().__init__([w.HBox([self.refresh_button, self.message]), self.tabs])
        self.refresh()

    def refresh(self) -> "AnalysisDashboard":
        """Reload every frame and redraw every chart."""
        c, pid = self.client, self.projectid
        try:
            self.frames = {
                "date": c.analysis("date", pid),
                "hour": c.analysis("hour", pid),
                "runtime": c.analysis("runtime", pid),
                "statistics": c.analysis("statistics", pid),
                "versions": c.vv_versions(pid),
                "table": c.vv_table(pid),
            }
        except ClientError as e:
            self.message.value = _error(e.info)
            return self
        self.message.value = ""
        for name in self.CHARTS:
            out = self.outputs[name]
            out.clear_output(wait=True)
            with out:
                if name == "table":
                    display(self.frames["table"])
                    continue
                fig = self._chart(name, self.frames[name])
                plt.close(fig)
                self.figures[name] = fig
                display(fig)
        return self

    @staticmethod
    def _chart(name: str, frame: pd.DataFrame) -> Any:
        fig, ax = plt.subplots(figsize=(9, 3.2))
        if name == "date":
            ax.bar(frame["date"], frame["total"], color="#9ab", label="total")
            ax.bar(frame["date"], frame["success"], color="#2a7", label="success")
            ax.tick_params(axis="x", labelrotation=70, labelsize=7)
            ax.legend()
        elif name == "hour":
            ax.bar(frame["hour"], frame["count"], color="#47a")
            ax.set_xlabel("hour of day")
        elif name == "runtime":
            ax.bar(frame["bucket"], frame["percent"], color="#a74")
            ax.set_xlabel("minutes")
            ax.set_ylabel("% of tasks")
        elif name == "statistics":
            ax.bar(frame["id"].astype(str), frame["count"], color="#666")
            ax.set_xlabel("project")
        else:  # versions: one bar group per name
            labels = [f"{n}\n{v}" for n, v in zip(frame["name"], frame["value"], strict=True)]
            ax.bar(labels, frame["percent"], color="#74a")
            ax.set_ylabel("% of nodes")
        ax.set_title(name)
        fig.tight_layout()
        return fig
