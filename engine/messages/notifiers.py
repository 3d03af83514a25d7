"""Notification channels: email over SMTP, SMS through an HTTP gateway, a project's webhook.

Each channel takes a rendered :class:`Note` and delivers it, returning a short text for the
delivery log, or raising :class:`DeliveryFailed` (the receiver is down or said no: retried),
:class:`Refused` (the webhook points where OPSJOB_WEBHOOK_ALLOW does not allow: not retried)
or :class:`NotifyError` (the configuration is wrong: not retried). No secret (SMTP password,
webhook path or query) is ever put into a message, the log or the delivery log, and an HTTP
delivery records only its outcome (``ok: HTTP 200``, ``failed: HTTP 500``, ``failed:
unreachable``), never the socket error that would tell an open port from a closed one.
"""

import json
import smtplib
import socket
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import TYPE_CHECKING, Any, TypedDict
from urllib.parse import parse_qs, unquote, urlsplit

from engine.messages import outbound

if TYPE_CHECKING:
    from engine.store.settings import Settings

TIMEOUT = 10


class DeliveryFailed(Exception):
    """The receiver could not be reached or refused the message; worth retrying."""


class NotifyError(Exception):
    """The channel is misconfigured; retrying cannot help."""


class Refused(NotifyError):
    """The destination is not allowed (OPSJOB_WEBHOOK_ALLOW); retrying cannot help."""


class TaskFields(TypedDict):
    """The task fields a notification's templates can name (and a webhook receives)."""

    id: int
    projectid: int
    uuid: str
    name: str
    user: str
    calltype: str
    status: str
    starttime: str
    finishtime: str  # "" while the task waits
    projectname: str
    notifytype: str


@dataclass
class Note:
    """One notification, rendered: what every channel needs to send it."""

    calltype: str  # Page, Api or Crontab
    status: str  # Success, Fail or Waiting
    title: str
    content: str
    sms: str
    names: list[str]  # recipients as the notify list names them (`_` resolved)
    emails: list[str]  # recipients' email addresses
    without_email: list[str]  # names of users who have no email address
    fields: TaskFields
    webhook: str = ""  # the project's webhook URL
    env: dict[str, Any] = field(default_factory=dict)

    def flag(self, channel: str) -> bool:
        """Tell whether ``is<Calltype><Status><channel>`` is set to the exact string true."""
        return self.env.get(f"is{self.calltype}{self.status}{channel}") == "true"


def safe_url(url: str) -> str:
    """Show a URL without credentials, path or query: ``scheme://host:port/...``."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(unparsable URL)"
    return f"{parts.scheme}://{host}{port}" + ("/..." if parts.path not in ("", "/") else "")


def check_http_url(url: str, what: str) -> None:
    """Raise NotifyError unless ``url`` is an http(s) URL with a host."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        raise NotifyError(f"{what}: not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise NotifyError(f"{what}: must be an http:// or https:// URL")


def post_json(url: str, body: dict[str, Any], what: str, trusted: bool = False) -> str:
    """POST ``body`` as JSON to ``url``; return ``ok: HTTP <code>`` or raise.

    Unless ``trusted`` (an admin-set URL), the destination must be allowed by
    OPSJOB_WEBHOOK_ALLOW. A redirect is a failure, never followed.
    """
    check_http_url(url, what)
    data = json.dumps(body, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "opsjob"}
    try:
        status = outbound.post(url, data, headers, TIMEOUT, trusted=trusted)
    except outbound.Refused:
        raise Refused("refused: not an allowed destination (OPSJOB_WEBHOOK_ALLOW)") from None
    except outbound.Unreachable:
        raise DeliveryFailed("failed: unreachable") from None
    if 200 <= status < 300:
        return f"ok: HTTP {status}"
    moved = " (redirects are not followed)" if 300 <= status < 400 else ""
    raise DeliveryFailed(f"failed: HTTP {status}{moved}")


# -- channels ----------------------------------------------------------------------------------


class Email:
    """Email through the SMTP server of ``OPSJOB_SMTP_URL``."""

    name = "email"

    def __init__(self, settings: "Settings") -> None:
        self.url = settings.smtp_url

    def wanted(self, note: Note) -> bool:
        return note.flag("Email")

    def recipients(self, note: Note) -> list[str]:
        return note.emails

    def send(self, note: Note) -> str:
        if not self.url:
            raise NotifyError("OPSJOB_SMTP_URL is not set")
        smtp = SmtpUrl.parse(self.url)
        msg = EmailMessage()
        msg["Subject"] = " ".join(note.title.splitlines())[:900]
        msg["From"] = smtp.sender
        msg["To"] = ", ".join(note.emails)
        msg["Date"] = formatdate(localtime=True)
        msg["Message-ID"] = make_msgid(domain=smtp.sender.rsplit("@", 1)[-1] or None)
        msg.set_content(note.content)
        try:
            refused: dict[str, tuple[int, bytes]] | str = smtp.send(msg, note.emails)
        except smtplib.SMTPRecipientsRefused as e:
            refused = ", ".join(e.recipients)
            raise DeliveryFailed(f"every recipient was refused: {refused}") from None
        except (smtplib.SMTPException, OSError, ssl.SSLError) as e:
            raise DeliveryFailed(smtp.scrub(f"{smtp.where}: {type(e).__name__}: {e}")) from None
        if refused:
            return f"sent through {smtp.where}; refused: {', '.join(sorted(refused))}"
        return f"sent through {smtp.where}"


@dataclass
class SmtpUrl:
    """``smtp[s]://[user[:password]@]host[:port][?starttls=1&from=addr&cafile=path]``."""

    scheme: str
    host: str
    port: int
    user: str
    password: str
    starttls: bool
    sender: str
    cafile: str

    @classmethod
    def parse(cls, url: str) -> "SmtpUrl":
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise NotifyError("OPSJOB_SMTP_URL: not a valid URL") from None
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise NotifyError("OPSJOB_SMTP_URL: must be smtp://host[:port] or smtps://host[:port]")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        unknown = set(query) - {"starttls", "from", "cafile"}
        if unknown:
            raise NotifyError(f"OPSJOB_SMTP_URL: unknown option {sorted(unknown)[0]}")
        sender = query.get("from") or f"opsjob@{socket.getfqdn()}"
        return cls(
            scheme=parts.scheme,
            host=parts.hostname,
            port=port or (465 if parts.scheme == "smtps" else 25),
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            starttls=query.get("starttls", "0").lower() in ("1", "true", "yes", "on"),
            sender=sender,
            cafile=query.get("cafile", ""),
        )

    @property
    def where(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def scrub(self, text: str) -> str:
        return text.replace(self.password, "***") if self.password else text

    def _tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.cafile or None)

    def send(self, msg: EmailMessage, to: list[str]) -> dict[str, tuple[int, bytes]]:
        if self.scheme == "smtps":
            conn: smtplib.SMTP = smtplib.SMTP_SSL(
                self.host, self.port, timeout=TIMEOUT, context=self._tls()
            )
        else:
            conn = smtplib.SMTP(self.host, self.port, timeout=TIMEOUT)
        with conn:
            conn.ehlo()
            if self.starttls:
                conn.starttls(context=self._tls())
                conn.ehlo()
            if self.user:
                conn.login(self.user, self.password)
            return conn.send_message(msg, to_addrs=to)


class Sms:
    """SMS through the HTTP gateway of ``OPSJOB_SMS_WEBHOOK``: POST ``{"to": [...], "text"}``.

    ``to`` holds the notify list's names (``_`` resolved to the task's user) as they are: the
    gateway maps them to phone numbers.
    """

    name = "sms"

    def __init__(self, settings: "Settings") -> None:
        self.url = settings.sms_webhook

    def wanted(self, note: Note) -> bool:
        return note.flag("Sms")

    def recipients(self, note: Note) -> list[str]:
        return note.names

    def send(self, note: Note) -> str:
        if not self.url:
            raise NotifyError("OPSJOB_SMS_WEBHOOK is not set")
        body = {"to": note.names, "text": note.sms}
        # admin configuration, not user input: called as set (see OPSJOB_WEBHOOK_ALLOW)
        return post_json(self.url, body, "OPSJOB_SMS_WEBHOOK", trusted=True)


class Webhook:
    """The project's own webhook (for chat tools): every notified status, no flag needed."""

    name = "webhook"

    def __init__(self, settings: "Settings") -> None:
        pass

    def wanted(self, note: Note) -> bool:
        return bool(note.webhook)

    def recipients(self, note: Note) -> list[str]:
        return [safe_url(note.webhook)]

    def send(self, note: Note) -> str:
        body = {
            "title": note.title,
            "content": note.content,
            "status": note.fields["status"],
            "recipients": note.names,
            "task": note.fields,
        }
        return post_json(note.webhook, body, "webhook")


Channel = Email | Sms | Webhook
REGISTRY: dict[str, type[Channel]] = {"email": Email, "sms": Sms, "webhook": Webhook}


def load(settings: "Settings") -> list[Channel]:
    """Return one instance of every channel, in delivery order."""
    return [cls(settings) for cls in REGISTRY.values()]
