"""Projects: the unit of isolation. Project 0 holds what every project shares."""

from typing import Any

from engine.errors import Conflict, InvalidInput, NotFound
from engine.messages import outbound
from engine.messages.notifiers import NotifyError, check_http_url, safe_url
from engine.store.clock import now
from engine.store.listing import as_dict
from engine.store.models import Project
from engine.store.validate import Field, check

FIELDS = ("id", "name", "status", "edit_user", "edit_time")
PROJECT = {
    "name": Field(max_len=200, allow_empty=False),
    "status": Field(choices=("active", "inactive")),
    # The project's notification webhook (chat tools); "" removes it. See notifications.
    "webhook": Field(max_len=1000, pattern=r"https?://[^\s]+"),
}


def add_project(projectid: int, name: str, user: str) -> Project:
    """Create project ``projectid`` called ``name``."""
    values = check({"name": name}, {"name": PROJECT["name"]})
    if projectid < 0:
        raise InvalidInput("id: must not be negative")
    if Project.get_or_none(Project.id == projectid) is not None:
        raise Conflict(f"id: project {projectid} already exists")
    return Project.create(id=projectid, name=values["name"], edit_user=user)


def ensure_project(projectid: int, name: str) -> Project:
    """Create project ``projectid`` unless it exists."""
    return Project.get_or_create(id=projectid, defaults={"name": name})[0]


def get_project(projectid: int) -> dict[str, Any]:
    """Return the project row as a dict; a webhook URL shows only its scheme and host."""
    row = Project.get_or_none(Project.id == projectid)
    if row is None:
        raise NotFound(f"projectid: project {projectid} does not exist")
    return {**as_dict(row, FIELDS), "webhook": safe_url(row.webhook) if row.webhook else ""}


def update_project(projectid: int, params: dict[str, Any], user: str) -> bool:
    """Change a project's ``status`` (active|inactive), ``name`` and/or ``webhook``."""
    values = check(params, PROJECT)
    row = Project.get_or_none(Project.id == projectid)
    if row is None:
        raise NotFound(f"projectid: project {projectid} does not exist")
    if values["name"] is None and values["status"] is None and values["webhook"] is None:
        raise InvalidInput("status: is required")
    if values["webhook"]:
        check_webhook(values["webhook"])
    if values["webhook"] is not None:
        row.webhook = values["webhook"]
    if values["name"] is not None:
        row.name = values["name"]
    if values["status"] is not None:
        row.status = values["status"]
    row.edit_user, row.edit_time = user, now()
    row.save()
    return True


def check_webhook(url: str) -> None:
    """Raise InvalidInput unless ``url`` is an http(s) URL whose every address
    OPSJOB_WEBHOOK_ALLOW allows (delivery checks again, in case DNS changes)."""
    try:
        check_http_url(url, "webhook")
        outbound.check(url)
    except NotifyError as e:
        raise InvalidInput(str(e)) from None
    except outbound.Refused as e:
        raise InvalidInput(f"webhook: {e} (OPSJOB_WEBHOOK_ALLOW)") from None
    except outbound.Unreachable as e:
        raise InvalidInput(f"webhook: {e}") from None


def ensure_demo(user: str) -> bool:
    """Create the demo project (1) whose only machine is this host over Ansible's local
    connection, unless project 1 exists. Return True if it was created."""
    from engine.store.models import Nodelist

    if Project.get_or_none(Project.id == 1) is not None:
        return False
    Project.create(id=1, name="demo", edit_user=user)
    Nodelist.create(
        projectid=1,
        name="localhost",
        inip="127.0.0.1",
        create_user=user,
        edit_user=user,
        hostvars='{"ansible_connection": "local"}',
    )
    return True
