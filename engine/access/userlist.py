"""Account list: the remote OS accounts offered for steps, per project plus the global ones."""

from typing import Any

from engine.store.listing import as_dict, common_filters, paged
from engine.store.models import Userlist, database
from engine.store.records import in_project, soft_delete, unique
from engine.store.validate import WORD, Field, check

FIELDS = ("id", "projectid", "username", "create_user", "create_time")
ACCOUNT = {"username": Field(required=True, pattern=WORD, max_len=100, allow_empty=False)}


def list_accounts(projectid: int, params: dict[str, Any]) -> list[dict[str, Any]]:
    """List the project's accounts and the global ones, newest first.

    Filters: ``name`` (substring of the username), create_user, edit_user, date ranges; paging.
    """
    query = Userlist.select().where(
        Userlist.projectid.in_([projectid, 0]), Userlist.status != "deleted"
    )
    query = common_filters(query, Userlist, params, name_column=Userlist.username)
    return [as_dict(r, FIELDS) for r in paged(query.order_by(Userlist.id.desc()), params)]


def add_account(projectid: int, params: dict[str, Any], user: str) -> int:
    """Add an account to the project's list; return its id."""
    values = check(params, ACCOUNT)
    with database.atomic(), unique("username", values["username"]):
        row = Userlist.create(projectid=projectid, create_user=user, edit_user=user, **values)
    return row.id


def delete_account(projectid: int, account_id: int | str, user: str) -> bool:
    """Soft delete one of the project's own accounts; its username becomes free again."""
    row = in_project(Userlist, projectid, "id", account_id, "account")
    return soft_delete(row, user, name_field="username")
