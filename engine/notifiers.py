"""Notification channels: email over SMTP, SMS through an HTTP gateway, a project's webhook.

Each channel takes a rendered :class:`Note` and delivers it, returning a short text for the
delivery log, or raising :class:`DeliveryFailed` (the receiver is down or said no: retried)
or :class:`NotifyError` (the configuration is wrong: not retried). No secret (SMTP password,
webhook path or query) is ever put into a message, the log or the delivery log.
"""

import json
import smtplib
import socket
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import parse_qs, unquote, urlsplit

TIMEOUT = 10


class DeliveryFailed(Exception):
    """The receiver could not be reached or refused the message; worth retrying."""


class NotifyError(Exception):
    """The channel is misconfigured; retrying cannot help."""


@dataclass
class Note:
    """One notification, rendered: what every channel needs to send it."""

    calltype: str  # Page, Api or Crontab
    status: str  # Success, Fail or Waiting
    title: str
    content: str
    sms: str
    names: list  # recipients as the notify list names them (`_` resolved)
    emails: list  # recipients' email addresses
    without_email: list  # names of users who have no email address
    fields: dict  # the task fields the templates can use
    webhook: str = ""  # the project's webhook URL
    env: dict = field(default_factory=dict)

    def flag(self, channel):
        """Tell whether ``is<Calltype><Status><channel>`` is set to the exact string true."""
        return self.env.get(f"is{self.calltype}{self.status}{channel}") == "true"


def safe_url(url):
    """Show a URL without credentials, path or query: ``scheme://host:port/...``."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(unparsable URL)"
    return f"{parts.scheme}://{host}{port}" + ("/..." if parts.path not in ("", "/") else "")


def check_http_url(url, what):
    """Raise NotifyError unless ``url`` is an http(s) URL with a host."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        raise NotifyError(f"{what}: not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise NotifyError(f"{what}: must be an http:// or https:// URL")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # a redirect is answered as the failure it is, never followed


def post_json(url, body, what):
    """POST ``body`` as JSON to ``url``; return ``HTTP <code>`` or raise DeliveryFailed."""
    check_http_url(url, what)
    data = json.dumps(body, ensure_ascii=False).encode()
    req = urllib.request.Request(
        url,
        data=data,
        method="POST",
        headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": "opsjob"},
    )
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(req, timeout=TIMEOUT) as resp:
            resp.read(1024)
            return f"HTTP {resp.status} from {safe_url(url)}"
    except urllib.error.HTTPError as e:
        raise DeliveryFailed(f"HTTP {e.code} from {safe_url(url)}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DeliveryFailed(f"{safe_url(url)} unreachable: {reason}") from None


# -- channels ----------------------------------------------------------------------------------


class Email:
    """Email through the SMTP server of ``OPSJOB_SMTP_URL``."""

    name = "email"

    def __init__(self, settings):
        self.url = settings.smtp_url

    def wanted(self, note):
        return note.flag("Email")

    def recipients(self, note):
        return note.emails

    def send(self, note):
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
            refused = smtp.send(msg, note.emails)
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
    def parse(cls, url):
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
    def where(self):
        return f"{self.scheme}://{self.host}:{self.port}"

    def scrub(self, text):
        return text.replace(self.password, "***") if self.password else text

    def _tls(self):
        return ssl.create_default_context(cafile=self.cafile or None)

    def send(self, msg, to):
        if self.scheme == "smtps":
            conn = smtplib.SMTP_SSL(self.host, self.port, timeout=TIMEOUT, context=self._tls())
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

    def __init__(self, settings):
        self.url = settings.sms_webhook

    def wanted(self, note):
        return note.flag("Sms")

    def recipients(self, note):
        return note.names

    def send(self, note):
        if not self.url:
            raise NotifyError("OPSJOB_SMS_WEBHOOK is not set")
        return post_json(self.url, {"to": note.names, "text": note.sms}, "OPSJOB_SMS_WEBHOOK")


class Webhook:
    """The project's own webhook (for chat tools): every notified status, no flag needed."""

    name = "webhook"

    def __init__(self, settings):
        pass

    def wanted(self, note):
        return bool(note.webhook)

    def recipients(self, note):
        return [safe_url(note.webhook)]

    def send(self, note):
        body = {
            "title": note.title,
            "content": note.content,
            "status": note.fields["status"],
            "recipients": note.names,
            "task": note.fields,
        }
        return post_json(note.webhook, body, "webhook")


REGISTRY = {"email": Email, "sms": Sms, "webhook": Webhook}


def load(settings):
    """Return one instance of every channel, in delivery order."""
    return [cls(settings) for cls in REGISTRY.values()]
