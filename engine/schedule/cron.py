"""OpenC3's five-field cron grammar: parse it, test a time against it, list the next fire times.

Each of the five fields (minute hour day month weekday) is a comma list of ``*``, ``n`` or
``a-b`` (a < b), each optionally followed by ``/step``; ``n/step`` runs from ``n`` to the end of
the field. Weekday 0 and 7 both mean Sunday. Names, ``?``, ``L``, ``#``, seconds and ``@`` aliases
are not part of the grammar.
"""

import datetime
import functools
import re
from dataclasses import dataclass

from engine.errors import InvalidInput

MAX_LEN = 100
FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12), ("weekday", 0, 7))
ELEMENT = re.compile(r"(\*|[0-9]+(?:-[0-9]+)?)(?:/([0-9]+))?")
# A search that finds nothing within one full cycle of the calendar never will.
HORIZON_YEARS = 28
ONE_DAY = datetime.timedelta(days=1)


@dataclass(frozen=True)
class Schedule:
    """The parsed form of an expression: the allowed values of each field."""

    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday .. 6 = Saturday
    day_star: bool
    weekday_star: bool

    def fires_on(self, date: datetime.date) -> bool:
        """Tell whether the schedule fires at some time of ``date``."""
        if date.month not in self.months:
            return False
        by_day = date.day in self.days
        by_weekday = date.isoweekday() % 7 in self.weekdays
        # As in the system cron OpenC3 installs its lines into: a field written starting with
        # '*' does not restrict, and two restricting day fields widen each other.
        if self.day_star or self.weekday_star:
            return by_day and by_weekday
        return by_day or by_weekday


def _number(field: str, text: str, low: int, high: int, whole: str) -> int:
    value = int(text)
    if not low <= value <= high:
        raise InvalidInput(f"cron: {field} field '{whole}' is out of range {low}-{high}")
    return value


def _element(field: str, text: str, low: int, high: int, whole: str) -> range:
    m = ELEMENT.fullmatch(text)
    if m is None:
        raise InvalidInput(
            f"cron: {field} field '{whole}' must be a comma list of *, n or a-b, "
            "each optionally with /step"
        )
    span, step = m.group(1), m.group(2)
    if span == "*":
        start, end = low, high
    elif "-" in span:
        a, b = span.split("-")
        start, end = _number(field, a, low, high, whole), _number(field, b, low, high, whole)
        if start >= end:
            raise InvalidInput(
                f"cron: {field} field '{whole}' has a range whose start is not below its end"
            )
    else:
        start = _number(field, span, low, high, whole)
        end = high if step is not None else start
    if step is None:
        return range(start, end + 1)
    step = int(step)
    if not 1 <= step <= high:
        raise InvalidInput(f"cron: {field} field '{whole}' has a step outside 1-{high}")
    return range(start, end + 1, step)


def _field(field: str, text: str, low: int, high: int) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        values.update(_element(field, part, low, high, text))
    return values


def parse(expr: object) -> Schedule:
    """Parse ``expr`` into a :class:`Schedule`, or raise InvalidInput naming the bad field."""
    if not isinstance(expr, str):
        raise InvalidInput("cron: must be a string")
    if len(expr) > MAX_LEN:
        raise InvalidInput(f"cron: longer than {MAX_LEN} characters")
    if re.search(r"[^ \t\S]", expr):
        raise InvalidInput("cron: fields must be separated by spaces or tabs")
    return _parse(expr)


@functools.lru_cache(maxsize=256)
def _parse(expr: str) -> Schedule:
    parts = expr.split()
    if len(parts) != 5:
        raise InvalidInput(
            f"cron: needs exactly 5 fields (minute hour day month weekday), got {len(parts)}"
        )
    minute, hour, day, month, weekday = (
        _field(name, part, low, high)
        for (name, low, high), part in zip(FIELDS, parts, strict=False)
    )
    return Schedule(
        minutes=tuple(sorted(minute)),
        hours=tuple(sorted(hour)),
        days=frozenset(day),
        months=frozenset(month),
        weekdays=frozenset(w % 7 for w in weekday),
        day_star=parts[2].startswith("*"),
        weekday_star=parts[4].startswith("*"),
    )


def matches(expr: str, dt: datetime.datetime) -> bool:
    """Tell whether ``expr`` fires in the minute of ``dt``."""
    s = parse(expr)
    return dt.minute in s.minutes and dt.hour in s.hours and s.fires_on(dt.date())


def _next_month(date: datetime.date) -> datetime.date:
    return datetime.date(date.year + date.month // 12, date.month % 12 + 1, 1)


def next_times(expr: str, after: datetime.datetime, count: int = 5) -> list[datetime.datetime]:
    """Return the next ``count`` fire times strictly after ``after``, earliest first.

    Days (and whole months) that cannot fire are skipped, so an expression that fires rarely costs
    a few thousand steps at most. An expression that never fires (say the 31st of February)
    yields fewer times, possibly none.
    """
    s = parse(expr)
    start = after.replace(second=0, microsecond=0) + datetime.timedelta(minutes=1)
    date, limit = start.date(), start.date().replace(year=start.year + HORIZON_YEARS, day=1)
    found: list[datetime.datetime] = []
    while len(found) < count and date < limit:
        if date.month not in s.months:
            date = _next_month(date)
            continue
        if s.fires_on(date):
            first_day = date == start.date()
            for hour in s.hours:
                if first_day and hour < start.hour:
                    continue
                for minute in s.minutes:
                    if first_day and hour == start.hour and minute < start.minute:
                        continue
                    found.append(
                        datetime.datetime(
                            date.year, date.month, date.day, hour, minute, tzinfo=after.tzinfo
                        )
                    )
                    if len(found) == count:
                        return found
        date += ONE_DAY
    return found
