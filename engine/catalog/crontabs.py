"""Crontabs: a job of the project run on a five-field cron schedule, created switched off."""

from typing import Any

from peewee import fn

from engine.catalog import jobs
from engine.errors import InvalidInput, NotFound
from engine.schedule import cron, scheduler
from engine.store.clock import fmt, now
from engine.store.listing import as_dict, common_filters, paged
from engine.store.models import Crontab
from engine.store.records import in_project, save, soft_delete
from engine.store.validate import ALNUM, Field, check

STATUSES = ("available", "unavailable")
FIELDS = (
    "id",
    "name",
    "jobuuid",
    "cron",
    "mutex",
    "mutex_policy",
    "status",
    "create_user",
    "create_time",
    "edit_user",
    "edit_time",
)
CRONTAB = {
    "name": Field(required=True, max_len=100, allow_empty=False),
    "jobuuid": Field(required=True, pattern=ALNUM, max_len=20, allow_empty=False),
    "cron": Field(required=True, max_len=cron.MAX_LEN, allow_empty=False),
    "mutex": Field(pattern=ALNUM, max_len=100, default=""),
    # Absent on an edit keeps the crontab's policy (OpenC3 clients do not send it).
    "mutex_policy": Field(choices=jobs.MUTEX_POLICIES, allow_empty=False),
}
STATUS = {"status": Field(required=True, choices=STATUSES)}


def _checked(projectid: int, params: Any) -> dict[str, Any]:
    values = check(params, CRONTAB)
    cron.parse(values["cron"])
    try:
        jobs.live_job(projectid, values["jobuuid"])
    except NotFound:  # an id in the body is bad input, not a missing resource
        raise InvalidInput(f"jobuuid: no job {values['jobuuid']} in project {projectid}") from None
    return values


def _find(projectid: int, crontabid: int | str) -> Crontab:
    return in_project(Crontab, projectid, "crontabid", crontabid, "crontab")


def list_crontabs(projectid: int, params: dict[str, Any]) -> list[dict[str, Any]]:
    """List the project's crontabs, newest first (common filters; paging)."""
    query = Crontab.select().where(Crontab.projectid == projectid, Crontab.status != "deleted")
    query = common_filters(query, Crontab, params)
    return [as_dict(r, FIELDS) for r in paged(query.order_by(Crontab.id.desc()), params)]


def count_crontabs(projectid: int) -> dict[str, int]:
    """Count the project's crontabs that are switched on and off."""
    counts = dict.fromkeys(STATUSES, 0)
    rows: Any = (  # tuples(): (status, count) pairs, not rows
        Crontab.select(Crontab.status, fn.COUNT(Crontab.id))
        .where(Crontab.projectid == projectid, Crontab.status.in_(STATUSES))
        .group_by(Crontab.status)
        .tuples()
    )
    counts.update(rows)
    return counts


def get_crontab(projectid: int, crontabid: int | str, count: int = 5) -> dict[str, Any]:
    """Return one crontab with its next ``count`` fire times in the schedule zone
    (``OPSJOB_TZ``, named in ``tz``)."""
    row = _find(projectid, crontabid)
    upcoming = [fmt(t) for t in cron.next_times(row.cron, scheduler.now_in_zone(), count)]
    return {**as_dict(row, FIELDS), "cont": "", "next": upcoming, "tz": scheduler.zone_name()}


def save_crontab(
    projectid: int, params: dict[str, Any], user: str, crontabid: int | str | None = None
) -> int:
    """Create a crontab (switched off), or edit one of the project's; return its id."""
    values = _checked(projectid, params)
    if values["mutex_policy"] is None:
        del values["mutex_policy"]  # a new crontab gets the default, an edit keeps its own
    row = None if crontabid is None else _find(projectid, crontabid)
    return save(Crontab, projectid, values, user, row, status="unavailable").id


def set_status(projectid: int, crontabid: int | str, params: dict[str, Any], user: str) -> bool:
    """Switch a crontab on (``available``) or off (``unavailable``)."""
    values = check(params, STATUS)
    row = _find(projectid, crontabid)
    row.status, row.edit_user, row.edit_time = values["status"], user, now()
    row.save()
    return True


def delete_crontab(projectid: int, crontabid: int | str, user: str) -> bool:
    """Soft delete a crontab."""
    return soft_delete(_find(projectid, crontabid), user)
