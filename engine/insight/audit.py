"""The audit trail: who changed what, when, from where, through the API, the console or the CLI.

An entry keeps a summary of the change, never a request body verbatim: each field is cut short,
and whatever the API treats as secret (passwords, SSH keys, tokens, API keys, ticket and link
values, webhook URL paths and queries, userinfo in any URL) is masked first.
"""

import getpass
import json
import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from engine.errors import Forbidden, InvalidInput
from engine.store.clock import fmt, now
from engine.store.listing import DATE, PAGING, day, paged
from engine.store.models import AuditLog, Job, Task
from engine.store.validate import Field, check

MASK = "***"
MAX_VALUE = 120  # characters of one field kept in a summary
MAX_SUMMARY = 4000
# Field names whose values are secret wherever they appear (matched as parts of the name).
SECRET_NAME = re.compile(
    r"pass|secret|token|ssh_key|private|appkey|api_?key|^key$|ticket|cookie|authorization|link",
    re.IGNORECASE,
)
URL_FIELDS = ("webhook", "sms_webhook", "smtp_url", "url")
# "password=x", "token: x" and the like inside free text (scripts, inventories, commands).
SECRET_IN_TEXT = re.compile(
    r"(?i)\b([\w-]*(?:pass(?:word|wd)?|secret|token|api_?key)[\w-]*)(\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|\S+)"
)
URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]+@")

FILTERS = {
    "project": Field(int, minimum=0, maximum=2**31 - 1),
    "user": Field(max_len=100),
    "object": Field(max_len=40),
    "time_start": Field(pattern=DATE),
    "time_end": Field(pattern=DATE),
    **PAGING,
}
FIELDS = (
    "id",
    "time",
    "user",
    "key_id",
    "source",
    "via",
    "projectid",
    "method",
    "route",
    "object",
    "object_id",
    "status",
    "summary",
)


def is_secret(name: str) -> bool:
    """Tell whether a field called ``name`` holds a secret (``tokenid`` and the like are ids)."""
    return bool(SECRET_NAME.search(name)) and not name.lower().endswith("id")


def mask_url(value: str) -> str:
    """Keep a URL's scheme and host; mask its user info, path and query."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return MASK
    if not parts.scheme or not parts.hostname:
        return MASK if value else value
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    rest = parts.path not in ("", "/") or parts.query or parts.fragment
    return urlunsplit((parts.scheme, host, "/" + MASK if rest else parts.path, "", ""))


def mask_text(text: str) -> str:
    """Mask secrets written inside free text: ``name=value`` pairs and URL user info."""
    text = URL_USERINFO.sub(lambda m: m.group(1) + MASK + "@", text)
    return SECRET_IN_TEXT.sub(lambda m: m.group(1) + m.group(2) + MASK, text)


def mask(value: Any, name: str = "") -> Any:
    """Return ``value`` with every secret in it masked (recursively), each string cut short."""
    if name and is_secret(name):
        return MASK if value not in (None, "") else value
    if isinstance(value, dict):
        return {str(k): mask(v, str(k)) for k, v in list(value.items())[:50]}
    if isinstance(value, (list, tuple)):
        return [mask(v, name) for v in list(value)[:20]]
    if isinstance(value, str):
        if name.lower() in URL_FIELDS:
            return mask_url(value)
        value = mask_text(value)
        if len(value) > MAX_VALUE:
            return value[:MAX_VALUE] + f"… ({len(value)} chars)"
        return value
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return type(value).__name__  # uploads and other objects: their kind, never their content


def summarize(fields: Any) -> str:
    """Return the masked fields of a change as compact JSON, cut to a bounded size."""
    text = json.dumps(mask(fields or {}), ensure_ascii=False, sort_keys=True, default=str)
    if len(text) > MAX_SUMMARY:
        text = text[:MAX_SUMMARY] + "…"
    return text


def project_of(projectid: Any, ids: Mapping[str, Any]) -> int | None:
    """Return the project a change belongs to: the route's, or that of the task or job it
    names (routes without a project in their path), or None."""
    if projectid not in (None, ""):
        try:
            return int(projectid)
        except (TypeError, ValueError):
            return None
    if ids.get("uuid"):
        row = Task.select(Task.projectid).where(Task.uuid == str(ids["uuid"])).first()
        return row.projectid if row else None
    if ids.get("jobid"):
        row = Job.select(Job.projectid).where(Job.id == ids["jobid"]).first()
        return row.projectid if row else None
    return None


def record(
    *,
    user: str | None,
    via: str,
    route: str,
    obj: str,
    method: str = "",
    key_id: int | None = 0,
    source: str | None = "",
    projectid: int | None = None,
    object_id: Any = "",
    status: int = 200,
    fields: Any = None,
) -> AuditLog:
    """Store one audit entry; ``fields`` (the request's parameters) are masked and summarized."""
    return AuditLog.create(
        time=now(),
        user=(user or "")[:100],
        key_id=key_id or 0,
        source=(source or "")[:64],
        via=via,
        projectid=projectid,
        method=method,
        route=route[:200],
        object=obj[:40],
        object_id=str(object_id or "")[:200],
        status=status,
        summary=summarize(fields),
    )


def record_cli(
    command: str, obj: str, object_id: Any = "", projectid: int | None = None, fields: Any = None
) -> AuditLog:
    """Store the entry of an ``opsjob`` command that changed something (the user is the
    account that ran it)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid {os.getuid()}"
    return record(
        user=user,
        via="cli",
        route=f"opsjob {command}",
        obj=obj,
        source="cli",
        projectid=projectid,
        object_id=object_id,
        fields=fields,
    )


def entries(principal: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
    """List audit entries, newest first. Admins see every entry; a caller with the delete
    role on a project sees that project's entries (``project`` is then required)."""
    values = check(params, FILTERS)
    project = values["project"]
    if not principal.admin:
        if project is None:
            raise Forbidden("not allowed: admin is required, or project= with the delete role")
        if not principal.allows(project, "delete"):
            raise Forbidden(f"not allowed: delete on project {project} is required")
    query = AuditLog.select()
    if project is not None:
        query = query.where(AuditLog.projectid == project)
    if values["user"]:
        query = query.where(AuditLog.user == values["user"])
    if values["object"]:
        query = query.where(AuditLog.object == values["object"])
    if values["time_start"]:
        query = query.where(AuditLog.time >= day("time_start", values["time_start"]))
    if values["time_end"]:
        query = query.where(AuditLog.time <= day("time_end", values["time_end"], end=True))
    if values["time_start"] and values["time_end"] and values["time_start"] > values["time_end"]:
        raise InvalidInput("time_end: before time_start")
    rows = paged(query.order_by(AuditLog.id.desc()), params)
    return [_shape(r) for r in rows]


def _shape(row: Any) -> dict[str, Any]:
    out = {name: getattr(row, name) for name in FIELDS}
    out["time"] = fmt(row.time)
    return out
