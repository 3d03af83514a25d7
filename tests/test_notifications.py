"""Notifications: recipients, flags and templates, delivered by a real worker to a real SMTP
server (STARTTLS and AUTH) and real HTTP receivers on loopback."""

import dataclasses
import datetime
import email
import email.policy
import http.server
import ipaddress
import json
import pathlib
import ssl
import threading
import time

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from huey.exceptions import RetryTask

from api.server.app import create_app
from engine.access import auth
from engine.messages import notifications
from engine.run.queue import huey
from engine.store.db import database
from engine.store.models import Notify, NotifyLog, Task
from tests.cluster import Cluster
from tests.conftest import Api
from tests.httpclient import free_port
from tests.test_run import cmd, unique

LOOPBACK = "127.0.0.0/8"
SMTP_USER, SMTP_PASSWORD = "notifier", "s3cret-Pass-42"
TITLE = "[${projectname}] ${name} ${status}\nthis second line is never used"
CONTENT = (
    "task ${uuid} #${id} (${name}) by ${user} via ${calltype}: ${status}\n"
    "project ${projectid} ${projectname}\n"
    "start ${starttime} finish ${finishtime}\n"
    "${unknown} stays as it is"
)


# -- the pieces, in process ---------------------------------------------------------------------


def test_templates_are_plain_substitution():
    values = {"uuid": "U1", "name": "${uuid} {{ 7*7 }} {0.__class__}", "id": 3}
    assert (
        notifications.render("${uuid}/${id}/${name}/${nope}/${uuid.__class__}/$uuid", values)
        == "U1/3/${uuid} {{ 7*7 }} {0.__class__}/${nope}/${uuid.__class__}/$uuid"
    )


def add_task(uuid, user="dave", projectid=1, status="success", calltype="page"):
    with database.connection_context():
        return Task.create(
            projectid=projectid,
            uuid=uuid,
            name="deploy web",
            user=user,
            status=status,
            calltype=calltype,
            starttime=datetime.datetime(2026, 5, 1, 8, 0, 0),
            finishtime=datetime.datetime(2026, 5, 1, 8, 0, 7),
        )


def test_recipients_resolve_names_to_addresses(api):
    with database.connection_context():
        auth.add_user("dave", email="dave@example.com")
        auth.add_user("alice", email="alice@example.com")
        auth.add_user("carol")
    for user in ("_", "alice", "ops@example.com", "carol", "dave", "gone"):
        api.ok("POST", "/notify/1", json={"user": user})
    api.ok("POST", "/notify/2", json={"user": "bob@example.com"})  # another project's
    gone = [n for n in api.ok("GET", "/notify/1") if n["user"] == "gone"][0]["id"]
    api.ok("DELETE", f"/notify/1/{gone}")
    task = add_task("rcpt00000001")
    with database.connection_context():
        names, emails, without = notifications.recipients(task)
    assert names == ["dave", "alice", "ops@example.com", "carol"]  # `_` is dave: once
    assert emails == ["dave@example.com", "alice@example.com", "ops@example.com"]
    assert without == ["carol"]


def test_defaults_flags_and_the_first_line_of_the_title(api):
    task = add_task("tmpl00000001", calltype="crontab")
    with database.connection_context():
        note = notifications.build(task, "success", env={"isCrontabSuccessEmail": "true"})
        custom = notifications.build(
            task, "waiting", env={"notifyTemplateEmailTitle": "${name} ${status}\nline two"}
        )
    assert note.title == "projectid: 1 job success"
    assert note.content == f"task {task.uuid} :success"
    assert note.sms == f"projectid=1 taskuuid={task.uuid}: success"
    assert (note.flag("Email"), note.flag("Sms")) == (True, False)
    assert custom.title == "deploy web waiting"
    assert custom.fields["finishtime"] == "" and custom.fields["projectname"] == "one"
    assert custom.flag("Email") is False


def test_refuse_and_running_are_never_notified_and_each_waiting_is(api):
    def queued():
        return [m.args for m in huey().pending() if m.name == "opsjob.notify"]

    before = len(queued())
    for status in ("refuse", "running", "init"):
        notifications.on_task_changed("evnt00000001", status)
    assert queued()[before:] == []
    for status in ("waiting", "waiting", "success"):
        notifications.on_task_changed("evnt00000001", status)
    events = queued()[before:]
    assert [a[1] for a in events] == ["waiting", "waiting", "success"]
    assert len({a[2] for a in events}) == 3  # every entry into a status is its own event


def test_project_webhook_is_http_only_and_never_shown(api):
    for bad in ("ftp://chat.example.com/x", "https://", "javascript:alert(1)", "http://a b"):
        r = api.post("/project/1", json={"webhook": bad})
        assert r.status_code == 400 and r.json["info"].startswith("webhook"), (bad, r.text)
    api.ok("POST", "/project/1", json={"webhook": "https://93.184.215.14:8443/hooks/T0K3N?k=v"})
    shown = api.ok("GET", "/project/1")["webhook"]
    assert shown == "https://93.184.215.14:8443/..." and "T0K3N" not in shown
    api.ok("POST", "/project/1", json={"webhook": ""})
    assert api.ok("GET", "/project/1")["webhook"] == ""


class Receiver:
    """A real HTTP server on loopback that records JSON POSTs (or answers 503 when told)."""

    def __init__(self, host="127.0.0.1", port=0):
        self.posts, self.answer, self.headers = [], 200, {}
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.posts.append((self.path, self.headers["Content-Type"], json.loads(body)))
                self.send_response(outer.answer)
                for name, value in outer.headers.items():
                    self.send_header(name, value)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer((host, port), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def test_a_failing_receiver_is_retried_with_backoff_then_recorded(settings, receiver):
    app = create_app(dataclasses.replace(settings, notify_retries=2, webhook_allow=LOOPBACK))
    api = Api(app)
    api.ok("POST", "/project/1", json={"webhook": receiver.url + "/hook"})
    receiver.answer = 503
    task = add_task("down00000001")
    delays = []
    for _ in range(3):
        try:
            notifications.deliver(task.uuid, "success", "ev1")
        except RetryTask as e:
            delays.append(e.delay)
    assert delays == [2, 4]  # then the last attempt records the failure instead of retrying
    with database.connection_context():
        rows = list(NotifyLog.select().order_by(NotifyLog.id))
        assert Task.get(Task.uuid == task.uuid).status == "success"
        assert Task.get(Task.uuid == task.uuid).notify == 3
    assert [(r.channel, r.attempt, r.outcome) for r in rows] == [
        ("webhook", 1, "failed"),
        ("webhook", 2, "failed"),
        ("webhook", 3, "failed"),
    ]
    assert rows[0].detail == "failed: HTTP 503"
    assert len(receiver.posts) == 3
    receiver.answer = 200  # a new event delivers again; the flag follows the latest event
    notifications.deliver(task.uuid, "success", "ev2")
    assert api.ok("GET", f"/task/1/{task.uuid}")["notify"] == 2


def test_a_misconfigured_channel_is_an_error_and_not_retried(api):
    api.ok("POST", "/environment", json={"isPageFailSms": "true", "isPageFailEmail": "true"})
    api.ok("POST", "/notify/1", json={"user": "ops@example.com"})
    task = add_task("cfg000000001", status="fail")
    notifications.deliver(task.uuid, "fail", "ev1")  # no OPSJOB_SMS_WEBHOOK, no SMTP URL
    rows = api.ok("GET", f"/task/1/{task.uuid}/notify")
    assert [(r["channel"], r["outcome"], r["detail"]) for r in rows] == [
        ("email", "error", "OPSJOB_SMTP_URL is not set"),
        ("sms", "error", "OPSJOB_SMS_WEBHOOK is not set"),
    ]
    assert api.ok("GET", f"/task/1/{task.uuid}")["notify"] == 4
    assert api.get(f"/task/2/{task.uuid}/notify").status_code == 404


def test_no_recipients_and_no_channel_mark_the_task_sent(api):
    api.ok("POST", "/environment", json={"isPageSuccessEmail": "true"})
    with database.connection_context():
        Notify.delete().execute()
    task = add_task("none00000001")
    notifications.deliver(task.uuid, "success", "ev1")
    rows = api.ok("GET", f"/task/1/{task.uuid}/notify")
    assert [(r["channel"], r["outcome"]) for r in rows] == [("email", "skipped")]
    assert api.ok("GET", f"/task/1/{task.uuid}")["notify"] == 2


# -- end to end: a real worker delivers ---------------------------------------------------------


def self_signed(directory):
    """Write a certificate for 127.0.0.1 and its key; return their paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "opsjob test smtp")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp.crt", directory / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class Mailbox:
    """What the SMTP server accepted: (mail from, recipients, parsed message)."""

    def __init__(self):
        self.messages = []
        self.logins = []

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        good = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            SMTP_USER.encode(),
            SMTP_PASSWORD.encode(),
        )
        self.logins.append((mechanism, good, session.ssl is not None))
        return AuthResult(success=good)


@pytest.fixture(scope="module")
def smtp(tmp_path_factory):
    cert, key = self_signed(tmp_path_factory.mktemp("smtp"))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    box = Mailbox()
    port = free_port()
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        auth_required=True,
        authenticator=box.authenticate,
    )
    controller.start()
    box.url = (
        f"smtp://{SMTP_USER}:{SMTP_PASSWORD}@127.0.0.1:{port}"
        f"?starttls=1&from=opsjob@example.com&cafile={cert}"
    )
    yield box
    controller.stop()


@pytest.fixture(scope="module")
def http_receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def cluster(ssh_nodes, smtp, http_receiver):
    c = Cluster(ssh_nodes)
    c.env.update(
        OPSJOB_SMTP_URL=smtp.url,
        OPSJOB_SMS_WEBHOOK=http_receiver.url + "/sms",
        OPSJOB_NOTIFY_RETRIES="2",
        OPSJOB_WEBHOOK_ALLOW=LOOPBACK,  # the receivers are on loopback, refused by default
        OPSJOB_LOG_LEVEL="INFO",
    )
    c.run("project", "add", "1", "notified")
    c.run("project", "add", "2", "unheard")
    c.operator = c.run(
        "user",
        "add",
        "operator",
        "--email",
        "operator@example.com",
        "--project",
        "1",
        "--role",
        "write",
    )
    c.run("user", "add", "alice", "--email", "alice@example.com")
    c.run("user", "add", "nomail")
    c.serve()
    c.worker()
    nodes = ssh_nodes.ensure(1)
    c.add_nodes(1, nodes)
    c.add_nodes(2, nodes)
    for user in ("_", "alice", "ops@example.com", "nomail"):
        c.ok("POST", "/notify/1", {"user": user})
    c.ok(
        "POST",
        "/environment",
        {
            "isPageSuccessEmail": "true",
            "isPageSuccessSms": "true",
            "isPageFailEmail": "true",
            "isPageWaitingEmail": "true",
            "isPageWaitingSms": "true",
            "isApiFailSms": "true",  # another calltype: no SMS for a page task's failure
            "notifyTemplateEmailTitle": TITLE,
            "notifyTemplateEmailContent": CONTENT,
        },
    )
    c.ok("POST", "/project/1", {"webhook": http_receiver.url + "/chat/T0K3N"})
    c.ok("POST", "/project/2", {"webhook": f"http://127.0.0.1:{free_port()}/nobody-listens"})
    yield c
    c.close()


NAMES = ["operator", "alice", "ops@example.com", "nomail"]
EMAILS = ["operator@example.com", "alice@example.com", "ops@example.com"]


def wait_for(found, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError("nothing arrived")


def mails_of(smtp, uuid):
    return [m for m in smtp.messages if uuid in m[2].get_content()]


def posts_of(receiver, uuid, path):
    return [
        body
        for p, _, body in receiver.posts
        if p == path and uuid in json.dumps(body, ensure_ascii=False)
    ]


def expected(task, status):
    finish = task["finishtime"] if status != "waiting" else ""
    title = f"[notified] {task['name']} {status}"
    content = (
        f"task {task['uuid']} #{task['id']} ({task['name']}) by operator via page: {status}\n"
        f"project 1 notified\n"
        f"start {task['starttime']} finish {finish}\n"
        "${unknown} stays as it is"
    )
    return title, content


def check_delivery(c, smtp, receiver, task, status, sms=True):
    """Assert the exact email, SMS and webhook of ``task`` entering ``status``."""
    title, content = expected(task, status)
    mail = wait_for(lambda: [m for m in mails_of(smtp, task["uuid"]) if m[2]["Subject"] == title])
    assert len(mail) == 1
    sender, rcpt, message = mail[0]
    assert (sender, rcpt) == ("opsjob@example.com", EMAILS)
    assert message["To"] == ", ".join(EMAILS)
    assert message.get_content().replace("\r\n", "\n") == content + "\n"
    text = f"projectid=1 taskuuid={task['uuid']}: {status}"
    if sms:
        got = wait_for(
            lambda: [b for b in posts_of(receiver, task["uuid"], "/sms") if b["text"] == text]
        )
        assert got == [{"to": NAMES, "text": text}]
    hook = wait_for(
        lambda: [
            b for b in posts_of(receiver, task["uuid"], "/chat/T0K3N") if b["status"] == status
        ]
    )
    assert len(hook) == 1
    assert {k: hook[0][k] for k in ("title", "content", "status", "recipients")} == {
        "title": title,
        "content": content,
        "status": status,
        "recipients": NAMES,
    }
    assert hook[0]["task"]["uuid"] == task["uuid"] and hook[0]["task"]["calltype"] == "page"


def run_cmd(c, node, script, name):
    return c.ok(
        "POST",
        "/task/1/plugin_cmd",
        {
            "name": name,
            "node_type": "builtin",
            "node_cont": node,
            "scripts_type": "shell",
            "scripts_cont": script,
        },
        key=c.operator,
    )["data"]["uuid"]


def attempts_of(c, uuid, count, pid=1):
    return wait_for(
        lambda: (
            (rows := c.ok("GET", f"/task/{pid}/{uuid}/notify")["data"])
            and len(rows) >= count
            and rows
        )
    )


@pytest.mark.slow
def test_success_and_fail_are_mailed_texted_and_posted(cluster, smtp, http_receiver, ssh_nodes):
    c, node = cluster, ssh_nodes.addresses[0]
    ok_uuid = run_cmd(c, node, "true", unique("fine"))
    bad_uuid = run_cmd(c, node, "exit 3", unique("broken"))
    ok_task, bad_task = c.wait(1, ok_uuid), c.wait(1, bad_uuid)
    assert (ok_task["status"], bad_task["status"]) == ("success", "fail")
    check_delivery(c, smtp, http_receiver, ok_task, "success")
    check_delivery(c, smtp, http_receiver, bad_task, "fail", sms=False)
    time.sleep(0.5)
    assert posts_of(http_receiver, bad_uuid, "/sms") == []  # isPageFailSms is not set
    rows = attempts_of(c, ok_uuid, 3)
    assert [(r["channel"], r["status"], r["attempt"], r["outcome"]) for r in rows] == [
        ("email", "success", 1, "ok"),
        ("sms", "success", 1, "ok"),
        ("webhook", "success", 1, "ok"),
    ]
    assert rows[0]["recipients"] == ",".join(EMAILS)
    assert rows[0]["detail"].endswith("; no email address for: nomail")
    assert rows[2]["recipients"] == http_receiver.url + "/..."
    assert wait_for(lambda: c.ok("GET", f"/task/1/{ok_uuid}")["data"]["notify"] == 2)
    assert smtp.logins and all(good and tls for _, good, tls in smtp.logins)  # after STARTTLS
    logs = "".join(p.read_text(errors="replace") for p in pathlib.Path(c.home).glob("*.log"))
    seen = json.dumps(rows) + json.dumps(c.ok("GET", "/environment")["data"]) + logs
    assert SMTP_PASSWORD not in seen and "T0K3N" not in json.dumps(rows)


@pytest.mark.slow
def test_each_wait_is_notified_then_the_end(cluster, smtp, http_receiver, ssh_nodes):
    c, node = cluster, ssh_nodes.addresses[0]
    job = c.ok(
        "POST",
        "/jobs/1",
        {
            "name": unique("paused"),
            "permanent": 1,
            "data": [cmd("first", [node], "true", pause="check it"), cmd("then", [node], "true")],
        },
    )["uuid"]
    uuid = c.ok("POST", "/task/1/job", {"jobuuid": job}, key=c.operator)["uuid"]
    waiting = c.wait(1, uuid, statuses=("waiting",))
    check_delivery(c, smtp, http_receiver, waiting, "waiting")
    step = c.ok("GET", f"/subtask/1/{uuid}")["data"][0]
    c.ok(
        "POST",
        "/subtask/1",
        {"taskuuid": uuid, "subtaskuuid": step["uuid"], "subtasktype": "cmd", "control": "next"},
    )
    done = c.wait(1, uuid)
    check_delivery(c, smtp, http_receiver, done, "success")
    rows = attempts_of(c, uuid, 6)
    assert [(r["status"], r["channel"]) for r in rows] == [
        ("waiting", "email"),
        ("waiting", "sms"),
        ("waiting", "webhook"),
        ("success", "email"),
        ("success", "sms"),
        ("success", "webhook"),
    ]
    assert len({r["event"] for r in rows}) == 2


@pytest.mark.slow
def test_a_receiver_that_is_down_is_retried_then_failed(cluster, ssh_nodes):
    c, node = cluster, ssh_nodes.addresses[0]
    uuid = c.ok(
        "POST",
        "/task/2/plugin_cmd",
        {
            "node_type": "builtin",
            "node_cont": node,
            "scripts_type": "shell",
            "scripts_cont": "true",
        },
    )["data"]["uuid"]
    assert c.wait(2, uuid)["status"] == "success"
    rows = attempts_of(c, uuid, 5, pid=2)
    assert [(r["channel"], r["attempt"], r["outcome"]) for r in rows] == [
        ("email", 1, "skipped"),  # project 2 notifies nobody
        ("sms", 1, "skipped"),
        ("webhook", 1, "failed"),
        ("webhook", 2, "failed"),
        ("webhook", 3, "failed"),
    ]
    assert rows[2]["detail"] == "failed: unreachable"  # not the socket error
    task = wait_for(lambda: (t := c.ok("GET", f"/task/2/{uuid}")["data"])["notify"] == 3 and t)
    assert task["status"] == "success"
