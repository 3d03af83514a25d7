"""HostPager: a task's host results as counts per status and one page of hosts, with a status
filter and page buttons, so a step on a thousand hosts draws a page, not a thousand rows."""

import html
from collections.abc import Mapping
from typing import Any

import ipywidgets as w
import pandas as pd

from api.client.task import HostPage, Task
from api.client.widgets.look import COLOURS, seconds, show, status, table

OK_FIRST = ("ok", "success")  # a host's success is "ok"; everything else is read first


def last_line(text: str | None, limit: int = 160) -> str:
    """Return the last line of ``text`` that is not blank, cut at ``limit``."""
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return lines[-1][:limit] if lines else ""


def _colour(state: str) -> str:
    return COLOURS.get("success" if state == "ok" else state, "#777")


def _order(counts: Mapping[str, int]) -> list[str]:
    """Statuses that did not succeed first, larger before smaller, then ``ok``."""
    return sorted(counts, key=lambda s: (s in OK_FIRST, -counts[s], s))


class HostPager(w.VBox):
    """Counts per status (``counts``), a status filter (``filter``), one page of hosts
    (``table``) and Previous/Next buttons; ``draw(task, names)`` reloads the page it shows."""

    def __init__(self, pagesize: int = 50) -> None:
        self.pagesize = pagesize
        self.page = 1
        self.counts = w.HTML()
        self.filter = w.Dropdown(
            options=[("all", "")], value="", description="hosts", layout=w.Layout(width="16em")
        )
        self.previous = w.Button(description="Previous", icon="chevron-left")
        self.next = w.Button(description="Next page", icon="chevron-right")
        for button in (self.previous, self.next):
            button.layout = w.Layout(width="auto")
        self.where = w.HTML()
        self.table = w.HTML()
        self.shown: HostPage | None = None
        self._task: Task | None = None
        self._names: Mapping[str, str] = {}
        self._quiet = False
        self.filter.observe(self._filtered, names="value")
        self.previous.on_click(lambda _b: self.turn(-1))
        self.next.on_click(lambda _b: self.turn(1))
        super().__init__(
            [
                self.counts,
                w.HBox(
                    [self.filter, self.previous, self.next, self.where],
                    layout=w.Layout(align_items="center"),
                ),
                self.table,
            ]
        )
        self.add_class("opsjob-host-pager")

    def draw(self, task: Task, names: Mapping[str, str] | None = None) -> HostPage:
        """Load and draw the current page of ``task``'s hosts (``names``: step uuid -> name)."""
        self._task, self._names = task, names or {}
        wanted = self.filter.value or None
        shown = task.host_page(status=wanted, page=self.page, pagesize=self.pagesize)
        if self.page > shown.pages:  # fewer rows than when the page was chosen
            self.page = shown.pages
            shown = task.host_page(status=wanted, page=self.page, pagesize=self.pagesize)
        self.shown = shown
        self._draw_counts(shown)
        self._draw_filter(shown)
        self._draw_rows(task, shown)
        return shown

    def turn(self, step: int) -> None:
        """Show the page ``step`` pages on (-1: the one before)."""
        if self.shown is None or self._task is None:
            return
        self.page = min(max(1, self.page + step), self.shown.pages)
        self.draw(self._task, self._names)

    def _filtered(self, _change: Any) -> None:
        if not self._quiet and self._task is not None:
            self.page = 1
            self.draw(self._task, self._names)

    def _draw_counts(self, shown: HostPage) -> None:
        total = sum(shown.counts.values())
        parts = [
            f'<span class="opsjob-count" data-status="{html.escape(s)}" '
            f'style="color:{_colour(s)};font-weight:600">{shown.counts[s]} {html.escape(s)}</span>'
            for s in _order(shown.counts)
        ]
        self.counts.value = (
            f'<div class="opsjob-counts">{total} host result(s): {" · ".join(parts)}</div>'
            if total
            else ""
        )

    def _draw_filter(self, shown: HostPage) -> None:
        counts = dict(shown.counts)
        if shown.status and shown.status not in counts:
            counts[shown.status] = 0  # keep the chosen filter while it selects nothing
        options = [(f"all ({sum(shown.counts.values())})", "")]
        options += [(f"{s} ({counts[s]})", s) for s in _order(counts)]
        self._quiet = True
        try:
            self.filter.options = options
            self.filter.value = shown.status or ""
        finally:
            self._quiet = False
        many = shown.pages > 1
        for button in (self.previous, self.next):
            show(button, many)
        self.previous.disabled = shown.page <= 1
        self.next.disabled = shown.page >= shown.pages
        first = (shown.page - 1) * shown.pagesize + 1
        last = min(shown.total, shown.page * shown.pagesize)
        self.where.value = (
            f'<span class="opsjob-where">hosts {first}-{last} of {shown.total}'
            f" · page {shown.page} of {shown.pages}</span>"
            if shown.total
            else ""
        )
        show(self, bool(shown.counts))

    def _draw_rows(self, task: Task, shown: HostPage) -> None:
        rows: list[tuple[str, ...]] = []
        for _, r in shown.rows.iterrows():
            start, finish = r["starttime"], r["finishtime"]
            took = finish - start if pd.notna(finish) and pd.notna(start) else None
            said = last_line(r["stdout"]) if r["status"] == "ok" else last_line(r["stderr"])
            rows.append(
                (
                    html.escape(self._names.get(r["step"]) or task.data.get("name") or r["step"]),
                    html.escape(str(r["host"])),
                    str(r["attempt"]),
                    str(int(r["batch"])) if pd.notna(r["batch"]) else "",
                    status("success" if r["status"] == "ok" else str(r["status"])),
                    str(int(r["rc"])) if pd.notna(r["rc"]) else "",
                    seconds(took),
                    f"<code>{html.escape(said or last_line(r['stdout']))}</code>",
                )
            )
        headers = ("step", "host", "attempt", "batch", "status", "rc", "time", "last line")
        self.table.value = table(headers, rows, "opsjob-hosts") if rows else ""
