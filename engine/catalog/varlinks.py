"""Variable links: a token that lets another system set one job variable without a key, and
the variable routes that address a job by its numeric id (OpenC3's ``byid``)."""

import hmac
from typing import Any

from engine.access import auth
from engine.catalog.variables import FIELDS
from engine.errors import Forbidden, NotFound
from engine.store import secrets
from engine.store.listing import as_dict
from engine.store.models import Job, Variable
from engine.store.validate import Field, check

NAME = Field(required=True, pattern=r"[A-Za-z0-9_]+", max_len=200)
TOKEN = {"name": NAME}
UPDATE = {
    "jobuuid": Field(required=True, pattern=r"[A-Za-z0-9]+", max_len=20),
    "token": Field(required=True, pattern=r"[A-Za-z0-9]+", max_len=64),
    "name": NAME,
    "option": Field(required=True, pattern=r"[A-Za-z0-9,_.@-]+", max_len=1000),
    "updatevalue": Field(bool, default=False),
}
BYID = {"name": NAME}


def _job(projectid: int, jobuuid: str) -> Job:
    job = Job.get_or_none(Job.uuid == jobuuid, Job.projectid == projectid, Job.status != "deleted")
    if job is None:
        raise NotFound(f"jobuuid: job {jobuuid} does not exist")
    return job


def _sign(projectid: int, jobuuid: str, name: str) -> str:
    return secrets.sign("token", "variable", str(projectid), jobuuid, name)[:32]


def token(projectid: int, jobuuid: str, params: dict[str, Any]) -> str:
    """Return the token that sets variable ``name`` of the job through :func:`update`."""
    name = check(params, TOKEN)["name"]
    _job(projectid, jobuuid)
    return _sign(projectid, jobuuid, name)


def update(projectid: int, fields: dict[str, Any]) -> bool:
    """Set a variable's ``option`` list (or its value with ``updatevalue``) through its token."""
    values = check(fields, UPDATE)
    try:
        expected = _sign(projectid, values["jobuuid"], values["name"])
    except secrets.SecretKeyError:  # no key, so no token was ever handed out
        expected = ""
    if not expected or not hmac.compare_digest(expected, values["token"]):
        raise Forbidden("token: does not open this variable")
    column = Variable.value if values["updatevalue"] else Variable.option
    changed = (
        Variable.update({column: values["option"]})
        .where(Variable.jobuuid == values["jobuuid"], Variable.name == values["name"])
        .execute()
    )
    if not changed:
        raise NotFound(f"name: variable {values['name']} does not exist")
    return True


def _job_by_id(jobid: int | str, principal: auth.Principal, role: str) -> Job:
    job = Job.get_or_none(Job.id == int(jobid), Job.status != "deleted")
    if job is None or not principal.allows(job.projectid, "read"):
        raise NotFound(f"jobid: job {jobid} does not exist")
    auth.require(principal, job.projectid, role)
    return job


def list_by_id(jobid: int | str, principal: auth.Principal) -> list[dict[str, Any]]:
    """List the variables of the job with numeric id ``jobid`` (read on its project)."""
    job = _job_by_id(jobid, principal, "read")
    query = Variable.select().where(Variable.jobuuid == job.uuid)
    return [as_dict(v, FIELDS) for v in query.order_by(Variable.describe, Variable.name)]


def delete_by_id(jobid: int | str, params: dict[str, Any], principal: auth.Principal) -> int:
    """Delete variable ``name`` of the job with numeric id ``jobid`` (delete on its project);
    return how many were deleted. Deleting one that is gone answers 0, as in OpenC3: the UI
    removes a light application's ``_authorization_`` this way and goes on only on success."""
    name = check(params, BYID)["name"]
    job = _job_by_id(jobid, principal, "delete")
    return Variable.delete().where(Variable.jobuuid == job.uuid, Variable.name == name).execute()
