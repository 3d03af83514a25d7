"""Project webhooks reach only what OPSJOB_WEBHOOK_ALLOW allows: checked on save and on each
delivery, every address of a name, the checked address is the one connected to, no redirects,
and the delivery log tells outcomes, not socket errors."""

import dataclasses
import socket

import pytest
from falcon import testing
from huey.exceptions import RetryTask

from api.server.app import create_app
from engine.messages import notifications, outbound
from engine.store.db import database
from engine.store.models import NotifyLog, Task
from tests.conftest import Api
from tests.httpclient import free_port
from tests.test_notifications import LOOPBACK, Receiver, add_task

NOT_GLOBAL = [
    "http://127.0.0.1:{port}/hook",
    "http://localhost:{port}/hook",  # a name that resolves to loopback
    "http://127.1:{port}/",
    "http://2130706433:{port}/",  # 127.0.0.1 as one number
    "http://[::1]:{port}/",
    "http://[::ffff:127.0.0.1]:{port}/",  # IPv4-mapped IPv6
    "http://[::ffff:10.0.0.1]/",
    "http://[2002:7f00:1::]/",  # 6to4 around 127.0.0.1
    "http://0.0.0.0:{port}/",
    "http://[::]/",
    "http://10.1.2.3/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data",
    "http://[fe80::1]/",
    "http://[fd00::1]/",
    "http://100.64.0.1/",  # CGNAT
    "http://224.0.0.1/",
    "http://240.0.0.1/",
    "http://192.0.0.8/",
]


def app_allowing(settings, allow, api=None):
    """Serve with ``OPSJOB_WEBHOOK_ALLOW`` = ``allow`` (through ``api``'s client when given)."""
    app = create_app(dataclasses.replace(settings, webhook_allow=allow, notify_retries=1))
    if api is None:
        return Api(app)
    api.client = testing.TestClient(app)
    return api


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def rows_of(uuid):
    with database.connection_context():
        query = NotifyLog.select().where(NotifyLog.taskuuid == uuid).order_by(NotifyLog.id)
        return [(r.channel, r.outcome, r.detail) for r in query]


def notify_flag(uuid):
    with database.connection_context():
        return Task.get(Task.uuid == uuid).notify


def test_non_global_addresses_are_refused_on_save_by_default(api):
    port = free_port()
    for url in NOT_GLOBAL:
        r = api.post("/project/1", json={"webhook": url.format(port=port)})
        assert r.status_code == 400, (url, r.text)
        assert r.json["info"].startswith("webhook: ") and "OPSJOB_WEBHOOK_ALLOW" in r.json["info"]
    r = api.post("/project/1", json={"webhook": "https://nothing.invalid/hook"})
    assert r.status_code == 400 and r.json["info"] == "webhook: nothing.invalid does not resolve"
    assert api.ok("GET", "/project/1")["webhook"] == ""
    api.ok("POST", "/project/1", json={"webhook": "https://93.184.215.14/hook"})  # public


def test_the_allow_list_admits_networks_and_names(settings):
    api = app_allowing(settings, "127.0.0.0/8, *.chat.invalid")
    port = free_port()
    for url in ("http://127.0.0.1:{port}/", "http://localhost:{port}/", "https://a.chat.invalid/"):
        api.ok("POST", "/project/1", json={"webhook": url.format(port=port)})
    for url in (
        "http://10.1.2.3/",
        "http://[::1]/",
        "https://93.184.215.14/",
        "http://chat.invalid/",
    ):
        r = api.post("/project/1", json={"webhook": url})
        assert r.status_code == 400 and r.json["info"].startswith("webhook"), url
    api = app_allowing(settings, "public,10.0.0.0/8,bad/entry", api)  # bad entries allow nothing
    api.ok("POST", "/project/1", json={"webhook": "https://93.184.215.14/"})
    api.ok("POST", "/project/1", json={"webhook": "http://10.9.8.7/"})
    assert api.post("/project/1", json={"webhook": "http://192.168.0.1/"}).status_code == 400


def test_delivery_checks_again_and_records_refused(settings, receiver):
    api = app_allowing(settings, LOOPBACK)
    api.ok("POST", "/project/1", json={"webhook": receiver.url + "/hook"})
    app_allowing(settings, "public", api)  # the admin narrows the list after the save
    task = add_task("refd00000001")
    notifications.deliver(task.uuid, "success", "ev1")  # no RetryTask: refused is final
    assert rows_of(task.uuid) == [
        ("webhook", "refused", "refused: not an allowed destination (OPSJOB_WEBHOOK_ALLOW)")
    ]
    assert receiver.posts == [] and notify_flag(task.uuid) == 4


def test_a_redirect_is_not_followed(settings, receiver):
    target = Receiver()
    try:
        api = app_allowing(settings, LOOPBACK)
        api.ok("POST", "/project/1", json={"webhook": receiver.url + "/hook"})
        receiver.answer, receiver.headers = 302, {"Location": target.url + "/elsewhere"}
        task = add_task("redi00000001")
        with pytest.raises(RetryTask):
            notifications.deliver(task.uuid, "success", "ev1")
        assert rows_of(task.uuid) == [
            ("webhook", "failed", "failed: HTTP 302 (redirects are not followed)")
        ]
        assert len(receiver.posts) == 1 and target.posts == []
    finally:
        target.close()


def test_the_delivery_log_hides_socket_errors(settings):
    api = app_allowing(settings, LOOPBACK)
    closed = f"http://127.0.0.1:{free_port()}/nobody"
    api.ok("POST", "/project/1", json={"webhook": closed})
    task = add_task("sock00000001")
    with pytest.raises(RetryTask):
        notifications.deliver(task.uuid, "success", "ev1")
    assert rows_of(task.uuid) == [("webhook", "failed", "failed: unreachable")]


def test_dns_cannot_rebind_between_the_check_and_the_connection(monkeypatch):
    """The resolver answers 127.0.0.1 (allowed) first and 127.0.0.2 (not) afterwards: the
    request goes to the first answer. (A stub resolver: a real one cannot be steered here.)"""
    first = Receiver("127.0.0.1")
    port = first.server.server_address[1]
    second = Receiver("127.0.0.2", port)
    answers = ["127.0.0.1"]
    real = socket.getaddrinfo

    def rebinding(host, *args, **kw):
        if host != "hook.rebind.test":
            return real(host, *args, **kw)
        address = answers.pop(0) if answers else "127.0.0.2"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    try:
        allow, _ = outbound.Policy.parse("127.0.0.1/32")
        url = f"http://hook.rebind.test:{port}/hook"
        status = outbound.post(url, b"{}", {"Content-Type": "application/json"}, 5, allow)
        assert status == 200 and len(first.posts) == 1 and second.posts == []
        assert first.posts[0][0] == "/hook"
        with pytest.raises(outbound.Refused):  # the next answer is checked, and refused
            outbound.post(url, b"{}", {}, 5, allow)
        assert second.posts == []
    finally:
        first.close()
        second.close()


def test_every_address_of_a_name_must_be_allowed(monkeypatch):
    real = socket.getaddrinfo

    def two(host, *args, **kw):
        if host != "mixed.test":
            return real(host, *args, **kw)
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", 80)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", 80)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", two)
    with pytest.raises(outbound.Refused):
        outbound.check("http://mixed.test/", outbound.Policy())
    allow, _ = outbound.Policy.parse("public,10.0.0.0/24")
    outbound.check("http://mixed.test/", allow)
