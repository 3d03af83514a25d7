"""The third-party interface for external orchestrators: options, dry-run, invoke, query, stop.

Callers name the project in ``project_id`` and the run in ``uuid`` (12 letters or digits) plus
``retry_count``: the task uuid is the first 11 characters of ``uuid`` followed by character
``retry_count`` of ``0-9a-zA-Z``, so every retry is a new, predictable task and repeating a
call with the same pair never starts a second run. Unlike OpenC3, the caller's role is checked
on the project named in ``project_id``; ``query`` and ``stop`` need only ``uuid``.
"""

import os
import string
from typing import TYPE_CHECKING, Any, cast

from peewee import IntegrityError

from engine.access import auth
from engine.catalog import rolling, steps, variables
from engine.errors import Conflict, InvalidInput, NotFound
from engine.playbooks import plan as playbook_plan
from engine.run import control, stepplan, tasks
from engine.run.shapes import DryRun, RunPlan, RunState
from engine.store.models import Job, Subtask, Task, Variable
from engine.store.records import live
from engine.store.validate import Field, check

if TYPE_CHECKING:
    from huey import Huey

    from engine.store.settings import Settings

RETRY_ALPHABET = string.digits + string.ascii_lowercase + string.ascii_uppercase
FINAL = ("success", "fail", "refuse")
ENDED_STEP = ("success", "fail", "ignore", "refuse")
WAITING_PREFIX = "Wait for manual treatment, reason: "
DECISIONS = ("running", "ignore", "fail")

PROJECT = {"project_id": Field(int, required=True, minimum=0, maximum=2**31 - 1)}
RUN = {
    **PROJECT,
    "uuid": Field(required=True, pattern=r"[A-Za-z0-9]{12}", max_len=12),
    "retry_count": Field(int, default=0, minimum=0, maximum=len(RETRY_ALPHABET) - 1),
}
# query and stop: the run alone names the project
LOOKUP = {**RUN, "project_id": Field(int, minimum=0, maximum=2**31 - 1)}
INVOKE = {**RUN, "params": Field(dict, required=True)}  # dry-run and invoke
JOB_PARAMS = {
    "jobname": Field(required=True, max_len=100, allow_empty=False),
    "variable": Field(dict, default={}),
}
VARIABLES = {
    **PROJECT,
    "jobname": Field(required=True, max_len=100, allow_empty=False),
    "exclude": Field(default="", pattern=r"[A-Za-z0-9,_]*", max_len=2000),
}

_settings: dict[str, Any] = {"value": None}


def register(huey: "Huey", settings: "Settings") -> None:
    """Remember the settings (the public URL that query links start with)."""
    _settings["value"] = settings


def derive_uuid(uuid: str, retry_count: int = 0) -> str:
    """Return the task uuid of a third-party run: ``uuid[:11]`` + ``0-9a-zA-Z[retry_count]``."""
    return uuid[:11] + RETRY_ALPHABET[retry_count]


def _project(
    params: dict[str, Any],
    principal: auth.Principal,
    role: str,
    spec: dict[str, Field] = PROJECT,
) -> dict[str, Any]:
    """Check ``params`` and that the caller holds ``role`` on ``project_id``."""
    values = check(params, spec)
    auth.require(principal, values["project_id"], role)
    return values


def _job(projectid: int, jobname: str, field: str = "params.jobname") -> Job:
    job = live(Job, Job.projectid == projectid, Job.name == jobname)
    if job is None:
        raise InvalidInput(f"{field}: job {jobname} does not exist in project {projectid}")
    return job


def _run(
    params: dict[str, Any], principal: auth.Principal, role: str
) -> tuple[int, str, dict[str, Any]]:
    """Check a dry-run/invoke call; return (project id, derived uuid, job params)."""
    values = _project(params, principal, role, RUN)
    job_params = check(check(params, INVOKE)["params"], JOB_PARAMS, prefix="params.")
    return values["project_id"], derive_uuid(values["uuid"], values["retry_count"]), job_params


def job_names(params: dict[str, Any], principal: auth.Principal) -> list[str]:
    """Return the names of the project's permanent jobs."""
    pid = _project(params, principal, "read")["project_id"]
    query = Job.select(Job.name).where(Job.projectid == pid, Job.status == "permanent")
    return [j.name for j in query.order_by(Job.name)]


def job_variables(params: dict[str, Any], principal: auth.Principal) -> list[dict[str, str]]:
    """Return the job's empty-valued variables, as fields a caller has to fill in."""
    values = _project(params, principal, "read", VARIABLES)
    job = _job(values["project_id"], values["jobname"], field="jobname")
    excluded = [n for n in values["exclude"].split(",") if n]
    query = Variable.select().where(Variable.jobuuid == job.uuid, Variable.value == "")
    if excluded:
        query = query.where(Variable.name.not_in(excluded))
    return [
        {"var_name": v.name, "desc": v.describe, "placeholder": "", "type": "text"}
        for v in query.order_by(Variable.describe, Variable.name)
    ]


def plan(projectid: int, job: Job, given: dict[str, str]) -> RunPlan:
    """Plan every step of ``job`` with the variables ``given``, running and storing nothing.

    Return ``{steps, missing, foreign, problems}``: per step its nodes, refused nodes and
    substituted arguments; overall the undefined variables, the nodes outside the project,
    and every other reason a run would stop.
    """
    settings = _settings["value"]
    values = variables.run_values(job.uuid, given)
    report: dict[str, Any] = {"steps": [], "missing": [], "foreign": [], "problems": []}
    for position, (kind, row) in enumerate(steps.load(job.uuids), start=1):
        step = {"kind": kind, **steps.shape(kind, row)}
        try:
            p = stepplan.plan_step(projectid, step, values, settings=settings)
        except InvalidInput as e:  # a node group that does not resolve, a credential gone
            p = stepplan.StepPlan(kind=kind, problems=[e.info])
        problems = list(p.problems)
        if p.runnable and not p.refused and p.make is not None and kind == "playbook":
            problems += playbook_plan.dry_run(p, settings, os.path.join(settings.home, "runs"))
        elif p.runnable and not p.refused and p.make is not None:
            try:
                p.make(p.targets)  # compiling is pure: it only proves the step would run
            except InvalidInput as e:
                problems.append(e.info)
        nodes = [h.name for h in p.targets]
        report["steps"].append(
            {
                "step": position,
                "kind": kind,
                "name": step["name"],
                "uuid": step["uuid"],
                "nodes": nodes,
                "refused": p.refused,
                "missing": p.missing,
                "problems": problems,
                "args": p.args,
                "rollout": [len(b) for b in rolling.batches(nodes, str(step.get("rolling") or ""))],
            }
        )
        for key, found in (("missing", p.missing), ("foreign", p.refused)):
            report[key] += [n for n in found if n not in report[key]]
        report["problems"] += [f"step {position} ({step['name']}): {m}" for m in problems]
    return cast(RunPlan, report)


def _summary(projectid: int, report: RunPlan) -> str:
    parts = []
    if report["missing"]:
        parts.append("params.variable: undefined variables: " + ",".join(report["missing"]))
    if report["foreign"]:
        parts.append(f"nodes not in project {projectid}: " + ",".join(report["foreign"]))
    parts += report["problems"]
    return "; ".join(parts)


def dry_run(params: dict[str, Any], principal: auth.Principal) -> DryRun:
    """Check that a run would start and every step would run, without running or storing
    anything. Return ``{uuid, ok, msg, plan}``."""
    pid, uuid, job_params = _run(params, principal, "write")
    if Task.select().where(Task.uuid == uuid).exists():
        raise Conflict(f"uuid: task {uuid} already exists")
    job = _job(pid, job_params["jobname"])
    steps.require_operator_sources(steps.load(job.uuids), principal.admin)
    given = tasks.check_variables(job_params["variable"], field="params.variable")
    report = plan(pid, job, given)
    msg = _summary(pid, report)
    return {"uuid": uuid, "ok": not msg, "msg": msg or "ok", "plan": report}


def invoke(params: dict[str, Any], principal: auth.Principal) -> str | None:
    """Start the job once per (uuid, retry_count). Return the new task uuid, or None when
    that run already exists."""
    pid, uuid, job_params = _run(params, principal, "write")
    existing = Task.get_or_none(Task.uuid == uuid)
    if existing is not None:
        return _already(existing, pid, uuid)
    caller = auth.Principal(
        name=principal.name,
        user_id=principal.user_id,
        admin=principal.admin,
        roles=principal.roles,
        via_app=True,
    )
    try:
        return tasks.run_job_byname(
            pid,
            {
                "jobname": job_params["jobname"],
                "variable": job_params["variable"],
                "uuid": uuid,
            },
            caller,
        )
    except IntegrityError:  # the same run, started by a concurrent call
        return _already(Task.get(Task.uuid == uuid), pid, uuid)
    except InvalidInput as e:
        raise InvalidInput("params." + e.info) from None


def _already(task, projectid, uuid):
    if task.projectid != projectid:
        raise Conflict(f"uuid: task {uuid} is taken; use another uuid")
    return None


def _task(params: dict[str, Any], principal: auth.Principal, role: str) -> Task:
    """Find a run by ``uuid`` and ``retry_count``, then check ``role`` on its project.

    ``project_id`` is optional (OpenC3's callers send only the uuid); when given, the task
    must be in that project. A task the caller cannot read is reported missing.
    """
    values = check(params, LOOKUP)
    uuid = derive_uuid(values["uuid"], values["retry_count"])
    pid = values["project_id"]
    if pid is not None:
        auth.require(principal, pid, role)
    task = Task.get_or_none(Task.uuid == uuid)
    if (
        task is None
        or not principal.allows(task.projectid, "read")
        or pid not in (None, task.projectid)
    ):
        where = "" if pid is None else f" in project {pid}"
        raise NotFound(f"uuid: task {uuid} does not exist{where}")
    auth.require(principal, task.projectid, role)
    return task


def _waiting(task: Task) -> tuple[str, list[dict[str, str]]]:
    """Return (why the task waits, the controls that release it)."""
    names = {s["uuid"]: s["name"] for s in _step_names(task)}
    subs = Subtask.select().where(Subtask.parent_uuid == task.uuid).order_by(Subtask.position)
    for sub in subs:
        label = f"step {sub.position + 1} ({names.get(sub.uuid, sub.uuid)})"
        base = {"taskuuid": task.uuid, "subtaskuuid": sub.uuid, "subtasktype": sub.subtask_type}
        if sub.status == "decision":
            failed = [
                h["host"]
                for h in control.host_results(task.uuid, sub.uuid, latest_only=True)
                if h["status"] != "ok"
            ]
            why = f"{label} failed on {','.join(failed) or 'its nodes'}"
            return why, [{**base, "control": c} for c in DECISIONS]
        if sub.subtask_type == "approval" and sub.status == "running":
            return f"{label} waits for approval (see /approval)", []
        if sub.status is not None and sub.pause:
            return f"{label} paused: {sub.pause}", [{**base, "control": "next"}]
    return "", []


def _step_names(task: Task) -> list[dict[str, str]]:
    job = Job.get_or_none(Job.uuid == task.jobuuid)
    if task.jobtype != "jobs" or job is None:
        return []
    return [{"uuid": row.uuid, "name": row.name} for _, row in steps.load(job.uuids)]


def _progress(task: Task) -> list[int]:
    rows = list(Subtask.select(Subtask.status).where(Subtask.parent_uuid == task.uuid))
    if task.jobtype != "jobs":
        return [1 if task.status in FINAL else 0, 1]
    total = len(rows) or len(_step_names(task))
    return [sum(1 for r in rows if r.status in ENDED_STEP), total]


def link(task: Task) -> str:
    """Return the address of the task's live log page (``OPSJOB_PUBLIC_URL`` + path)."""
    settings = _settings["value"]
    base = (settings.public_url if settings else "").rstrip("/")
    return f"{base}/slave/{task.slave or 'any'}/tasklog/{task.uuid}"


def query(params: dict[str, Any], principal: auth.Principal) -> RunState:
    """Return a run's state: status complete|fail|running, msg, progress, link, and the
    controls that apply while it waits for a person."""
    task = _task(params, principal, "read")
    status = {"success": "complete", "fail": "fail"}.get(task.status, "running")
    out: RunState = {
        "uuid": task.uuid,
        "status": status,
        "msg": task.reason or "",
        "progress": _progress(task),
        "link": link(task),
    }
    if task.status == "waiting":
        why, ctrl = _waiting(task)
        out["msg"] = WAITING_PREFIX + (why or task.reason or "waiting")
        out["ctrl"] = ctrl
    return out


def stop(params: dict[str, Any], principal: auth.Principal) -> tuple[str, str]:
    """Stop a run. Return ``(uuid, message)``; raise Conflict if it is still running."""
    task = _task(params, principal, "write")
    if task.status in FINAL:
        return task.uuid, f"task {task.uuid} has been closed, status is {task.status}"
    message = control.kill(task.uuid, principal)
    status = Task.select(Task.status).where(Task.uuid == task.uuid).scalar()
    if status not in FINAL:
        raise Conflict(f"uuid: stop requested, but task {task.uuid} is still {status}; query it")
    return task.uuid, message
