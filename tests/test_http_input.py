"""No input yields a 500: ids beyond what a database column holds, and bodies sent chunked."""

import json
import socket

import pytest

from api.http.params import MAX_BODY
from api.server.openapi import path_of
from api.server.routing import GROUPS
from tests.cluster import Cluster
from tests.test_bad_input import ids  # noqa: F401  (fixture)
from tests.test_jobs import cmd_step

HUGE = [2**63, 2**64, 10**30, -(2**63) - 1]
ROUTES = [
    (m.upper(), path_of(t))
    for g in GROUPS
    for t, r in g.ROUTES
    for m in ("get", "post", "put", "delete")
    if hasattr(r, f"on_{m}")
]


class Huge(dict):
    """Path values: the given ones, and ``value`` for every other name."""

    def __init__(self, value, **given):
        super().__init__(given)
        self.value = value

    def __missing__(self, key):
        return str(self.value)


def test_huge_ids_in_any_path_are_404_or_400(api, ids):  # noqa: F811
    """Every route with a path id: a huge project id is a 404; huge values for all its path
    ids are refused, never a 500."""
    routes = [(m, p) for m, p in ROUTES if "{" in p]
    assert len(routes) > 60
    given = {k: v for k, v in ids.items() if k != "projectid"}
    for method, path in routes:
        for value in (2**64, -(2**63) - 1):
            if "{projectid}" in path:
                url = path.format_map(Huge(value, **given))
                r = api.call(method, url, json={})
                assert r.status_code == 404, (method, url, r.status_code, r.text)
            url = path.format_map(Huge(value, slave="any"))
            r = api.call(method, url, json={})
            assert r.status_code in (400, 403, 404), (method, url, r.status_code, r.text)
            assert r.json["stat"] is False


@pytest.mark.parametrize("value", HUGE)
def test_huge_ids_in_bodies_are_400_or_404(api, ids, value):  # noqa: F811
    job = ids["jobuuid"]
    cases = [
        ("POST", "/jobs/1/copy/byname", {"fromname": "j", "toname": "k", "toprojectid": value}),
        ("POST", "/nodegroup/1", {"name": "g2", "plugin": "node", "credential": value}),
        ("POST", "/nodelist/1", {"name": "web::10.0.0.1", "credential": value}),
        ("POST", "/third/option/jobname", {"project_id": value}),
        ("POST", "/third/option/variable", {"project_id": value, "jobname": "j"}),
        ("POST", "/jobs/1", {"name": "h", "data": [cmd_step(node_type="group", node_cont=value)]}),
        (
            "POST",
            "/jobs/1",
            {"name": "h", "data": [cmd_step(scripts_type="cite", scripts_cont=value)]},
        ),
        ("POST", "/task/1/plugin_cmd", cmd_step(node_type="group", node_cont=str(value))),
        ("POST", f"/crontab/1/{value}", {"name": "c", "jobuuid": job, "cron": "* * * * *"}),
        ("POST", "/cmd/1", {"node": "a", "cmd": "id", "timeout": value}),
        ("GET", "/task/1", {"page": value, "pagesize": value}),
        ("GET", "/slave/any/tasklog/nosuchtask00", {"offset": value}),
    ]
    for method, path, body in cases:
        if method == "GET":
            r = api.get(path, params={k: str(v) for k, v in body.items()})
        else:
            r = api.call(method, path, json=body)
        assert r.status_code in (400, 404), (method, path, body, r.status_code, r.text)
        assert r.json["stat"] is False


# -- chunked bodies through a real server -------------------------------------------------------


@pytest.fixture(scope="module")
def server():
    c = Cluster(None)
    c.run("project", "add", "1", "http")
    c.serve()
    yield c
    c.close()


def send_chunked(server, path, content_type, parts):
    """POST ``parts`` (bytes) as chunks over a raw socket; return (status, JSON body)."""
    host, port = server.url.rsplit("/", 1)[-1].split(":")
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {server.key}\r\nContent-Type: {content_type}\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    ).encode()
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
    with socket.create_connection((host, int(port)), timeout=30) as s:
        answer = b""
        try:
            s.sendall(head + body)
            while chunk := s.recv(65536):
                answer += chunk
        except (BrokenPipeError, ConnectionResetError):
            pass  # a server that refused the body early may close before reading it all
    head, _, rest = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in head.lower():
        out = b""
        while rest:
            size, _, rest = rest.partition(b"\r\n")
            n = int(size, 16)
            if not n:
                break
            out, rest = out + rest[:n], rest[n + 2 :]
        rest = out
    return status, json.loads(rest)


def test_a_chunked_json_body_is_read(server):
    body = json.dumps({"name": "chunked", "type": "shell", "cont": "echo from chunks"}).encode()
    status, answer = send_chunked(
        server, "/scripts/1", "application/json", [body[:10], body[10:25], body[25:]]
    )
    assert status == 200 and answer["stat"] is True, answer
    names = [s["name"] for s in server.ok("GET", "/scripts/1")["data"]]
    assert "chunked" in names


def test_a_chunked_form_body_is_read(server):
    status, answer = send_chunked(
        server,
        "/scripts/1",
        "application/x-www-form-urlencoded",
        [b"name=form", b"chunk&type=shell&cont=id"],
    )
    assert status == 200 and answer["stat"] is True, answer


def test_a_chunked_body_over_the_limit_is_413(server):
    filler = b'{"name": "big", "type": "shell", "cont": "' + b"x" * MAX_BODY + b'"}'
    status, answer = send_chunked(
        server,
        "/scripts/1",
        "application/json",
        [filler[i : i + 65536] for i in range(0, len(filler), 65536)],
    )
    assert status == 413 and answer["info"].startswith("body:"), answer


def test_a_chunked_upload_gets_a_clear_411(server):
    boundary = "xyzzy"
    part = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\nhello\r\n--{boundary}--\r\n"
    ).encode()
    status, answer = send_chunked(
        server, "/fileserver/1", f"multipart/form-data; boundary={boundary}", [part[:30], part[30:]]
    )
    assert status == 411, answer
    assert answer["stat"] is False and answer["info"].startswith("file:"), answer
    assert server.ok("GET", "/fileserver/1")["data"] == []
