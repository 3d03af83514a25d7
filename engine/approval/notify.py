"""Tell each approver that an approval waits for them, with their one-time link.

Channels are the task notifications' own: email through ``OPSJOB_SMTP_URL`` to the approver's
address (a user's email, or the entry itself when it holds ``@``), SMS through
``OPSJOB_SMS_WEBHOOK`` to the approver's name, and the project's webhook. Texts come from the
environment keys ``approvalTemplateEmailTitle``, ``approvalTemplateEmailContent`` and
``approvalTemplateSmsContent`` (``${name}``, ``${cont}``, ``${submitter}``, ``${taskuuid}``,
``${approver}``, ``${link}``; ``${uuid}`` is the link's token, as OpenC3's templates build
their links from it: ``.../approval/fast/${uuid}``). Each attempt is a ``notify_log`` row of
the task (status ``approval``, event the approval's uuid); the row's ``notifystatus`` ends
``done``, ``fail`` or ``skip`` (no channel could reach the approver).
"""

import logging
from typing import TYPE_CHECKING, Any

from engine.catalog import environment
from engine.messages import notifications, notifiers
from engine.store.db import database
from engine.store.models import Approval, NotifyLog, Project, Task, User

if TYPE_CHECKING:
    from huey import Huey

    from engine.store.settings import Settings

log = logging.getLogger(__name__)

DEFAULTS = {
    "approvalTemplateEmailTitle": "approval: ${name} (project ${projectid})",
    "approvalTemplateEmailContent": (
        "${submitter} asks for your approval of ${name} (task ${taskuuid}):\n\n${cont}\n\n"
        "Approve or refuse: ${link}\n"
    ),
    "approvalTemplateSmsContent": "approval ${name} by ${submitter}: ${link}",
}
_state: dict[str, Any] = {"settings": None, "send": None}


def register(huey: "Huey", settings: "Settings") -> None:
    _state["settings"] = settings
    _state["send"] = huey.task(name="opsjob.approval_notify")(send)


def link(token: str) -> str:
    """The login-free page of one approval: ``<OPSJOB_PUBLIC_URL>/approval/fast/<token>``."""
    base = (_state["settings"].public_url if _state["settings"] else "").rstrip("/")
    return f"{base}/approval/fast/{token}"


def queue(taskuuid: str, tokens: dict[str, str]) -> None:
    """Queue the notifications of a step's new rows (``{row uuid: token}``)."""
    if _state["send"] is None:
        return
    try:
        _state["send"](taskuuid, tokens)
    except Exception:  # the rows are stored: approvers still see them in GET /approval
        log.exception("task %s: could not queue the approval notifications", taskuuid)


def send(taskuuid: str, tokens: dict[str, str]) -> None:
    """Queue task: notify the approver of each row in ``tokens``."""
    with database.connection_context():
        task = Task.get_or_none(Task.uuid == taskuuid)
        if task is None:
            return
        env = environment.get_all()
        for uuid, token in tokens.items():
            row = Approval.get_or_none(Approval.uuid == uuid)
            if row is not None and row.opinion == "unconfirmed":
                _one(task, row, token, env)


def _one(task: Task, row: Approval, token: str, env: dict[str, str]) -> None:
    values: dict[str, Any] = {
        **notifications.task_fields(task, "waiting"),
        "notifytype": "approval",
        "name": row.name,
        "cont": row.cont,
        "submitter": row.submitter,
        "taskuuid": task.uuid,
        "approver": row.user,
        "uuid": token,  # OpenC3's templates build their links from ${uuid}
        "link": link(token),
    }

    def text(key: str) -> str:
        return notifications.render(env.get(key) or DEFAULTS[key], values)

    if "@" in row.user:
        address = row.user
    else:
        user = User.get_or_none(User.name == row.user)
        address = user.email if user is not None else ""
    project = Project.get_or_none(Project.id == task.projectid)
    fields = notifications.task_fields(task, "waiting")
    fields["notifytype"] = "approval"
    note = notifiers.Note(
        calltype=task.calltype.capitalize(),
        status="Waiting",
        title=text("approvalTemplateEmailTitle").split("\n", 1)[0],
        content=text("approvalTemplateEmailContent"),
        sms=text("approvalTemplateSmsContent"),
        names=[row.user],
        emails=[address] if address else [],
        without_email=[] if address else [row.user],
        fields=fields,
        webhook=project.webhook if project else "",
        env=env,
    )
    settings = _state["settings"]
    wanted = {
        "email": bool(settings and settings.smtp_url and address),
        "sms": bool(settings and settings.sms_webhook),
        "webhook": bool(note.webhook),
    }
    outcomes = []
    for channel in notifiers.load(settings):
        if not wanted.get(channel.name):
            continue
        outcome, detail = notifications.send_on(channel, note, channel.recipients(note))
        outcomes.append(outcome)
        NotifyLog.create(
            taskuuid=task.uuid,
            event=row.uuid,
            status="approval",
            channel=channel.name,
            outcome=outcome,
            recipients=",".join(channel.recipients(note))[:2000],
            detail=detail[:500],
        )
    status = "done" if "ok" in outcomes else ("fail" if outcomes else "skip")
    Approval.update(notifystatus=status).where(Approval.id == row.id).execute()
