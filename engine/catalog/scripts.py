"""Scripts: stored script bodies, per project plus the global ones of project 0."""

from typing import Any

from engine.store.listing import as_dict, common_filters, paged
from engine.store.models import Job, PluginCmd, Script, database
from engine.store.records import find, in_project, row_id, save, soft_delete, unique
from engine.store.validate import NO_CONTROL, Field, check

TYPES = ("shell", "perl", "python", "php", "auto")
LIST_FIELDS = (
    "id",
    "projectid",
    "name",
    "type",
    "create_user",
    "create_time",
    "edit_user",
    "edit_time",
)
SCRIPT = {
    "name": Field(required=True, max_len=100, allow_empty=False),
    "type": Field(required=True, choices=TYPES),
    "cont": Field(required=True, pattern=NO_CONTROL, max_len=65536, allow_empty=False),
}
LIST_FILTERS = {"type": Field(choices=TYPES, allow_empty=False)}  # "" means any type


def _citing_jobs(script_ids: list[int]) -> dict[int, str]:
    """Map script id -> sorted names of permanent jobs whose cmd steps cite it."""
    if not script_ids:
        return {}
    rows: Any = (  # objects(): each row carries the job's columns too
        PluginCmd.select(PluginCmd.scripts_cont, Job.name, Job.uuids, PluginCmd.uuid)
        .join(Job, on=(PluginCmd.jobuuid == Job.uuid))
        .where(
            PluginCmd.scripts_type == "cite",
            Job.status == "permanent",
            PluginCmd.scripts_cont.in_([str(i) for i in script_ids]),
        )
        .objects()
    )
    found: dict[int, set[str]] = {}
    for r in rows:
        if f"cmd_{r.uuid}" in r.uuids.split(","):
            found.setdefault(int(r.scripts_cont), set()).add(r.name)
    return {k: ",".join(sorted(v)) for k, v in found.items()}


def list_scripts(projectid: int, params: dict[str, Any]) -> list[dict[str, Any]]:
    """List the project's scripts and the global ones, with the jobs citing each."""
    query = Script.select().where(
        Script.projectid.in_([projectid, 0]), Script.status == "available"
    )
    query = common_filters(query, Script, params)
    kind = check(params, LIST_FILTERS)["type"]
    if kind:
        query = query.where(Script.type == kind)
    rows = list(paged(query.order_by(Script.id.desc()), params))
    jobs = _citing_jobs([r.id for r in rows])
    return [{**as_dict(r, LIST_FIELDS), "jobname": jobs.get(r.id, "")} for r in rows]


def get_script(projectid: int, scriptsid: int | str) -> dict[str, Any]:
    """Return one script of the project or a global one, with its content."""
    sid = row_id("scriptsid", scriptsid)
    row = find(
        Script, f"scriptsid: script {sid}", Script.id == sid, Script.projectid.in_([projectid, 0])
    )
    return as_dict(row, (*LIST_FIELDS, "cont"))


def save_script(
    projectid: int, params: dict[str, Any], user: str, scriptsid: int | str | None = None
) -> int:
    """Create a script, or replace one of this project's own scripts; return its id."""
    values = check(params, SCRIPT)
    with database.atomic(), unique("name", values["name"]):
        row = None
        if scriptsid is not None:
            row = in_project(Script, projectid, "scriptsid", scriptsid, "script")
        return save(Script, projectid, values, user, row).id


def delete_script(projectid: int, scriptsid: int | str, user: str) -> bool:
    """Soft delete one of this project's own scripts."""
    row = in_project(Script, projectid, "scriptsid", scriptsid, "script")
    return soft_delete(row, user, milliseconds=False)
