"""What the widgets share: one table style, one palette for task states, error text and
durations."""

import html
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

ERROR_STYLE = "color:#b00020"
# One colour per outcome, the same in tables, progress bars and charts.
COLOURS = {
    "success": "#2a7d4f",
    "fail": "#c62828",
    "refuse": "#c62828",
    "failed": "#c62828",  # a host's outcome
    "unknown": "#b26a00",
    "decision": "#b26a00",
    "waiting": "#b26a00",
    "running": "#1565c0",
    "ignore": "#607d8b",
}
CELL = "padding:2px 10px;text-align:left;border-bottom:1px solid #ddd;vertical-align:top"
HEAD = CELL + ";font-weight:600;border-bottom:2px solid #999"


def error(message: object) -> str:
    """Return ``message`` as red HTML."""
    return f'<span style="{ERROR_STYLE}">{html.escape(str(message))}</span>'


def status(value: str | None, empty: str = "not yet run") -> str:
    """Return a status as HTML in its colour."""
    text = value or empty
    colour = COLOURS.get(text, "#777")
    return f'<span style="color:{colour};font-weight:600">{html.escape(text)}</span>'


def show(widget: Any, visible: bool) -> None:
    """Show or hide ``widget``."""
    widget.layout.display = "" if visible else "none"


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], css_class: str) -> str:
    """Return an HTML table; cells are HTML already (escape text before)."""
    head = "".join(f'<th style="{HEAD}">{html.escape(h)}</th>' for h in headers)
    body = "".join(
        "<tr>" + "".join(f'<td style="{CELL}">{cell}</td>' for cell in row) + "</tr>"
        for row in rows
    )
    return (
        f'<table class="{css_class}" style="border-collapse:collapse;font-size:13px">'
        f"<tr>{head}</tr>{body}</table>"
    )


def seconds(value: float | None) -> str:
    """Return a duration as ``4.2 s``, ``3 min 05 s`` or ``1 h 02 min``; '' for None."""
    if value is None:
        return ""
    value = max(float(value), 0.0)
    if value < 60:
        return f"{value:.1f} s"
    minutes, secs = divmod(int(value), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def since(stamp: str | None) -> float | None:
    """Return the seconds since ``stamp`` (the server's local ``YYYY-MM-DD HH:MM:SS``)."""
    if not stamp:
        return None
    try:
        return (datetime.now() - datetime.fromisoformat(str(stamp))).total_seconds()
    except ValueError:
        return None
