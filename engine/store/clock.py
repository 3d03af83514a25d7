"""Time, in the server-local form OpenC3 clients expect."""

import datetime
from typing import overload

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def now() -> datetime.datetime:
    """Return the current local time, to the second."""
    return datetime.datetime.now().replace(microsecond=0)


@overload
def fmt(value: None) -> None: ...
@overload
def fmt(value: datetime.date | str) -> str: ...
def fmt(value: datetime.date | str | None) -> str | None:
    """Render a datetime as ``YYYY-MM-DD HH:MM:SS`` (``None`` stays ``None``)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value[:19]
    if type(value) is datetime.datetime:  # isoformat is a fifth of strftime's cost (lists)
        return value.isoformat(" ", "seconds")[:19]
    return value.strftime(TIME_FORMAT)


def deleted_suffix(milliseconds: bool = False) -> str:
    """Return the suffix a soft-deleted name gets so the name can be reused."""
    t = datetime.datetime.now()
    return (
        "_" + t.strftime("%Y%m%d%H%M%S") + (f"{t.microsecond // 1000:03d}" if milliseconds else "")
    )
