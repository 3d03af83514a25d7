"""Notify: who hears about a project's finished and waiting tasks.

The special user ``_`` stands for whoever triggered the task.
"""

from typing import Any

from engine.store.listing import as_dict, common_filters, paged
from engine.store.models import Notify, database
from engine.store.records import in_project, soft_delete, unique
from engine.store.validate import Field, check

MAX_USER = 200
LIST_FIELDS = ("id", "user", "create_user", "create_time")
NOTIFY = {
    "user": Field(required=True, pattern=r"[A-Za-z0-9.@_-]+", max_len=MAX_USER, allow_empty=False)
}


def list_notify(projectid: int, params: dict[str, Any]) -> list[dict[str, Any]]:
    """List the project's notified users (filters: name on user, creator, dates; paging)."""
    query = Notify.select().where(Notify.projectid == projectid, Notify.status != "deleted")
    query = common_filters(query, Notify, params, name_column=Notify.user)
    return [as_dict(r, LIST_FIELDS) for r in paged(query.order_by(Notify.id.desc()), params)]


def add_notify(projectid: int, params: dict[str, Any], user: str) -> int:
    """Add a user to notify; return the new row's id."""
    who = check(params, NOTIFY)["user"]
    with database.atomic(), unique("user", who):
        row = Notify.create(projectid=projectid, user=who, create_user=user, edit_user=user)
    return row.id


def delete_notify(projectid: int, notifyid: int | str, user: str) -> bool:
    """Stop notifying a user (soft delete: the user can be added again)."""
    row = in_project(Notify, projectid, "id", notifyid, "notify")
    return soft_delete(row, user, name_field="user")
