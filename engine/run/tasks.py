"""Tasks: launching runs (job, byname, redo, single steps) and reading them back."""

import datetime
import functools
import json
from typing import Any, cast

import yaml
from peewee import fn

from engine.access import auth
from engine.catalog import jobs, steps, variables
from engine.errors import Conflict, InvalidInput, NotFound
from engine.machines import nodeinfo
from engine.run import queue
from engine.run.shapes import StepLaunch, TaskDetail, TaskRow
from engine.store import clock
from engine.store.ids import new_uuid
from engine.store.listing import DATE, Columns, day, page_bounds, paged, time_range
from engine.store.models import Job, Task, database
from engine.store.prepared import Prepared
from engine.store.records import live
from engine.store.validate import ALNUM, Field, check

LIST_FIELDS = (
    "id",
    "uuid",
    "name",
    "user",
    "slave",
    "status",
    "starttime",
    "finishtime",
    "calltype",
    "jobtype",
    "jobuuid",
    "runtime",
    "reason",
    "extid",
)
DETAIL_FIELDS = LIST_FIELDS + (
    "mutex",
    "mutex_policy",
    "notify",
    "pid",
    "starttimems",
    "finishtimems",
    "create_time",
)
MAX_VARIABLES = 200

LAUNCH = {
    "jobuuid": Field(required=True, pattern=ALNUM, max_len=20),
    "variable": Field(dict, default={}),
    "mutex": Field(default="", pattern=ALNUM, max_len=100),
    "mutex_policy": Field(default="fail", choices=jobs.MUTEX_POLICIES, allow_empty=False),
}
BYNAME = {
    "jobname": Field(required=True, max_len=100, allow_empty=False),
    "variable": Field(dict, default={}),
    "uuid": Field(pattern=r"[A-Za-z0-9]{12}", max_len=12),
    "mutex": Field(default="", pattern=ALNUM, max_len=100),
    "mutex_policy": Field(default="fail", choices=jobs.MUTEX_POLICIES, allow_empty=False),
}
LIST = {
    "name": Field(max_len=200),
    "user": Field(max_len=100),
    "status": Field(pattern=ALNUM, max_len=20),
    "taskuuid": Field(pattern=ALNUM, max_len=20),
    "jobtype": Field(choices=("jobs", "plugin_cmd", "plugin_scp", "plugin_approval")),
    "time_start": Field(pattern=DATE),
    "time_end": Field(pattern=DATE),
}


TOTAL = {
    "time_start": Field(required=True, pattern=DATE),
    "time_end": Field(required=True, pattern=DATE),
}
REDO = {"taskuuid": Field(required=True, pattern=ALNUM, max_len=20)}
VARIABLE = {"variable": Field(dict, default={})}  # of a single step run on its own
AUTHORIZATION = {
    "group": Field(required=True, max_len=200, allow_empty=False),
    "jobname": Field(required=True, max_len=100, allow_empty=False),
}
BYMON = {
    "jobname": Field(required=True, max_len=100, allow_empty=False),
    "endpoint": Field(required=True, pattern=r"[A-Za-z0-9._:-]+", max_len=200),
    "tpl_id": Field(required=True, pattern=r"[A-Za-z0-9_./]+", max_len=200),
    "exp_id": Field(required=True, pattern=r"[A-Za-z0-9_./]+", max_len=200),
}


def check_variables(raw: dict[str, Any], field: str = "variable") -> dict[str, str]:
    """Return a task's variable hash as ``{name: text}``, or raise naming the bad entry."""
    if len(raw) > MAX_VARIABLES:
        raise InvalidInput(f"{field}: at most {MAX_VARIABLES} variables")
    out: dict[str, str] = {}
    for name, value in raw.items():
        Field(required=True, pattern=r"[A-Za-z0-9_]+", max_len=200).clean(f"{field}.{name}", name)
        if isinstance(value, (dict, list)):
            raise InvalidInput(f"{field}.{name}: must be a string")
        out[name] = Field(max_len=4000).clean(f"{field}.{name}", "" if value is None else value)
    return out


def _create(
    projectid: int,
    principal: auth.Principal,
    *,
    name: str,
    jobtype: str,
    jobuuid: str,
    variable: dict[str, Any],
    mutex: str = "",
    mutex_policy: str = "fail",
    uuid: str | None = None,
    calltype: str | None = None,
    extid: str = "",
) -> Task:
    task = Task.create(
        projectid=projectid,
        uuid=uuid or new_uuid(),
        name=name,
        user=principal.name,
        calltype=calltype or principal.calltype,
        jobtype=jobtype,
        jobuuid=jobuuid,
        mutex=mutex,
        mutex_policy=mutex_policy,
        variable=json.dumps(variable, ensure_ascii=False),
        extid=extid,
    )
    return task


def _launch(task: Task) -> str:
    queue.enqueue_run(task.uuid)
    return task.uuid


def run_job(projectid: int, params: dict[str, Any], principal: auth.Principal) -> str:
    """Start a job by uuid with an optional ``variable`` hash; return the task uuid."""
    values = check(params, LAUNCH)
    try:
        job = jobs.live_job(projectid, values["jobuuid"])
    except NotFound as e:  # an id in the body is bad input, not a missing resource
        raise InvalidInput(e.info) from None
    auth.require(principal, projectid, variables.launch_role(job.uuid))
    return _start_job(projectid, principal, job, values)


def run_job_byname(projectid: int, params: dict[str, Any], principal: auth.Principal) -> str | None:
    """Start a job by name. A given ``uuid`` makes the call idempotent: if that task exists,
    nothing is created and ``None`` is returned."""
    values = check(params, BYNAME)
    job = live(Job, Job.projectid == projectid, Job.name == values["jobname"])
    if job is None:
        raise InvalidInput(f"jobname: job {values['jobname']} does not exist")
    if values["uuid"] and Task.select().where(Task.uuid == values["uuid"]).exists():
        check_variables(values["variable"])
        return None
    return _start_job(projectid, principal, job, values, uuid=values["uuid"])


def _start_job(
    projectid: int,
    principal: auth.Principal,
    job: Job,
    values: dict[str, Any],
    uuid: str | None = None,
) -> str:
    """Store a task of ``job`` with the checked launch ``values`` and queue it."""
    steps.require_operator_sources(steps.load(job.uuids), principal.admin)
    variable = check_variables(values["variable"])
    with database.atomic():
        task = _create(
            projectid,
            principal,
            name=job.name,
            jobtype="jobs",
            jobuuid=job.uuid,
            variable=variable,
            mutex=values["mutex"],
            mutex_policy=values["mutex_policy"],
            uuid=uuid,
        )
    return _launch(task)


def run_step(
    projectid: int, kind: str, params: dict[str, Any], principal: auth.Principal
) -> StepLaunch:
    """Start a single cmd, scp or approval step (OpenC3's plugin_cmd / plugin_scp /
    plugin_approval); return the task."""
    values = dict(params)
    values["plugin_type"] = kind
    values.setdefault("name", f"quick {kind}")
    step = steps.validate_step(values, projectid, direct=True)
    variable = check_variables(check(params, VARIABLE)["variable"])
    with database.atomic():
        ref = steps.store(kind, step, None)
        task = _create(
            projectid,
            principal,
            name=step["name"],
            jobtype=f"plugin_{kind}",
            jobuuid=ref.split("_", 1)[1],
            variable=variable,
        )
    _launch(task)
    return {
        "slave": task.slave or "any",
        "uuid": task.uuid,
        "loguuid": f"{task.uuid}{task.jobuuid}{kind}",
    }


def redo(projectid: int, params: dict[str, Any], principal: auth.Principal) -> str:
    """Start a task again with the same job, variables and mutex; return the new uuid."""
    values = check(params, REDO)
    old = Task.get_or_none(Task.uuid == values["taskuuid"], Task.projectid == projectid)
    if old is None:
        raise InvalidInput(f"taskuuid: task {values['taskuuid']} does not exist")
    if old.jobtype == "jobs":
        job = Job.get_or_none(Job.uuid == old.jobuuid)
        if job is not None:
            steps.require_operator_sources(steps.load(job.uuids), principal.admin)
    with database.atomic():
        task = _create(
            projectid,
            principal,
            name=old.name,
            jobtype=old.jobtype,
            jobuuid=old.jobuuid,
            variable=json.loads(old.variable),
            mutex=old.mutex,
            mutex_policy=old.mutex_policy,
            extid=old.extid,
        )
    return _launch(task)


LIST_COLUMNS = Columns(Task, LIST_FIELDS + ("variable",))
DETAIL_COLUMNS = Columns(Task, DETAIL_FIELDS + ("variable",))
YAML_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml's, when built with it
YAML_KEPT_CHARS = 4096  # variable texts up to this long keep their YAML (a task's never changes)


def _shape(task: dict[str, Any]) -> dict[str, Any]:
    """Finish a task row of LIST_COLUMNS or DETAIL_COLUMNS: runtime text, variables as YAML."""
    if task["runtime"] is not None:
        task["runtime"] = f"{task['runtime']:.3f}"
    raw = task["variable"] or "{}"
    task["variable"] = _kept_yaml(raw) if len(raw) <= YAML_KEPT_CHARS else _yaml(raw)
    return task


def _yaml(raw: str) -> str:
    if raw == "{}":
        return ""
    return yaml.dump(
        json.loads(raw), Dumper=YAML_DUMPER, allow_unicode=True, default_flow_style=False
    )


# A list polled again and again shows the same tasks: their YAML is made once per process.
_kept_yaml = functools.lru_cache(maxsize=4096)(_yaml)


def list_tasks(projectid: int, params: dict[str, Any]) -> list[TaskRow]:
    """List the project's tasks, newest first (filters: name, user, status, taskuuid, dates)."""
    values = check(params, LIST)
    if not any(values.values()):  # no filter: the page a poll asks for
        rows = LIST_COLUMNS.rows(TASK_PAGE, projectid=projectid, **page_bounds(params))
        return cast("list[TaskRow]", [_shape(t) for t in rows])
    query = _listed(projectid)
    if values["name"]:
        query = query.where(Task.name.contains(values["name"]))
    for column in ("user", "status", "jobtype"):
        if values[column]:
            query = query.where(getattr(Task, column) == values[column])
    if values["taskuuid"]:
        query = query.where(Task.uuid == values["taskuuid"])
    query = time_range(query, Task.create_time, "time_start", "time_end", values)
    return cast("list[TaskRow]", [_shape(t) for t in LIST_COLUMNS.rows(paged(query, params))])


def _listed(projectid: Any) -> Any:
    return LIST_COLUMNS.select().where(Task.projectid == projectid).order_by(Task.id.desc())


TASK_PAGE = Prepared(
    lambda arg: _listed(arg("projectid")).limit(arg("limit")).offset(arg("offset"))
)
TASK_DETAIL = Prepared(
    lambda arg: (
        DETAIL_COLUMNS.select()
        .where(Task.uuid == arg("uuid"), Task.projectid == arg("projectid"))
        .limit(1)
    )
)


def _counts(projectid, *where):
    rows = (
        Task.select(Task.status, fn.COUNT(Task.id).alias("n"))
        .where(Task.projectid == projectid, *where)
        .group_by(Task.status)
        .tuples()
    )
    counts = {"success": 0, "running": 0, "fail": 0}
    counts.update({status: n for status, n in rows})
    return counts


def count_tasks(projectid: int, today: datetime.datetime | None = None) -> dict[str, int]:
    """Count the project's tasks by status, for tasks started in the current month."""
    today = today or clock.now()
    first = today.replace(day=1, hour=0, minute=0, second=0)
    return _counts(projectid, Task.starttime >= first)


def total_count(projectid: int, params: dict[str, Any]) -> dict[str, int]:
    """Count the project's tasks by status, for tasks started from ``time_start`` to
    ``time_end`` (days, both included)."""
    values = check(params, TOTAL)
    return _counts(
        projectid,
        Task.starttime >= day("time_start", values["time_start"]),
        Task.starttime <= day("time_end", values["time_end"], end=True),
    )


def get_task(projectid: int, uuid: str) -> TaskDetail:
    """Return one task of the project."""
    task = DETAIL_COLUMNS.first(TASK_DETAIL, uuid=uuid, projectid=projectid)
    if task is None:
        raise NotFound(f"uuid: task {uuid} does not exist")
    return cast(TaskDetail, _shape(task))


def task_of(projectid: int, uuid: str, field: str = "taskuuid") -> Task:
    """Return the Task row of the project, or raise NotFound naming ``field``."""
    task = Task.get_or_none(Task.uuid == uuid, Task.projectid == projectid)
    if task is None:
        raise NotFound(f"{field}: task {uuid} does not exist")
    return task


def authorization(projectid: int, params: dict[str, Any]) -> int:
    """Answer 1 when job ``jobname`` of the project may be run with the control role by JOBX
    group ``group`` (its ``_authorization_`` is ``true`` or that group), else 0."""
    values = check(params, AUTHORIZATION)
    job = live(Job, Job.projectid == projectid, Job.name == values["jobname"])
    if job is None:
        return 0
    return 1 if variables.launch_role(job.uuid, group=values["group"]) == "control" else 0


def run_job_bymon(projectid: int, params: dict[str, Any], principal: auth.Principal) -> str:
    """Start a job for a monitoring alert: the job's ``mon_status`` must be on and ``tpl_id``
    or ``exp_id`` one of its ``mon_ids``; variable ``ip`` is the endpoint's inner address.
    Refused while the job already has a queued, running or waiting task. Return the uuid."""
    values = check(params, BYMON)
    job = live(Job, Job.projectid == projectid, Job.name == values["jobname"], Job.mon_status == 1)
    if job is None:
        raise InvalidInput(f"jobname: no job {values['jobname']} with its monitor trigger on")
    allowed = [i for i in (job.mon_ids or "").split(",") if i]
    if values["tpl_id"] not in allowed and values["exp_id"] not in allowed:
        raise InvalidInput("tpl_id: neither tpl_id nor exp_id is one of the job's mon_ids")
    busy = Task.select().where(
        Task.projectid == projectid,
        Task.jobuuid == job.uuid,
        Task.jobtype == "jobs",
        Task.status.in_(["init", "running", "waiting"]),  # queued counts too: one per alert
    )
    if busy.exists():
        raise Conflict(f"jobname: job {job.name} already has a queued or running task")
    ip = next(
        (
            m["inip"] or m["exip"] or m["name"]
            for m in nodeinfo.machines(projectid)
            if m["name"] == values["endpoint"]
        ),
        values["endpoint"],
    )
    launch = {"variable": {"ip": ip}, "mutex": "", "mutex_policy": "fail"}
    return _start_job(projectid, principal, job, launch)
