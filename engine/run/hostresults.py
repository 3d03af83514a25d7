"""The per-host results of a step's attempts: the rows, storing them, and whom a retry runs."""

from engine.run.lifecycle import durably
from engine.store.db import database
from engine.store.models import HostResult

NOT_RUN_AGAIN = "not run again: its outcome is unknown (it may have run the step)"


def row(
    taskuuid,
    stepuuid,
    attempt,
    host,
    status,
    rc=None,
    start=None,
    end=None,
    stdout="",
    stderr="",
    msg="",
):
    """One host's result of one attempt, as a row to insert."""
    return {
        "taskuuid": taskuuid,
        "stepuuid": stepuuid,
        "attempt": attempt,
        "host": host,
        "status": status,
        "rc": rc,
        "starttime": start,
        "finishtime": end,
        "stdout": stdout or "",
        "stderr": stderr or msg or "",
    }


def retry_hosts(taskuuid, stepuuid, attempt, retry_unknown):
    """Hosts a retry after ``attempt`` runs again, and those of unknown outcome it leaves alone.

    Hosts known to have failed run again; hosts whose outcome is unknown (they may have run
    the step) only when the decision asked for them (``retry_unknown``).
    """
    last = HostResult.select(HostResult.host, HostResult.status).where(
        HostResult.taskuuid == taskuuid,
        HostResult.stepuuid == stepuuid,
        HostResult.attempt == attempt,
        HostResult.status != "ok",
    )
    failed = {r.host for r in last if r.status != "unknown"}
    unknown = {r.host for r in last if r.status == "unknown"}
    if retry_unknown:
        return failed | unknown, []
    return failed, sorted(unknown)


def save(taskuuid, stepuuid, attempt, rows):
    """Store the host results of one attempt (safe to repeat after a lost connection)."""
    if not rows:
        return

    def replace():
        with database.atomic():
            HostResult.delete().where(
                HostResult.taskuuid == taskuuid,
                HostResult.stepuuid == stepuuid,
                HostResult.attempt == attempt,
                HostResult.host.in_([r["host"] for r in rows]),
            ).execute()
            HostResult.insert_many(rows).execute()

    durably(replace, what=f"task {taskuuid}: host results")
