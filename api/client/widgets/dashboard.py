"""AnalysisDashboard: charts of a project's task history and the versions its nodes report."""

import io
from typing import Any

import ipywidgets as w
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import SVG, display
from matplotlib.ticker import MaxNLocator

from api.client import Client, ClientError
from api.client.widgets.look import COLOURS, error

HOURS = range(24)


def tasks_per_hour(frame: pd.DataFrame) -> pd.DataFrame:
    """Return ``frame`` (hour, count) with every hour of the day, 0 where no task started."""
    counts = dict(zip(frame["hour"].astype(int), frame["count"].astype(int), strict=True))
    return pd.DataFrame({"hour": list(HOURS), "count": [counts.get(h, 0) for h in HOURS]})


def chart(name: str, frame: pd.DataFrame) -> Any:
    """Draw chart ``name`` (date, hour, runtime, statistics or versions) of ``frame``."""
    fig, ax = plt.subplots(figsize=(9, 3.2))
    counts = True
    if name == "date":
        failed = frame["total"] - frame["success"]
        ax.bar(frame["date"], frame["success"], color=COLOURS["success"], label="succeeded")
        ax.bar(
            frame["date"],
            failed,
            bottom=frame["success"],
            color=COLOURS["fail"],
            label="not successful",
        )
        ax.tick_params(axis="x", labelrotation=70, labelsize=7)
        ax.set_ylabel("tasks")
        ax.legend()
        ax.set_title("Tasks per day (last 30 days)")
    elif name == "hour":
        hours = tasks_per_hour(frame)
        ax.bar(hours["hour"], hours["count"], color=COLOURS["running"])
        ax.set_xticks(list(HOURS))
        ax.set_xlim(-0.6, 23.6)
        ax.set_xlabel("hour of day")
        ax.set_ylabel("tasks")
        ax.set_title("Tasks started per hour of day")
    elif name == "runtime":
        ax.bar(frame["bucket"], frame["percent"], color=COLOURS["ignore"])
        ax.set_xlabel("minutes")
        ax.set_ylabel("% of tasks")
        ax.set_title("Runtime of tasks (last 30 days)")
        counts = False
    elif name == "statistics":
        ax.bar(frame["id"].astype(str), frame["count"], color=COLOURS["running"])
        ax.set_xlabel("project")
        ax.set_ylabel("tasks")
        ax.set_title("Tasks per project")
    else:
        labels = [f"{n}\n{v}" for n, v in zip(frame["name"], frame["value"], strict=True)]
        ax.bar(labels, frame["percent"], color="#74a")
        ax.set_ylabel("% of nodes")
        ax.set_title("Share of nodes per reported version")
        counts = False
    if counts:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(bottom=0, top=max(ax.get_ylim()[1], 1))
    fig.tight_layout()
    return fig


def svg(fig: Any) -> SVG:
    """Return ``fig`` as SVG with its text kept as text (sharp, and readable by a test)."""
    buffer = io.StringIO()
    with plt.rc_context({"svg.fonttype": "none"}):
        fig.savefig(buffer, format="svg")
    return SVG(buffer.getvalue())


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
        self.add_class("opsjob-dashboard")
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
            self.message.value = error(e.info)
            return self
        self.message.value = ""
        for name in self.CHARTS:
            out = self.outputs[name]
            out.clear_output(wait=True)
            with out:
                if name == "table":
                    display(self.frames["table"])
                    continue
                fig = chart(name, self.frames[name])
                plt.close(fig)
                self.figures[name] = fig
                display(svg(fig))
        return self
