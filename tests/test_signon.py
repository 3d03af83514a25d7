"""Sign-on without keys on a real `opsjob serve`: a trusted proxy's user header (honoured only
from the listed socket peer) and OpenC3's cookie resolved by a stand-in Connector (asked once
per cookie within the cache time); roles apply, keys win, the audit names the user."""

import asyncio
import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import websockets

from engine.access import auth, signon
from engine.errors import Unauthenticated, Unavailable
from engine.store.db import database
from engine.store.settings import Settings
from tests.cluster import Cluster
from tests.httpclient import free_port, wait_until_up

pytestmark = pytest.mark.slow

PROXY = "127.0.0.2"  # the only address the server trusts; 127.0.0.1 is any other client
COOKIES = {"c-reader": "reader", "c-mail": "w@example.com", "c-stranger": "stranger"}


class Connector(BaseHTTPRequestHandler):
    """OpenC3's `GET /connectorx/username?cookie=...`: ``{stat, data: {user, company}}``."""

    asked: list[str] = []

    def do_GET(self):
        cookie = parse_qs(urlsplit(self.path).query).get("cookie", [""])[0]
        self.asked.append(cookie)
        user = COOKIES.get(cookie)
        body = json.dumps({"stat": True, "data": {"user": user, "company": "default"}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def connector():
    connector = ThreadingHTTPServer(("127.0.0.1", 0), Connector)
    threading.Thread(target=connector.serve_forever, daemon=True).start()
    yield connector
    connector.shutdown()


@pytest.fixture(scope="module")
def server(connector):
    c = Cluster(None)
    c.run("project", "add", "1", "one")
    c.run("project", "add", "2", "two")
    keys = {
        "reader": c.run("user", "add", "reader", "--project", "1", "--role", "read"),
        "writer": c.run(
            "user", "add", "writer", "--project", "1", "--role", "write", "--email", "w@example.com"
        ),
    }
    c.run("user", "add", "gone", "--project", "1", "--role", "write")
    c.run("user", "disable", "gone")
    port = free_port()
    c.url = f"http://127.0.0.1:{port}"
    env = {
        "OPSJOB_AUTH_PROXY_FROM": f"{PROXY}, 10.9.0.0/16",
        "OPSJOB_SSO_USERINFO_URL": f"http://127.0.0.1:{connector.server_port}/connectorx/username",
    }
    # one process: the Connector's answers are kept per process
    proc = c.spawn("api", "serve", "--port", str(port), "--workers", "1", env=env)
    wait_until_up(c.url, proc)
    yield c, port, keys
    c.close()


def request(port, method, path, headers=None, body=None, source="127.0.0.1"):
    """Send a request from the address ``source``; return (status, parsed JSON)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
    data = json.dumps(body).encode() if body is not None else None
    head = {"Content-Type": "application/json"} if data else {}
    try:
        conn.request(method, path, body=data, headers={**head, **(headers or {})})
        resp = conn.getresponse()
        raw = resp.read()
        is_json = resp.getheader("Content-Type", "").startswith("application/json")
        return resp.status, json.loads(raw or b"null") if is_json else raw.decode()
    finally:
        conn.close()


def as_user(name):
    return {"X-Forwarded-User": name}


def test_the_proxy_header_is_honoured_from_the_trusted_address_only(server):
    _, port, _ = server
    status, body = request(port, "GET", "/jobs/1", as_user("reader"), source=PROXY)
    assert status == 200 and body["stat"] is True
    # from any other address the header is ignored, whatever it says it was forwarded for
    for headers in (
        as_user("reader"),
        {
            **as_user("reader"),
            "X-Forwarded-For": PROXY,
            "X-Real-IP": PROXY,
            "Forwarded": "for=127.0.0.2",
        },
    ):
        status, body = request(port, "GET", "/jobs/1", headers)
        assert status == 401 and "missing credentials" in body["info"], body
    # a second header with an underscore (X_Forwarded_User) never stands in for the real one
    assert request(port, "GET", "/jobs/1", {"X_Forwarded_User": "reader"}, source=PROXY)[0] == 401


def test_proxy_users_must_exist_and_be_enabled_and_their_roles_apply(server):
    c, port, _ = server
    status, body = request(port, "GET", "/jobs/1", as_user("nobody"), source=PROXY)
    assert status == 401 and "not an opsjob user" in body["info"]
    status, body = request(port, "GET", "/jobs/1", as_user("gone"), source=PROXY)
    assert status == 401 and "disabled" in body["info"]
    script = {"name": "by-proxy", "type": "shell", "cont": "id"}
    status, body = request(port, "POST", "/scripts/1", as_user("reader"), script, source=PROXY)
    assert status == 403 and "write on project 1" in body["info"]
    assert request(port, "GET", "/jobs/2", as_user("reader"), source=PROXY)[0] == 403
    status, body = request(port, "POST", "/scripts/1", as_user("writer"), script, source=PROXY)
    assert status == 200, body
    [entry] = [e for e in c.ok("GET", "/audit?object=scripts")["data"] if e["user"] == "writer"]
    assert entry["key_id"] == 0 and entry["source"] == PROXY and entry["via"] == "api"
    # a cross-site request (a form on another site, sent through the proxy) is not signed on
    cross = {**as_user("writer"), "Sec-Fetch-Site": "cross-site"}
    status, body = request(port, "POST", "/scripts/1", cross, script, source=PROXY)
    assert status == 401 and "cross-site" in body["info"]
    foreign = {**as_user("writer"), "Origin": "https://evil.example.com"}
    assert request(port, "POST", "/scripts/1", foreign, script, source=PROXY)[0] == 401


def test_a_key_is_judged_by_itself_never_rescued_by_a_sign_on(server):
    _, port, keys = server
    bad = {**as_user("writer"), "Authorization": "Bearer oj_not-a-key", "Cookie": "sid=c-mail"}
    status, body = request(port, "GET", "/jobs/1", bad, source=PROXY)
    assert status == 401 and body["info"] == "unknown credentials"
    reader = {**as_user("writer"), "Authorization": f"Bearer {keys['reader']}"}
    script = {"name": "by-key", "type": "shell", "cont": "id"}
    assert request(port, "POST", "/scripts/1", reader, script, source=PROXY)[0] == 403
    app = {**as_user("writer"), "appname": "reader", "appkey": "oj_wrong"}
    assert request(port, "GET", "/jobs/1", app, source=PROXY)[0] == 401


def test_the_openc3_cookie_is_resolved_by_the_connector_and_kept(server):
    c, port, _ = server
    Connector.asked.clear()
    for _ in range(3):
        status, body = request(port, "GET", "/jobs/1", {"Cookie": "other=1; sid=c-reader"})
        assert status == 200 and body["stat"] is True, body
    assert Connector.asked == ["c-reader"]  # asked once within the cache time
    script = {"name": "by-cookie", "type": "shell", "cont": "id"}
    status, _ = request(port, "POST", "/scripts/1", {"Cookie": "sid=c-reader"}, script)
    assert status == 403  # a read user cannot write
    # OpenC3 users sign on with their email: it names the one opsjob user with that email
    status, body = request(port, "POST", "/scripts/1", {"Cookie": "sid=c-mail"}, script)
    assert status == 200, body
    [entry] = c.ok("GET", "/audit?object=scripts")["data"][:1]
    assert entry["user"] == "writer" and entry["key_id"] == 0
    for cookie in ("sid=c-invalid", "sid=c-stranger"):  # nobody; somebody opsjob does not know
        status, body = request(port, "GET", "/jobs/1", {"Cookie": cookie})
        assert status == 401, body
    assert request(port, "GET", "/jobs/1", {"Cookie": "u=c-reader"})[0] == 401  # not `sid`
    asked = len(Connector.asked)
    request(port, "GET", "/jobs/1", {"Cookie": "sid=c-invalid"})
    assert len(Connector.asked) == asked  # a refusal is kept too
    # a public route is served as if no cookie had come (the console page, no key needed)
    status, page = request(port, "GET", "/cmd/1", {"Cookie": "sid=c-invalid"})
    assert status == 200 and "<html" in page.lower()


def live_close_code(port, headers, source="127.0.0.1"):
    async def close_code():
        url = f"ws://127.0.0.1:{port}/slave/any/ws?uuid=nosuchtask00"
        async with websockets.connect(
            url, additional_headers=headers, local_addr=(source, 0)
        ) as ws:
            async for _ in ws:
                pass
        return ws.close_code

    try:
        return asyncio.run(close_code())
    except websockets.ConnectionClosedError as e:
        return e.rcvd.code


def test_websockets_take_the_same_sign_on(server):
    _, port, _ = server
    # signed on, the unknown task is a 404; without a sign-on the socket is refused as 401
    assert live_close_code(port, as_user("reader"), source=PROXY) == 4404
    assert live_close_code(port, {"Cookie": "sid=c-reader"}) == 4404
    assert live_close_code(port, as_user("reader")) == 4401
    assert live_close_code(port, {"Cookie": "sid=c-invalid"}) == 4401
    assert (
        live_close_code(port, {"Cookie": "sid=c-reader", "Origin": "https://evil.example"}) == 4401
    )


def test_sign_on_is_off_by_default(api):
    assert not signon.configure(Settings()).enabled
    for headers in (as_user("root"), {"Cookie": "sid=anything"}):
        assert api.get("/jobs/1", key=None, headers=headers).status_code == 401


def test_peers_and_origins():
    nets = tuple(signon.networks("127.0.0.2, 10.9.0.0/16, ::1"))
    assert signon.trusted("10.9.3.4", nets) and signon.trusted("::ffff:127.0.0.2", nets)
    assert not signon.trusted("127.0.0.1", nets) and not signon.trusted("", nets)
    assert not signon.cross_site({})
    assert not signon.cross_site({"sec-fetch-site": "same-origin"})
    assert signon.cross_site({"sec-fetch-site": "same-site"})
    assert not signon.cross_site({"origin": "https://ui.example.com", "host": "ui.example.com"})
    assert not signon.cross_site(
        {
            "origin": "https://ui.example.com",
            "host": "10.0.0.5:8080",
            "x-forwarded-host": "ui.example.com",
        }
    )
    assert signon.cross_site({"origin": "null", "host": "ui.example.com"})


def test_connector_answers_are_kept_for_a_while_and_failures_never(connector, monkeypatch):
    url = f"http://127.0.0.1:{connector.server_port}/connectorx/username?x=1"
    signon.configure(Settings())
    Connector.asked.clear()
    assert signon.cookie_user("c-reader", url) == "reader"
    assert signon.cookie_user("c-reader", url) == "reader"
    assert Connector.asked == ["c-reader"]
    monkeypatch.setattr(signon, "COOKIE_SECONDS", 0)  # past the cache time it is asked again
    assert signon.cookie_user("c-reader", url) == "reader"
    assert Connector.asked == ["c-reader", "c-reader"]
    with pytest.raises(Unavailable):  # nothing listens there; not kept, asked again next time
        signon.cookie_user("c-reader", f"http://127.0.0.1:{free_port()}/connectorx/username")
    assert signon._user_of(200, b'{"stat": true, "data": "old@example.com"}', "") == (
        "old@example.com"
    )
    assert signon._user_of(200, b'{"stat": false, "info": "sso code error"}', "") == ""
    for status, body in ((200, b"<html>"), (500, b'{"stat": true}'), (200, b"[]")):
        with pytest.raises(Unavailable):
            signon._user_of(status, body, "")


def test_an_email_names_a_user_only_when_it_is_one_users(api):
    with database.connection_context():
        auth.add_user("ann", email="ann@example.com", projectid=1, role="write")
        assert signon.user_principal("ann@example.com").name == "ann"
        auth.add_user("ann2", email="shared@example.com")
        auth.add_user("ann3", email="shared@example.com")
        with pytest.raises(Unauthenticated, match="not an opsjob user"):
            signon.user_principal("shared@example.com")
        with pytest.raises(Unauthenticated):
            signon.user_principal("ann2@")  # no such name, no such email
