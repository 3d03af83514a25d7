"""Task notifications: tell people when a task succeeds, fails or starts waiting.

Delivery runs on the queue, never inside a run: the ``task_changed`` listener queues one
delivery per (task, status entry). Each entry into ``waiting`` is a new notification;
``refuse`` is never notified. A delivery builds one :class:`~engine.messages.notifiers.Note`:

- recipients: the project's notify list, ``_`` meaning the task's user; a name resolves to
  that user's email address for email, an entry containing ``@`` is an address as it is;
- channels: email and SMS when the environment flag ``is<Page|Api|Crontab><Success|Fail|
  Waiting><Email|Sms>`` is the string ``true``; the project's webhook whenever it is set;
- text: the templates ``notifyTemplateEmailTitle`` (first line only),
  ``notifyTemplateEmailContent`` and ``notifyTemplateSmsContent``, with ``${name}`` replaced by
  the task field of that name (plain substitution, nothing is evaluated).

Every attempt on every channel is a ``notify_log`` row. A channel whose receiver is down is
retried with a doubling delay (2, 4, 8 ... seconds, ``OPSJOB_NOTIFY_RETRIES`` times); a
webhook that ``OPSJOB_WEBHOOK_ALLOW`` does not allow (checked again at each delivery) is
``refused`` and not retried. The task's ``notify`` flag ends as OpenC3 has it: 2 delivered,
3 delivery failed, 4 error or refused. The task's own status never depends on its notifications.
"""

import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from engine.catalog import environment
from engine.errors import NotFound
from engine.insight import metrics
from engine.messages import notifiers, outbound
from engine.run import events
from engine.store.clock import fmt
from engine.store.db import database
from engine.store.ids import new_uuid
from engine.store.listing import as_dict
from engine.store.models import Notify, NotifyLog, Project, Task, User

if TYPE_CHECKING:
    from huey import Huey

    from engine.store.settings import Settings

log = logging.getLogger(__name__)

NOTIFIED = ("success", "fail", "waiting")
DEFAULT_TEMPLATES = {
    "notifyTemplateEmailTitle": "projectid: ${projectid} job ${status}",
    "notifyTemplateEmailContent": "task ${uuid} :${status}",
    "notifyTemplateSmsContent": "projectid=${projectid} taskuuid=${uuid}: ${status}",
}
FIELDS = (
    "id",
    "projectid",
    "uuid",
    "name",
    "user",
    "calltype",
    "status",
    "starttime",
    "finishtime",
    "projectname",
    "notifytype",
)
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
RETRY_BASE = 2  # seconds before the first retry; doubled for each next one
FLAG = {"ok": 2, "skipped": 2, "failed": 3, "refused": 4, "error": 4}
LOG_FIELDS = (
    "id",
    "event",
    "status",
    "channel",
    "attempt",
    "outcome",
    "recipients",
    "detail",
    "create_time",
)
_state: dict[str, Any] = {"settings": None, "channels": [], "deliver": None}


def register(huey: "Huey", settings: "Settings") -> None:
    """Load the channels; queue a delivery for every notified task status from now on."""
    _state["settings"] = settings
    outbound.configure(settings.webhook_allow)
    _state["channels"] = notifiers.load(settings)
    _state["deliver"] = huey.task(name="opsjob.notify")(deliver)
    events.subscribe("task_changed", on_task_changed)
    if settings.smtp_url:
        try:
            notifiers.SmtpUrl.parse(settings.smtp_url)
        except notifiers.NotifyError as e:
            log.error("%s; email notifications will be recorded as errors", e)


def on_task_changed(uuid: str, status: str) -> None:
    """Listener: queue the notification of a task that succeeded, failed or waits."""
    if status in NOTIFIED and _state["deliver"] is not None:
        _state["deliver"](uuid, status, new_uuid())


# -- building a notification --------------------------------------------------------------------


def render(template: str, values: Mapping[str, Any]) -> str:
    """Replace every ``${name}`` of ``values`` in ``template``; leave other text as it is."""

    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        return str(values[name]) if name in values else m.group(0)

    return PLACEHOLDER.sub(one, template)


def template(env: Mapping[str, Any], key: str) -> str:
    """Return the template ``key`` from the environment, or OpenC3's default when unset."""
    return env.get(key) or DEFAULT_TEMPLATES[key]


def task_fields(task: Task, status: str) -> notifiers.TaskFields:
    """Return the values templates can name, for ``task`` notified as ``status``."""
    project = Project.get_or_none(Project.id == task.projectid)
    return {
        "id": task.id,
        "projectid": task.projectid,
        "uuid": task.uuid,
        "name": task.name,
        "user": task.user,
        "calltype": task.calltype,
        "status": status,
        "starttime": fmt(task.starttime) or "",
        "finishtime": (fmt(task.finishtime) or "") if status != "waiting" else "",
        "projectname": project.name if project else "",
        "notifytype": "notify",
    }


def recipients(task: Task) -> tuple[list[str], list[str], list[str]]:
    """Return ``(names, emails, without_email)`` for ``task``'s project notify list."""
    entries = (
        Notify.select(Notify.user)
        .where(Notify.projectid == task.projectid, Notify.status != "deleted")
        .order_by(Notify.id)
    )
    names = []
    for entry in entries:
        name = task.user if entry.user == "_" else entry.user
        if name and name not in names:
            names.append(name)
    people = [n for n in names if "@" not in n]
    known = {
        u.name: u.email for u in User.select(User.name, User.email).where(User.name.in_(people))
    }
    emails, without = [], []
    for name in names:
        address = name if "@" in name else known.get(name, "")
        if not address:
            without.append(name)
        elif address not in emails:
            emails.append(address)
    return names, emails, without


def build(task: Task, status: str, env: dict[str, Any] | None = None) -> notifiers.Note:
    """Render the notification of ``task`` entering ``status``."""
    env = environment.get_all() if env is None else env
    values = task_fields(task, status)
    names, emails, without = recipients(task)
    title = template(env, "notifyTemplateEmailTitle").split("\n", 1)[0].rstrip("\r")
    project = Project.get_or_none(Project.id == task.projectid)
    return notifiers.Note(
        calltype=task.calltype.capitalize(),
        status=status.capitalize(),
        title=render(title, values),
        content=render(template(env, "notifyTemplateEmailContent"), values),
        sms=render(template(env, "notifyTemplateSmsContent"), values),
        names=names,
        emails=emails,
        without_email=without,
        fields=values,
        webhook=project.webhook if project else "",
        env=env,
    )


# -- delivering ---------------------------------------------------------------------------------


def deliver(uuid: str, status: str, event: str) -> None:
    """Queue task: deliver the notification ``event`` of task ``uuid`` entering ``status``."""
    with database.connection_context():
        delay = _deliver(uuid, status, event)
    if delay is not None:
        from huey.exceptions import RetryTask

        raise RetryTask(delay=delay)


def _deliver(uuid: str, status: str, event: str) -> int | None:
    """Try every channel still owed; return the delay before a retry, or None when done."""
    task = Task.get_or_none(Task.uuid == uuid)
    if task is None:
        return None
    previous = list(NotifyLog.select().where(NotifyLog.taskuuid == uuid, NotifyLog.event == event))
    attempt = 1 + max((r.attempt for r in previous), default=0)
    settled = {r.channel for r in previous if r.outcome != "failed"}
    Task.update(notify=1).where(Task.uuid == uuid).execute()
    try:
        note = build(task, status)
    except Exception as e:  # a bug must show up on the task, not vanish in the queue
        log.exception("notification of task %s: cannot build it", uuid)
        _record(task, event, status, "all", attempt, "error", [], f"internal error: {e}")
        Task.update(notify=FLAG["error"]).where(Task.uuid == uuid).execute()
        return None
    failed = False
    for channel in _state["channels"]:
        if channel.name in settled or not channel.wanted(note):
            continue
        to = channel.recipients(note)
        outcome, detail = send_on(channel, note, to)
        failed = failed or outcome == "failed"
        if channel.name == "email" and note.without_email:
            detail += "; no email address for: " + ", ".join(note.without_email)
        _record(task, event, status, channel.name, attempt, outcome, to, detail)
        if outcome in ("failed", "refused", "error"):
            log.warning("notification of task %s on %s: %s", uuid, channel.name, detail)
    if failed and attempt <= _state["settings"].notify_retries:
        return RETRY_BASE * 2 ** (attempt - 1)
    Task.update(notify=_flag(uuid, event)).where(Task.uuid == uuid).execute()
    return None


def send_on(channel: notifiers.Channel, note: notifiers.Note, to: list[str]) -> tuple[str, str]:
    """Send ``note`` on ``channel``; return ``(outcome, detail)``."""
    if not to:
        return "skipped", "no recipients"
    try:
        return "ok", channel.send(note)
    except notifiers.DeliveryFailed as e:
        return "failed", str(e)
    except notifiers.Refused as e:
        return "refused", str(e)
    except notifiers.NotifyError as e:
        return "error", str(e)
    except Exception as e:
        log.exception("notification on %s failed", channel.name)
        return "error", f"internal error: {type(e).__name__}"


def _record(
    task: Task,
    event: str,
    status: str,
    channel: str,
    attempt: int,
    outcome: str,
    to: list[str],
    detail: str,
) -> None:
    metrics.notification(channel, outcome)
    NotifyLog.create(
        taskuuid=task.uuid,
        event=event,
        status=status,
        channel=channel,
        attempt=attempt,
        outcome=outcome,
        recipients=",".join(to)[:2000],
        detail=detail[:500],
    )


def _flag(uuid: str, event: str) -> int:
    """OpenC3's notify value for an event: 2 delivered, 3 delivery failed, 4 error."""
    latest = {}
    for row in (
        NotifyLog.select()
        .where(NotifyLog.taskuuid == uuid, NotifyLog.event == event)
        .order_by(NotifyLog.id)
    ):
        latest[row.channel] = row.outcome
    return max((FLAG[o] for o in latest.values()), default=FLAG["ok"])


# -- reading ------------------------------------------------------------------------------------


def attempts(projectid: int, uuid: str) -> list[dict[str, Any]]:
    """Return every delivery attempt of task ``uuid``'s notifications, oldest first."""
    task = Task.get_or_none(Task.uuid == uuid, Task.projectid == projectid)
    if task is None:
        raise NotFound(f"uuid: task {uuid} does not exist")
    rows = NotifyLog.select().where(NotifyLog.taskuuid == task.uuid).order_by(NotifyLog.id)
    return [as_dict(r, LOG_FIELDS) for r in rows]
