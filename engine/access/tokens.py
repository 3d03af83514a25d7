"""Upload tokens: secrets that let a caller upload into a project's file store.

A token is stored only as its SHA-256 and its first characters; lists show it masked.
"""

import hashlib
from typing import Any

from engine.errors import InvalidInput
from engine.store.listing import as_dict, common_filters, paged
from engine.store.models import Job, Token, database
from engine.store.records import in_project, live, soft_delete, unique
from engine.store.validate import ONE_LINE, Field, check

PREFIX_LEN = 4
MIN_LEN, MAX_LEN = 8, 64
TRUE_WORDS, FALSE_WORDS = ("1", "true"), ("0", "false")
LIST_FIELDS = ("id", "describe", "create_user", "create_time", "jobname")
TOKEN = {
    "token": Field(required=True, pattern=r"[A-Za-z0-9._-]+", max_len=MAX_LEN, allow_empty=False),
    "describe": Field(pattern=ONE_LINE, max_len=200, default=""),
    "isjob": Field(object, required=True, allow_empty=False),
    "jobname": Field(required=True, pattern=ONE_LINE, max_len=200),
}


def digest(token: str) -> str:
    """Return the SHA-256 hex digest a token is stored and looked up by."""
    return hashlib.sha256(token.encode()).hexdigest()


def masked(prefix: str) -> str:
    """Return how a token is shown: its first characters and an ellipsis."""
    return f"{prefix}\u2026"


def _flag(name: str, value: Any) -> bool:
    """Return ``value`` as a boolean: JSON true/false, 1/0, or "true"/"false"/"1"/"0"."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in TRUE_WORDS + FALSE_WORDS:
        return value.strip().lower() in TRUE_WORDS
    raise InvalidInput(f"{name}: must be true or false")


def _shown(row: Token) -> dict[str, Any]:
    return {
        **as_dict(row, LIST_FIELDS),
        "token": masked(row.token_prefix),
        "isjob": bool(row.isjob),
    }


def list_tokens(projectid: int, params: dict[str, Any]) -> list[dict[str, Any]]:
    """List the project's tokens, masked (filters: create_user, edit_user, dates; paging)."""
    query = Token.select().where(Token.projectid == projectid, Token.status != "deleted")
    query = common_filters(query, Token, params)
    return [_shown(r) for r in paged(query.order_by(Token.id.desc()), params)]


def add_token(projectid: int, params: dict[str, Any], user: str) -> int:
    """Store a token: token, describe, isjob and jobname (a job of this project); return its id."""
    values = check(params, TOKEN)
    token = values["token"]
    if len(token) < MIN_LEN:
        raise InvalidInput(f"token: shorter than {MIN_LEN} characters")
    isjob = _flag("isjob", values["isjob"])
    jobname = values["jobname"]
    if isjob:
        if not jobname:
            raise InvalidInput("jobname: is required when isjob is true")
        job = live(Job, Job.projectid == projectid, Job.name == jobname, fields=[Job.id])
        if job is None:
            raise InvalidInput(f"jobname: job {jobname!r} does not exist in project {projectid}")
    prefix = token[:PREFIX_LEN]
    with database.atomic(), unique("token", masked(prefix)):
        row = Token.create(
            projectid=projectid,
            token_hash=digest(token),
            token_prefix=prefix,
            describe=values["describe"],
            isjob=int(isjob),
            jobname=jobname,
            create_user=user,
            edit_user=user,
        )
    return row.id


def delete_token(projectid: int, tokenid: int | str, user: str) -> bool:
    """Revoke one of the project's tokens (soft delete: the same token can be added again)."""
    row = in_project(Token, projectid, "id", tokenid, "token")
    return soft_delete(row, user, name_field="token_hash")


def lookup(projectid: int | str, token: str | None) -> dict[str, Any] | None:
    """Return the live token of this project (or of project 0) that ``token`` is, else None.

    The answer is ``{id, projectid, token_prefix, describe, isjob, jobname, create_user}``
    with ``isjob`` a boolean. Matching goes through the stored digest, never the token itself.
    """
    if not isinstance(token, str) or not token:
        return None
    row = (
        Token.select()
        .where(
            Token.projectid.in_([int(projectid), 0]),
            Token.token_hash == digest(token),
            Token.status != "deleted",
        )
        .order_by(Token.projectid.desc())
        .first()
    )
    if row is None:
        return None
    out = as_dict(row, ("id", "projectid", "token_prefix", "describe", "jobname", "create_user"))
    out["isjob"] = bool(row.isjob)
    return out
