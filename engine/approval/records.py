"""Approval rows: one per approver of one approval step of one task, and the opinions on them.

An approver gives an opinion once (``unconfirmed`` -> ``agree`` | ``refuse``), signed in
(``/approval``) or through the link of their notification, which carries a one-time token:
only its SHA-256 is stored, and it is cleared when used or when the step ends. When the step
does not need everyone, the first opinion closes the other rows (``_close_by_sys_``), as
OpenC3 does. A change wakes the waiting task; the worker that resumes it reads the outcome.
"""

import hashlib
import secrets
import time
from typing import Any

from engine.errors import Conflict, InvalidInput, NotFound
from engine.insight import audit
from engine.run import lifecycle
from engine.store.clock import now
from engine.store.db import database
from engine.store.ids import new_uuid
from engine.store.listing import as_dict
from engine.store.models import Approval
from engine.store.validate import ALNUM, Field, check

OPINION = {
    "uuid": Field(required=True, pattern=ALNUM, max_len=20),
    "opinion": Field(required=True, choices=("agree", "refuse")),
}
TOKEN = Field(required=True, pattern=r"[A-Za-z0-9_-]{20,64}", max_len=64)
LIST_FIELDS = (
    "id",
    "taskuuid",
    "uuid",
    "name",
    "opinion",
    "remarks",
    "create_time",
    "finishtime",
    "submitter",
    "oauuid",
    "notifystatus",
)
DETAIL_FIELDS = (*LIST_FIELDS, "cont", "user")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(
    *,
    projectid: int,
    taskuuid: str,
    stepuuid: str,
    name: str,
    cont: str,
    approvers: list[str],
    submitter: str,
    everyone: str,
    deadline: float,
    agreed: set[str],
) -> dict[str, str]:
    """Store one row per approver (those in ``agreed`` already agree); return each new
    unconfirmed row's one-time token by row uuid."""
    tokens: dict[str, str] = {}
    with database.atomic():
        for user in approvers:
            token = secrets.token_urlsafe(24)
            auto = user in agreed
            row = Approval.create(
                projectid=projectid,
                taskuuid=taskuuid,
                stepuuid=stepuuid,
                uuid=new_uuid(),
                name=name,
                cont=cont,
                user=user,
                submitter=submitter,
                everyone=everyone,
                opinion="agree" if auto else "unconfirmed",
                remarks="relaxed: the submitter is an approver" if auto else "",
                notifystatus="skip" if auto else None,
                token_hash=None if auto else _hash(token),
                deadline=deadline,
                finishtime=now() if auto else None,
            )
            if not auto:
                tokens[row.uuid] = token
    return tokens


def rows_of(taskuuid: str, stepuuid: str) -> list[Approval]:
    return list(
        Approval.select()
        .where(Approval.taskuuid == taskuuid, Approval.stepuuid == stepuuid)
        .order_by(Approval.id)
    )


def outcome(rows: list[Approval]) -> str:
    """Return ``refuse`` (any refusal), ``agree`` (everyone, or any one when not everyone
    must agree) or ``pending``."""
    opinions = [r.opinion for r in rows]
    if "refuse" in opinions:
        return "refuse"
    if not rows:
        return "agree"
    if rows[0].everyone == "on":
        return "agree" if all(o == "agree" for o in opinions) else "pending"
    return "agree" if "agree" in opinions else "pending"


def close(taskuuid: str, stepuuid: str, remarks: str) -> None:
    """End a step's open rows (a timeout, a task that ended): they take no opinion any more."""
    Approval.update(token_hash=None, remarks=remarks[:500]).where(
        Approval.taskuuid == taskuuid,
        Approval.stepuuid == stepuuid,
        Approval.opinion == "unconfirmed",
    ).execute()
    Approval.update(token_hash=None).where(
        Approval.taskuuid == taskuuid, Approval.stepuuid == stepuuid
    ).execute()


def close_task(taskuuid: str, status: str) -> None:
    """Close every open row of a task that ended (killed, failed, lost)."""
    Approval.update(token_hash=None, remarks=f"_close_by_sys_ task {status}").where(
        Approval.taskuuid == taskuuid,
        Approval.opinion == "unconfirmed",
        Approval.token_hash.is_null(False),
    ).execute()


def _decide(row: Approval, opinion: str, who: str) -> None:
    stamp = now()
    changed = (
        Approval.update(opinion=opinion, finishtime=stamp, token_hash=None)
        .where(
            Approval.id == row.id,
            Approval.opinion == "unconfirmed",
            Approval.token_hash.is_null(False),  # open: neither used nor closed
            Approval.deadline > time.time(),
        )
        .execute()
    )
    if not changed:
        raise Conflict(f"uuid: approval {row.uuid} is closed (opinion {row.opinion}, or timed out)")
    if row.everyone != "on":
        Approval.update(
            opinion=opinion,
            finishtime=stamp,
            token_hash=None,
            remarks=f"_close_by_sys_ not.everyone {who}"[:500],
        ).where(
            Approval.taskuuid == row.taskuuid,
            Approval.stepuuid == row.stepuuid,
            Approval.opinion == "unconfirmed",
        ).execute()


def give(row: Approval, opinion: str, who: str, via: str, source: str) -> None:
    """Record ``who``'s ``opinion`` on ``row``, leave an audit entry, wake the task."""
    with database.atomic():
        _decide(row, opinion, who)
        audit.record(
            user=who,
            via=via,
            method="POST",
            route="/approval",
            obj="approval",
            object_id=row.uuid,
            source=source,
            projectid=row.projectid,
            fields={"uuid": row.uuid, "taskuuid": row.taskuuid, "opinion": opinion},
        )
    lifecycle.wake(row.taskuuid)


def opinion_of_user(params: Any, user: str, source: str) -> int:
    """``POST /approval``: the signed-in approver ``user`` agrees or refuses row ``uuid``."""
    values = check(params, OPINION)
    row = Approval.get_or_none(Approval.uuid == values["uuid"], Approval.user == user)
    if row is None:
        raise NotFound(f"uuid: approval {values['uuid']} does not exist for {user}")
    give(row, values["opinion"], user, "api", source)
    return 1


def by_token(token: Any) -> Approval:
    """Return the open row a link's token opens; a used or unknown token is a 404."""
    token = TOKEN.clean("token", token)
    row = Approval.get_or_none(Approval.token_hash == _hash(token))
    if row is None:
        raise NotFound("token: this approval link is unknown or was used already")
    return row


def opinion_by_token(token: Any, opinion: Any, source: str) -> Approval:
    """The login-free link: give ``opinion`` on the row ``token`` opens, as its approver."""
    if opinion not in ("agree", "refuse"):
        raise InvalidInput("opinion: must be one of agree, refuse")
    row = by_token(token)
    give(row, opinion, row.user, "link", source)
    return Approval.get_by_id(row.id)


def mine(user: str) -> list[dict[str, Any]]:
    """``GET /approval``: the last 100 rows addressed to ``user``, newest first."""
    rows = Approval.select().where(Approval.user == user).order_by(Approval.id.desc()).limit(100)
    return [as_dict(r, LIST_FIELDS) for r in rows]


def siblings(row: Approval) -> list[dict[str, Any]]:
    """Every row of ``row``'s task (its approval steps' approvers), oldest first."""
    rows = Approval.select().where(Approval.taskuuid == row.taskuuid).order_by(Approval.id)
    return [as_dict(r, DETAIL_FIELDS) for r in rows]


def detail_of_user(uuid: str, user: str) -> list[dict[str, Any]]:
    """``GET /approval/:uuid``: the rows of the task of ``user``'s row ``uuid``."""
    Field(pattern=r"[A-Za-z0-9]{12}", max_len=12).clean("uuid", uuid)  # as new_uuid() makes
    row = Approval.get_or_none(Approval.uuid == uuid, Approval.user == user)
    return siblings(row) if row is not None else []


def shown(row: Approval) -> dict[str, Any]:
    return as_dict(row, (*DETAIL_FIELDS, "uuid"))
