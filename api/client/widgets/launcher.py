"""JobLauncher: pick a job, fill its variables, Run, and watch the task it started."""

import html
import re
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from api.client import Client, ClientError, Task
from api.client.widgets.look import error
from api.client.widgets.monitor import TaskMonitor


class JobLauncher(w.VBox):
    """Pick a job, fill a form of its variables (a dropdown where a variable has options, a
    comma or semicolon list), and run it; the task's :class:`TaskMonitor` then shows below
    the form and follows the task. ``task`` is the last task started, ``monitor`` its monitor;
    ``on_start(task)`` is called with it."""

    def __init__(
        self,
        client: Client,
        projectid: int | None = None,
        on_start: Callable[[Task], object] | None = None,
        follow: bool = True,
    ) -> None:
        self.client = client
        self.projectid = client.project_id(projectid)
        self.on_start = on_start
        self.follow = follow
        self.task: Task | None = None
        self.monitor: TaskMonitor | None = None
        self.fields: dict[str, Any] = {}
        jobs = client.jobs.list(self.projectid)
        options = [(r["name"], r["uuid"]) for _, r in jobs.iterrows()] if len(jobs) else []
        self.job = w.Dropdown(options=options, description="Job")
        self.form = w.VBox()
        self.run_button = w.Button(description="Run", button_style="primary", icon="play")
        self.message = w.HTML()
        self.watching = w.VBox()
        self.job.observe(self._load, names="value")
        self.run_button.on_click(self._run)
        super().__init__(
            [self.job, self.form, w.HBox([self.run_button, self.message]), self.watching]
        )
        self.add_class("opsjob-launcher")
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
            self.message.value = error(e.info)
            return
        if self.monitor is not None:
            self.monitor.stop()
        self.message.value = (
            f"started <b>{html.escape(self.job.label or '')}</b> as task "
            f"<b>{html.escape(self.task.uuid)}</b>"
        )
        self.monitor = TaskMonitor(self.task)
        self.watching.children = (self.monitor,)
        if self.follow:
            self.monitor.start()
        if self.on_start is not None:
            self.on_start(self.task)
