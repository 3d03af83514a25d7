"""Job variables: the ``$name``/``${name}`` grammar, substitution, and the variable routes."""

import re
from collections.abc import Mapping
from typing import Any

from engine.errors import InvalidInput, NotFound
from engine.store.clock import now
from engine.store.listing import as_dict
from engine.store.models import Job, Variable, database
from engine.store.validate import Field, check

# A name has at least two characters, so ``$a`` is never a variable.
REFERENCE = re.compile(r"\$\{([A-Za-z][A-Za-z0-9_]+)\}|\$([A-Za-z][A-Za-z0-9_]+)\b")

SPECIAL = (
    "_exit_",
    "_appname_",
    "_skipSameVersion_",
    "_rollbackVersion_",
    "_authorization_",
    "_nodebatch_",
    "_pip_",
)
VALUE = r"[A-Za-z0-9_./,@-]*"
FIELDS = ("id", "name", "value", "describe", "option", "env", "create_user", "create_time")

UPSERT = {
    "jobuuid": Field(required=True, pattern=r"[A-Za-z0-9]+", max_len=20),
    "name": Field(required=True, pattern=r"[A-Za-z0-9_]+", max_len=200),
    "value": Field(default="", pattern=VALUE, max_len=2000),
    "describe": Field(required=True, max_len=200),
    "option": Field(default="", pattern=VALUE, max_len=1000),
}
BULK_ITEM = {
    "name": Field(required=True, pattern=r"[A-Za-z0-9_]+", max_len=200),
    "value": Field(default="", pattern=VALUE, max_len=2000),
    "describe": Field(default="", max_len=200),
    "option": Field(default="", pattern=r"[A-Za-z0-9_./,;@-]*", max_len=1000),
}
BULK = {"jobuuid": UPSERT["jobuuid"], "data": Field(list, required=True)}
DELETE = {"jobuuid": UPSERT["jobuuid"], "name": UPSERT["name"]}
LIST = {
    "empty": Field(bool, default=False),
    "exclude": Field(default="", pattern=r"[A-Za-z0-9,_]*", max_len=2000),
    "env": Field(choices=("test", "online")),
}


def names_in(text: str | None) -> list[str]:
    """Return the variable names referenced in ``text``, in order of first use."""
    seen: list[str] = []
    for braced, bare in REFERENCE.findall(text or ""):
        name = braced or bare
        if name not in seen:
            seen.append(name)
    return seen


def substitute(text: str | None, values: Mapping[str, Any]) -> tuple[str, list[str]]:
    """Replace every reference in ``text`` from ``values``; return (text, missing names).

    An empty value counts as undefined, as in OpenC3.
    """
    missing: list[str] = []

    def repl(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        value = values.get(name)
        if value is None or value == "":
            if name not in missing:
                missing.append(name)
            return match.group(0)
        return str(value)

    return REFERENCE.sub(repl, text or ""), missing


def is_special(name: str) -> bool:
    return name in SPECIAL or name.startswith("wk_")


def sync(jobuuid: str, references: Mapping[str, str], user: str) -> None:
    """Make the job's variables match ``references`` (name -> env): add new ones empty,
    refresh ``env``, and delete names no longer referenced (special ones included)."""
    existing = {v.name: v for v in Variable.select().where(Variable.jobuuid == jobuuid)}
    for name, env in references.items():
        row = existing.get(name)
        if row is None:
            Variable.create(jobuuid=jobuuid, name=name, value="", env=env, create_user=user)
        elif row.env != env:
            row.env = env
            row.save()
    gone = [name for name in existing if name not in references]
    if gone:
        Variable.delete().where(Variable.jobuuid == jobuuid, Variable.name.in_(gone)).execute()


def launch_role(jobuuid: str, group: str | None = None) -> str:
    """Return the role that runs a job and operates its tasks: ``control`` when its
    ``_authorization_`` variable is ``true`` (or equals the JOBX ``group``), else ``write``."""
    accepted = ["true"] if group is None else ["true", group]
    shortcut = (
        Variable.select()
        .where(
            Variable.jobuuid == jobuuid,
            Variable.name == "_authorization_",
            Variable.value.in_(accepted),
        )
        .exists()
    )
    return "control" if shortcut else "write"


def _job_in_project(projectid: int, jobuuid: str) -> Job | None:
    return (
        Job.select()
        .where(Job.uuid == jobuuid, Job.projectid == projectid, Job.status != "deleted")
        .first()
    )


def list_variables(projectid: int, jobuuid: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """List a job's variables, sorted by ``describe`` (filters: empty, exclude, env)."""
    values = check(params, LIST)
    if _job_in_project(projectid, jobuuid) is None:
        raise NotFound(f"jobuuid: job {jobuuid} does not exist")
    query = Variable.select().where(Variable.jobuuid == jobuuid)
    if values["empty"]:
        query = query.where(Variable.value == "")
    excluded = [n for n in values["exclude"].split(",") if n]
    if excluded:
        query = query.where(Variable.name.not_in(excluded))
    if values["env"]:
        other = "online" if values["env"] == "test" else "test"
        query = query.where(Variable.env != other)
    return [as_dict(v, FIELDS) for v in query.order_by(Variable.describe, Variable.name)]


def run_values(jobuuid: str | None, given: Mapping[str, Any]) -> dict[str, Any]:
    """The variables of a run: the job's values (``jobuuid`` None: none), overridden by
    non-empty ``given`` task values. Empty counts as undefined, as in OpenC3."""
    values = job_values(jobuuid) if jobuuid else {}
    values.update({k: v for k, v in given.items() if v not in (None, "")})
    return values


def job_values(jobuuid: str) -> dict[str, str]:
    """Return ``{name: value}`` of a job's variables."""
    return {v.name: v.value for v in Variable.select().where(Variable.jobuuid == jobuuid)}


def _require_job(projectid: int, jobuuid: str) -> None:
    if _job_in_project(projectid, jobuuid) is None:
        raise InvalidInput(f"jobuuid: job {jobuuid} does not exist in project {projectid}")


def upsert_variable(projectid: int, params: dict[str, Any], user: str) -> bool:
    """Create or replace one variable of a job, keyed by (jobuuid, name)."""
    values = check(params, UPSERT)
    _require_job(projectid, values["jobuuid"])
    with database.atomic():
        row = Variable.get_or_none(
            Variable.jobuuid == values["jobuuid"], Variable.name == values["name"]
        )
        if row is None:
            row = Variable(jobuuid=values["jobuuid"], name=values["name"], create_user=user)
        row.value, row.describe, row.option = values["value"], values["describe"], values["option"]
        row.env, row.create_time = "", now()
        row.save()
    return True


def update_variables(projectid: int, params: dict[str, Any], user: str) -> None:
    """Bulk update: special names (``_exit_``, ``wk_*``, …) are upserted; other names are
    only updated, so a name the job does not reference is ignored."""
    values = check(params, BULK)
    _require_job(projectid, values["jobuuid"])
    items = [check(item, BULK_ITEM, prefix=f"data[{i}]: ") for i, item in enumerate(values["data"])]
    with database.atomic():
        for item in items:
            fields = {
                "value": item["value"],
                "describe": item["describe"],
                "option": item["option"],
            }
            row = Variable.get_or_none(
                Variable.jobuuid == values["jobuuid"], Variable.name == item["name"]
            )
            if row is not None:
                Variable.update(**fields).where(Variable.id == row.id).execute()
            elif is_special(item["name"]):
                Variable.create(
                    jobuuid=values["jobuuid"], name=item["name"], create_user=user, **fields
                )
    return None


def delete_variable(projectid: int, params: dict[str, Any]) -> bool:
    """Delete one variable of a job (a hard delete)."""
    values = check(params, DELETE)
    _require_job(projectid, values["jobuuid"])
    deleted = (
        Variable.delete()
        .where(Variable.jobuuid == values["jobuuid"], Variable.name == values["name"])
        .execute()
    )
    if not deleted:
        raise NotFound(f"name: variable {values['name']} does not exist")
    return True
