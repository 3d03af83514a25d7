"""Queries rendered once: peewee renders a query's SQL anew at every execution, which costs
more than running a small query. A Prepared query is rendered once per kind of database and
then run with new values; the hot reads (a task, its log, the default page of a list) use one.
"""

from collections.abc import Callable
from typing import Any

from peewee import Node

from engine.store.db import database


class _Slot:
    """Where a named value goes in rendered SQL, with the conversion peewee would apply."""

    __slots__ = ("name", "convert")

    def __init__(self, name: str, convert: Callable[[Any], Any] | None) -> None:
        self.name, self.convert = name, convert


class _Arg(Node):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def __sql__(self, ctx: Any) -> Any:
        # The converter in effect is the compared field's (e.g. int() for an integer column).
        return ctx.value(_Slot(self.name, ctx.state.converter), converter=False)


class Prepared:
    """A query of fixed shape whose values come at each execution.

    ``build(arg)`` returns the peewee query, with ``arg("name")`` wherever a value goes;
    :meth:`execute` runs it with ``name=value`` for each one.
    """

    def __init__(self, build: Callable[[type[_Arg]], Any]) -> None:
        self.build = build
        # kind of database -> (sql, params with slots)
        self._rendered: dict[type, tuple[str, list[Any]]] = {}

    def render(self, **values: Any) -> tuple[str, list[Any]]:
        """Return the query's SQL and its parameters for ``values``."""
        kind = type(database.obj)
        rendered = self._rendered.get(kind)
        if rendered is None:
            rendered = self._rendered[kind] = self.build(_Arg).sql()
        sql, params = rendered
        return sql, [_value(p, values) for p in params]

    def execute(self, **values: Any) -> Any:
        """Run the query with ``values`` and return the driver's cursor."""
        return database.execute_sql(*self.render(**values))


def _value(param: Any, values: dict[str, Any]) -> Any:
    if not isinstance(param, _Slot):
        return param  # a constant of the query
    value = values[param.name]
    return param.convert(value) if param.convert else value
