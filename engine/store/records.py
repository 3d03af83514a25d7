"""Shared row operations: scoped lookup, unique saves and OpenC3-style soft delete."""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from peewee import IntegrityError

from engine.errors import Conflict, NotFound
from engine.store.clock import deleted_suffix, now
from engine.store.validate import DIGITS, Field, one

if TYPE_CHECKING:
    from engine.store.basemodel import Audited

A = TypeVar("A", bound="Audited")


def row_id(name: str, value: Any) -> int:
    """Return ``value`` as a row id, or raise NotFound (a path id that is not a number)."""
    try:
        return int(one(name, value, Field(required=True, pattern=DIGITS, max_len=18)))
    except Exception:
        raise NotFound(f"{name}: {value} does not exist") from None


def live(model: type[A], *where: Any, fields: Sequence[Any] = ()) -> A | None:
    """Return the first row matching ``where`` that is not soft-deleted (only ``fields``, if
    given), or None."""
    query = model.select(*fields).where(*where)
    if hasattr(model, "status"):
        query = query.where(model.status != "deleted")
    return query.first()


def find(model: type[A], what: str, *where: Any) -> A:
    """Return the one live row matching ``where``, or raise NotFound naming ``what``."""
    row = live(model, *where)
    if row is None:
        raise NotFound(f"{what} does not exist")
    return row


def in_project(model: type[A], projectid: int, field: str, value: Any, what: str) -> A:
    """Return the live row whose id is ``value`` (the path field ``field``) in the project,
    or raise NotFound: ``<field>: <what> <id> does not exist``."""
    rid = row_id(field, value)
    return find(model, f"{field}: {what} {rid}", model.id == rid, model.projectid == projectid)


def save(
    model: type[A],
    projectid: int,
    values: dict[str, Any],
    user: str,
    row: A | None = None,
    **create_only: Any,
) -> A:
    """Create a row of the project from ``values`` (plus ``create_only`` fields), or update
    ``row`` with them; record who did it. Return the row."""
    if row is None:
        return model.create(
            projectid=projectid, create_user=user, edit_user=user, **create_only, **values
        )
    for key, value in values.items():
        setattr(row, key, value)
    row.edit_user, row.edit_time = user, now()
    row.save()
    return row


@contextmanager
def unique(field: str, value: Any) -> Iterator[None]:
    """Turn a unique-constraint failure inside the block into a Conflict naming ``field``."""
    try:
        yield
    except IntegrityError:
        raise Conflict(f"{field}: {value} already exists") from None


def soft_delete(
    row: "Audited", user: str, name_field: str = "name", milliseconds: bool = True
) -> bool:
    """Mark ``row`` deleted and suffix its unique name so the name can be used again."""
    model, column = type(row), getattr(type(row), name_field)
    suffix = deleted_suffix(milliseconds)
    # The deleted name only has to stop colliding: shorten it so name, suffix and a
    # collision counter fit the column.
    room = (getattr(column, "max_length", None) or 10**6) - len(suffix) - 4
    base = getattr(row, name_field)[:room] + suffix
    name, n = base, 1
    while model.select().where(column == name).exists():
        n += 1  # deleted twice within the same clock tick
        name = f"{base}_{n}"
    setattr(row, name_field, name)
    row.status = "deleted"
    row.edit_user = user
    row.edit_time = now()
    row.save()
    return True
