"""Jobs: ordered lists of steps, saved whole in one transaction, with their variables synced."""

from typing import Any

from peewee import SQL, fn

from engine.access import auth
from engine.catalog import steps, variables
from engine.catalog.shapes import CheckedStep
from engine.errors import Forbidden, InvalidInput, NotFound
from engine.store.clock import now
from engine.store.ids import new_uuid
from engine.store.listing import Columns, as_dict, common_filters, page_bounds, paged
from engine.store.models import Job, Variable, database
from engine.store.prepared import Prepared
from engine.store.records import find, soft_delete, unique
from engine.store.validate import Field, check

MUTEX_POLICIES = ("fail", "skip", "queue")  # what a task does when its mutex is held

JOB = {
    "name": Field(required=True, max_len=100, allow_empty=False),
    # Any true value (the UI sends "permanent", tools send 1); ignored on edit, as in OpenC3.
    "permanent": Field(bool, default=False, truthy=True),
    "mon_ids": Field(default="", pattern=r"[A-Za-z0-9_,./]*", max_len=200),
    "mon_status": Field(int, default=0, minimum=0, maximum=1, booleans=True),
    "data": Field(list, required=True),
}
# POST /variable/:pid/update_mon, the UI's monitoring-trigger form; absent keeps a value.
MON = {
    "jobuuid": Field(required=True, pattern=r"[A-Za-z0-9]+", max_len=20),
    "status": Field(int, minimum=0, maximum=1, booleans=True),
    "mon_ids": Field(pattern=JOB["mon_ids"].pattern, max_len=JOB["mon_ids"].max_len),
}
BYNAME = {"name": Field(max_len=100)}  # GET /jobs/{projectid}/byname?name=
LIST_FIELDS = ("id", "uuid", "name", "create_time", "create_user", "edit_user", "edit_time")
DETAIL_FIELDS = (
    "id",
    "name",
    "uuid",
    "uuids",
    "mon_ids",
    "mon_status",
    "status",
    "create_user",
    "create_time",
    "edit_user",
    "edit_time",
)
MAX_STEPS = 200
LIST_COLUMNS = Columns(
    Job,
    LIST_FIELDS + ("uuids",),
    # whether a variable of the job has no value yet, in the same query
    extra={
        "hasvariable": fn.EXISTS(
            Variable.select(SQL("1")).where(Variable.jobuuid == Job.uuid, Variable.value == "")
        )
    },
)


def _checked(
    projectid: int, params: Any, admin: bool = False
) -> tuple[dict[str, Any], list[tuple[str, CheckedStep]], dict[str, str]]:
    """Validate a whole job body; return (job fields, [(kind, step fields)], variable refs)."""
    values = check(params, JOB)
    if not values["data"]:
        raise InvalidInput("data: needs at least one step")
    if len(values["data"]) > MAX_STEPS:
        raise InvalidInput(f"data: at most {MAX_STEPS} steps")
    checked: list[tuple[str, CheckedStep]] = []
    refs: dict[str, set[str]] = {}
    for n, raw in enumerate(values["data"], start=1):
        try:
            step = steps.validate_step(raw, projectid, admin=admin)
        except InvalidInput as e:
            raise InvalidInput(f"step {n}: {e.info}") from None
        except Forbidden as e:
            raise Forbidden(f"step {n}: {e.info}") from None
        kind = step["plugin_type"]
        checked.append((kind, step))
        for name in steps.references(kind, step):
            refs.setdefault(name, set()).add(step["deployenv"])
    env = {
        name: (envs.pop() if len(envs) == 1 and envs <= {"test", "online"} else "")
        for name, envs in refs.items()
    }
    return values, checked, env


def _store_steps(jobuuid: str, checked: list[tuple[str, CheckedStep]]) -> str:
    return ",".join(steps.store(kind, step, jobuuid) for kind, step in checked)


def _find(projectid: int, match: Any, what: str, permanent_only: bool) -> Job:
    permanent = (Job.status == "permanent",) if permanent_only else ()
    return find(Job, what, Job.projectid == projectid, match, *permanent)


def live_job(
    projectid: int, jobuuid: str, field: str = "jobuuid", permanent_only: bool = False
) -> Job:
    """Return a non-deleted job of the project by uuid, or raise NotFound naming ``field``."""
    return _find(projectid, Job.uuid == jobuuid, f"{field}: job {jobuuid}", permanent_only)


def _by_name(projectid: int, name: str, permanent_only: bool = True) -> Job:
    return _find(projectid, Job.name == name, f"name: job {name}", permanent_only)


def create_job(projectid: int, params: dict[str, Any], user: str, admin: bool = False) -> str:
    """Create a job from ``name``, ``permanent`` and the steps in ``data``; return its uuid.
    Only an ``admin`` may save a playbook step with a ``path:`` source."""
    values, checked, env = _checked(projectid, params, admin)
    jobuuid = new_uuid()
    with database.atomic(), unique("name", values["name"]):
        Job.create(
            projectid=projectid,
            uuid=jobuuid,
            name=values["name"],
            uuids=_store_steps(jobuuid, checked),
            status="permanent" if values["permanent"] else "transient",
            mon_ids=values["mon_ids"],
            mon_status=values["mon_status"],
            create_user=user,
            edit_user=user,
        )
        variables.sync(jobuuid, env, user)
    return jobuuid


def edit_job(
    projectid: int, jobuuid: str, params: dict[str, Any], user: str, admin: bool = False
) -> bool:
    """Replace a job's name and steps (new step rows; old ones stay for running tasks)."""
    values, checked, env = _checked(projectid, params, admin)
    with database.atomic(), unique("name", values["name"]):
        job = live_job(projectid, jobuuid)
        job.uuids = _store_steps(job.uuid, checked)
        job.name, job.mon_ids, job.mon_status = (
            values["name"],
            values["mon_ids"],
            values["mon_status"],
        )
        job.edit_user, job.edit_time = user, now()
        job.save()
        variables.sync(job.uuid, env, user)
    return True


def update_mon(projectid: int, params: dict[str, Any], user: str) -> bool:
    """Set a job's monitoring trigger: ``status`` (mon_status) and ``mon_ids``."""
    values = check(params, MON)
    with database.atomic():
        try:
            job = live_job(projectid, values["jobuuid"])
        except NotFound as e:  # an id in the body is bad input, not a missing resource
            raise InvalidInput(e.info) from None
        if values["status"] is not None:
            job.mon_status = values["status"]
        if values["mon_ids"] is not None:
            job.mon_ids = values["mon_ids"]
        job.edit_user, job.edit_time = user, now()
        job.save()
    return True


def list_jobs(projectid: int, params: dict[str, Any]) -> list[dict[str, Any]]:
    """List the project's permanent jobs with ``stepcount`` and ``hasvariable``."""
    listed = _listed(projectid)
    query = common_filters(listed, Job, params)
    if query is listed:  # no filter applied: the page a poll asks for
        rows = LIST_COLUMNS.rows(JOB_PAGE, projectid=projectid, **page_bounds(params))
    else:
        rows = LIST_COLUMNS.rows(paged(query, params))
    for row in rows:
        row["stepcount"] = len([u for u in row.pop("uuids").split(",") if u])
        row["hasvariable"] = 1 if row.pop("hasvariable") else 0
    return rows


def _listed(projectid: Any) -> Any:
    return (
        LIST_COLUMNS.select()
        .where(Job.projectid == projectid, Job.status == "permanent")
        .order_by(Job.id.desc())
    )


JOB_PAGE = Prepared(lambda arg: _listed(arg("projectid")).limit(arg("limit")).offset(arg("offset")))


def count_jobs(projectid: int) -> dict[str, int]:
    """Count the project's permanent jobs."""
    n = (
        Job.select(fn.COUNT(Job.id))
        .where(Job.projectid == projectid, Job.status == "permanent")
        .scalar()
    )
    return {"permanent": n}


def get_job(projectid: int, jobuuid: str, name: str | None = None) -> dict[str, Any]:
    """Return a permanent job with its steps in order; ``jobuuid='byname'`` looks up ``name``
    and, as OpenC3 does, answers ``{}`` when there is no such job (the CI flow page relies
    on it)."""
    if jobuuid == "byname":
        name = BYNAME["name"].clean("name", name)
        try:
            job = _by_name(projectid, name)
        except NotFound:
            return {}
    else:
        job = live_job(projectid, jobuuid, permanent_only=True)
    detail = as_dict(job, DETAIL_FIELDS)
    detail["data"] = [steps.shape(kind, row) for kind, row in steps.load(job.uuids)]
    return detail


def delete_job(projectid: int, jobuuid: str, user: str, byname: bool = False) -> bool:
    """Soft delete a job, by uuid or by name."""
    job = (
        _by_name(projectid, jobuuid, permanent_only=False)
        if byname
        else live_job(projectid, jobuuid)
    )
    return soft_delete(job, user, milliseconds=False)


COPY = {
    "fromname": Field(required=True, max_len=100, allow_empty=False),
    "toname": Field(required=True, max_len=100, allow_empty=False),
    "fromprojectid": Field(int, minimum=0),
    "toprojectid": Field(int, minimum=0),
}


def copy_job(projectid: int, params: dict[str, Any], principal: auth.Principal) -> str:
    """Deep-copy a job (steps, variables, status) under a new name, possibly across projects.

    The caller needs read on the source project and write on the target project.
    """
    values = check(params, COPY)
    src_pid = projectid if values["fromprojectid"] is None else values["fromprojectid"]
    dst_pid = projectid if values["toprojectid"] is None else values["toprojectid"]
    auth.require(principal, src_pid, "read")
    auth.require(principal, dst_pid, "write")
    source = _by_name(src_pid, values["fromname"], permanent_only=False)
    jobuuid = new_uuid()
    with database.atomic(), unique("toname", values["toname"]):
        refs = []
        for n, (kind, row) in enumerate(steps.load(source.uuids), start=1):
            raw = {**steps.shape(kind, row), "plugin_type": kind}
            try:  # re-checked in the target project: its groups and scripts must be visible there
                step = steps.validate_step(raw, dst_pid, admin=principal.admin)
            except InvalidInput as e:
                raise InvalidInput(f"step {n}: {e.info}") from None
            except Forbidden as e:
                raise Forbidden(f"step {n}: {e.info}") from None
            refs.append(steps.store(kind, step, jobuuid))
        Job.create(
            projectid=dst_pid,
            uuid=jobuuid,
            name=values["toname"],
            uuids=",".join(refs),
            status=source.status,
            mon_ids=source.mon_ids,
            mon_status=source.mon_status,
            create_user=principal.name,
            edit_user=principal.name,
        )
        for v in Variable.select().where(Variable.jobuuid == source.uuid):
            Variable.create(
                jobuuid=jobuuid,
                name=v.name,
                value=v.value,
                describe=v.describe,
                option=v.option,
                env=v.env,
                create_user=principal.name,
            )
    return jobuuid
