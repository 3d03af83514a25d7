"""The per-host results of a step's attempts: the rows, storing them, and whom a retry runs."""

from engine.run.lifecycle import durably
from engine.run.shapes import HostRow
from engine.store.db import database
from engine.store.models import HostResult

NOT_RUN_AGAIN = "not run again: its outcome is unknown (it may have run the step)"


def row(
    taskuuid: str,
    stepuuid: str,
    attempt: int,
    host: str,
    status: str,
    rc: int | None = None,
    start: float | None = None,
    end: float | None = None,
    stdout: str | None = "",
    stderr: str | None = "",
    msg: str = "",
    batch: int | None = None,
) -> HostRow:
    """One host's result of one attempt (in ``batch`` of a rollout), as a row to insert."""
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
        "batch": batch,
    }


def retry_hosts(
    taskuuid: str, stepuuid: str, attempt: int, retry_unknown: bool
) -> tuple[set[str], list[str]]:
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


def save(taskuuid: str, stepuuid: str, attempt: int, rows: list[HostRow]) -> None:
    """Store the host results of one attempt (safe to repeat after a lost connection)."""
    if not rows:
        return

    def replace() -> None:
        with database.atomic():
            HostResult.delete().where(
                HostResult.taskuuid == taskuuid,
                HostResult.stepuuid == stepuuid,
                HostResult.attempt == attempt,
                HostResult.host.in_([r["host"] for r in rows]),
            ).execute()
            HostResult.insert_many(rows).execute()

    durably(replace, what=f"task {taskuuid}: host results")
