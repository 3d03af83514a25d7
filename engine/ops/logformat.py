"""Process logging: plain text lines, or one JSON object a line (``OPSJOB_LOG_FORMAT=json``)
carrying the request id and the task uuid a line was logged for."""

import contextlib
import contextvars
import datetime
import json
import logging
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.store.settings import Settings

TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
request_id = contextvars.ContextVar("opsjob_request_id", default="")
task_uuid = contextvars.ContextVar("opsjob_task_uuid", default="")


@contextlib.contextmanager
def for_task(uuid: str) -> Iterator[None]:
    """Name task ``uuid`` in the log lines of this thread until the block ends."""
    token = task_uuid.set(uuid)
    try:
        yield
    finally:
        task_uuid.reset(token)


class JsonLines(logging.Formatter):
    """Format a record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id.get(),
            "task": task_uuid.get(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure(settings: "Settings") -> None:
    """Send the root logger's lines to stderr in ``settings.log_format`` at its level."""
    if settings.log_format not in ("text", "json"):
        from engine.errors import InvalidInput

        raise InvalidInput(f"OPSJOB_LOG_FORMAT: must be text or json, not {settings.log_format!r}")
    root = logging.getLogger()
    formatter = JsonLines() if settings.log_format == "json" else logging.Formatter(TEXT)
    ours = [h for h in root.handlers if getattr(h, "opsjob", False)]
    if ours:
        ours[0].setFormatter(formatter)
    elif root.handlers:  # configured by the host program (a test runner, a notebook): keep it
        return
    else:
        handler: Any = logging.StreamHandler(sys.stderr)  # tagged as opsjob's below
        handler.opsjob = True
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(settings.log_level.upper())


def gunicorn_config(settings: "Settings") -> dict[str, Any]:
    """Return gunicorn's ``logconfig_dict`` that prints its lines (and uvicorn's, which go to
    its error log) as JSON, each line once."""
    level = settings.log_level.upper()
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "root": {"level": level, "handlers": ["console"]},
        "loggers": {
            name: {"level": level, "handlers": ["console"], "propagate": False}
            for name in ("gunicorn.error", "gunicorn.access")
        },
        "handlers": {"console": handler, "error_console": handler},
        "formatters": {"json": {"()": JsonLines}},
    }
