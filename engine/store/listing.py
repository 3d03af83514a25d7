"""Shared list behaviour: OpenC3's common filters, paging, and row shaping."""

import datetime
import json
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from peewee import (
    SQL,
    AutoField,
    BigIntegerField,
    BlobField,
    CharField,
    DateTimeField,
    DoubleField,
    FloatField,
    IntegerField,
    TextField,
)

from engine.errors import InvalidInput
from engine.store.clock import fmt
from engine.store.db import is_sqlite
from engine.store.prepared import Prepared
from engine.store.validate import Field, check

if TYPE_CHECKING:
    from engine.store.basemodel import Audited, BaseModel

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100

DATE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"

PAGING = {
    "page": Field(int, default=1, minimum=1, maximum=10**9),
    "pagesize": Field(int, default=DEFAULT_PAGE_SIZE, minimum=1, maximum=MAX_PAGE_SIZE),
}

COMMON_FILTERS = {
    "name": Field(max_len=200),
    "create_user": Field(max_len=100),
    "edit_user": Field(max_len=100),
    "create_time_start": Field(pattern=DATE),
    "create_time_end": Field(pattern=DATE),
    "edit_time_start": Field(pattern=DATE),
    "edit_time_end": Field(pattern=DATE),
}


def day(name: str, value: str, end: bool = False) -> datetime.datetime:
    """Turn ``YYYY-MM-DD`` into the first (or last) second of that day."""
    try:
        d = datetime.datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        raise InvalidInput(f"{name}: not a valid date (YYYY-MM-DD)") from None
    return d.replace(hour=23, minute=59, second=59) if end else d


def time_range(
    query: Any, column: Any, start_name: str, end_name: str, values: Mapping[str, Any]
) -> Any:
    """Restrict ``column`` to the days given in ``values[start_name]``..``values[end_name]``."""
    if values.get(start_name):
        query = query.where(column >= day(start_name, values[start_name]))
    if values.get(end_name):
        query = query.where(column <= day(end_name, values[end_name], end=True))
    return query


def common_filters(query: Any, model: "type[Audited]", params: Any, name_column: Any = None) -> Any:
    """Apply OpenC3's name LIKE, creator/editor and date-range filters to ``query`` (the
    same query comes back when ``params`` ask for none)."""
    spec = {
        k: v for k, v in COMMON_FILTERS.items() if k != "edit_user" or hasattr(model, "edit_user")
    }
    values = check(params, spec)
    name_column = name_column or getattr(model, "name", None)
    if values["name"] and name_column is not None:
        query = query.where(name_column.contains(values["name"]))
    if values["create_user"]:
        query = query.where(model.create_user == values["create_user"])
    if values.get("edit_user") and hasattr(model, "edit_user"):
        query = query.where(model.edit_user == values["edit_user"])
    query = time_range(query, model.create_time, "create_time_start", "create_time_end", values)
    if hasattr(model, "edit_time"):
        query = time_range(query, model.edit_time, "edit_time_start", "edit_time_end", values)
    return query


def paged(query: Any, params: Any) -> Any:
    """Apply ``page``/``pagesize`` (bounded) to ``query``."""
    values = check(params, PAGING)
    return query.paginate(values["page"], values["pagesize"])


def page_bounds(params: Any) -> dict[str, int]:
    """Return ``{"limit", "offset"}`` of the page ``page``/``pagesize`` ask for (the values a
    Prepared query of a page takes)."""
    values = check(params, PAGING)
    return {"limit": values["pagesize"], "offset": (values["page"] - 1) * values["pagesize"]}


def as_dict(row: Any, names: Iterable[str]) -> dict[str, Any]:
    """Return ``{name: value}`` for ``names`` of ``row``, with times as OpenC3 strings."""
    out = {}
    for name in names:
        value = getattr(row, name)
        out[name] = fmt(value) if isinstance(value, datetime.datetime) else value
    return out


# Columns whose values both drivers already return as the Python type peewee would make.
AS_READ = (AutoField, BigIntegerField, CharField, DoubleField, FloatField, IntegerField, TextField)


class Columns:
    """Some columns of a model, selected by a column list built once and read back as dicts
    shaped like :func:`as_dict` (peewee builds the SQL of every selected field at every query,
    and converts every value of every row, which costs more than a small query itself)."""

    def __init__(
        self, model: "type[BaseModel]", names: Iterable[str], extra: dict[str, Any] | None = None
    ) -> None:
        """Select the fields ``names`` of ``model``, then each expression of ``extra`` (a dict:
        name -> expression, e.g. a subquery), whose values come as the driver gives them."""
        self.model = model
        self.extra = list((extra or {}).values())
        self.names = tuple(names) + tuple(extra or ())
        fields = [model._meta.fields[name] for name in names]
        self.sql = SQL(", ".join(f'"{f.column_name}"' for f in fields))
        readers = [(f.name, _reader(f)) for f in fields]
        self.readers = [(name, r) for name, r in readers if r is not None]
        # A page read from SQLite comes back as one JSON value (see rows()). JSON would round
        # a float to 15 digits, so float columns travel as the text of all 17.
        floats = {n for n, f in enumerate(fields) if isinstance(f, (FloatField, DoubleField))}
        page_columns = ", ".join(f"c{n}" for n in range(len(self.names)))
        json_values = ", ".join(
            f"iif(c{n} IS NULL, NULL, printf('%!.17g', c{n}))" if n in floats else f"c{n}"
            for n in range(len(self.names))
        )
        self.json_page = (  # around the page's own SQL
            f"WITH page({page_columns}) AS (",
            f") SELECT json_group_array(json_array({json_values})) FROM page",
        )
        self.json_readers = self.readers + [(fields[n].name, _float) for n in sorted(floats)]
        self.json_ok = not any(isinstance(f, BlobField) for f in fields)

    def select(self) -> Any:
        """Start a select of these columns (add where, order and paging as usual)."""
        return self.model.select(self.sql, *self.extra)

    def rows(self, query: Any, **values: Any) -> list[dict[str, Any]]:
        """Return the rows of ``query`` (begun with :meth:`select`) as shaped dicts; a
        :class:`Prepared` one runs with ``values``."""
        sql, params = _rendered(query, values)
        database = self.model._meta.database
        if not (self.json_ok and is_sqlite()):
            rows = database.execute_sql(sql, params).fetchall()
            return [self._shape(row, self.readers) for row in rows]
        # sqlite3 lets go of the GIL at every row it steps to. While other requests' threads
        # wait for it, each row then costs two thread switches, more than reading the row; at
        # 16 server threads a page of 100 rows cost 2-3 times the CPU. The page comes back as
        # one value instead. Its rows keep the page's order: SQLite runs an ordered, limited
        # subquery as a co-routine that the aggregate reads in order (tests/test_reads.py).
        before, after = self.json_page
        one = database.execute_sql(before + sql + after, params).fetchone()[0]
        rows = json.loads(one)
        return [self._shape(row, self.json_readers) for row in rows]

    def first(self, query: Any, **values: Any) -> dict[str, Any] | None:
        """Return the first row of ``query`` as a shaped dict, or None (a :class:`Prepared`
        query limits itself)."""
        if not isinstance(query, Prepared):
            query = query.limit(1)
        sql, params = _rendered(query, values)
        row = self.model._meta.database.execute_sql(sql, params).fetchone()
        return None if row is None else self._shape(row, self.readers)

    def _shape(
        self, row: Iterable[Any], readers: list[tuple[str, Callable[[Any], Any]]]
    ) -> dict[str, Any]:
        out = dict(zip(self.names, row, strict=True))
        for name, reader in readers:
            out[name] = reader(out[name])
        return out


def _rendered(query: Any, values: dict[str, Any]) -> tuple[str, list[Any]]:
    """The SQL and parameters of a peewee query, or of a Prepared one with ``values``."""
    return query.render(**values) if isinstance(query, Prepared) else query.sql()


def _float(text: str | None) -> float | None:
    return None if text is None else float(text)


def _reader(field: Any) -> Callable[[Any], Any] | None:
    """Return what turns a value of ``field`` as the driver gives it into what a reply shows,
    or None when it shows as given."""
    if isinstance(field, DateTimeField):
        return fmt  # a datetime, or the text SQLite keeps, becomes YYYY-MM-DD HH:MM:SS
    if isinstance(field, AS_READ):
        return None

    def read(value: Any) -> Any:
        value = field.python_value(value)
        return fmt(value) if isinstance(value, datetime.datetime) else value

    return read
