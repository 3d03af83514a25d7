"""OpenC3's own clients work unchanged: replay the corpus of tests/openc3_corpus.py against a
real server and worker (real HTTP, real runs on loopback sshd nodes), each call sent with the
headers its client sends, each answer checked on status, `stat` and every field it reads."""

import datetime
import json
import re
import time
import urllib.error
import urllib.request
import uuid as uuidlib

import pytest

from tests.cluster import Cluster
from tests.openc3_corpus import ANY, SCENARIOS, Ref

pytestmark = pytest.mark.slow
PID = 1
UI_TYPE = "application/json;charset=utf-8"  # AngularJS's $http
TOOL_TYPE = "application/json"  # LWP in the connector tools and JOBX


@pytest.fixture(scope="module")
def cluster(ssh_nodes):
    c = Cluster(ssh_nodes)
    c.run("project", "add", str(PID), "openc3")
    c.serve()
    c.worker()
    c.add_nodes(PID, ssh_nodes.ensure(2))
    c.keys = {
        "admin": c.key,
        "ui": c.run("user", "add", "ops", "--project", str(PID), "--role", "delete"),
        "dev": c.run("user", "add", "dev", "--project", str(PID), "--role", "control"),
        "tool": c.run("user", "add", "job", "--admin"),
        "jobx": c.run("user", "add", "jobx", "--admin"),
    }
    yield c
    c.close()


def headers(cluster, who, has_body):
    """The headers each client sends."""
    if who in ("ui", "dev", "admin"):
        out = {"Authorization": f"Bearer {cluster.keys[who]}"}
        out["Accept"] = "application/json, text/plain, */*"
        if has_body:
            out["Content-Type"] = UI_TYPE
        return out
    if who in ("tool", "jobx"):
        out = {"appname": who if who == "jobx" else "job", "appkey": cluster.keys[who]}
        if has_body:
            out["Content-Type"] = TOOL_TYPE
        return out
    return {}


def fill(value, ctx):
    """Format the strings of a corpus value with the context; a Ref is the kept value."""
    if isinstance(value, Ref):
        return ctx[value.name]
    if isinstance(value, str):
        return value.format(**ctx) if "{" in value else value
    if isinstance(value, dict):
        return {k: fill(v, ctx) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, ctx) for v in value]
    return value


def multipart(parts):
    boundary = uuidlib.uuid4().hex
    body = b""
    for name, filename, content in parts:
        body += (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
            ).encode()
            + content
            + b"\r\n"
        )
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def send(cluster, call, ctx):
    """Send one corpus call; return (HTTP status, raw body)."""
    body, content_type = None, None
    if call.files:
        body, content_type = multipart([(n, fill(f, ctx), c) for n, f, c in call.files])
    elif call.body is not None:
        value = call.body(ctx) if callable(call.body) else call.body
        body = json.dumps(fill(value, ctx)).encode()
    sent = headers(cluster, call.who, body is not None)
    if content_type:
        sent["Content-Type"] = content_type
    sent.update(fill(call.headers or {}, ctx))
    path = fill(call.path, ctx)
    req = urllib.request.Request(cluster.url + path, data=body, method=call.method)
    for k, v in sent.items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def dig(answer, path):
    """The value at a dotted path; ``*`` maps over a list. Raises KeyError when missing."""
    parts = path.split(".")
    value = answer
    for i, part in enumerate(parts):
        if part == "*":
            rest = ".".join(parts[i + 1 :])
            return [dig(v, rest) if rest else v for v in value]
        if isinstance(value, list):
            value = value[int(part)]
        else:
            value = value[part]
    return value


def matches(expected, value, ctx):
    """Tell whether ``value`` is what the client expects (see openc3_corpus)."""
    if expected is ANY:
        return True
    if isinstance(expected, type):
        return isinstance(value, expected) and not (expected is int and isinstance(value, bool))
    if isinstance(expected, re.Pattern):
        return isinstance(value, str) and expected.fullmatch(value) is not None
    if callable(expected):
        return bool(expected(_Formatted(value, ctx)))
    return value == fill(expected, ctx)


def problems(call, status, raw, ctx):
    """What differs from what the client expects; empty when it gets what it reads."""
    found = []
    if status != call.status:
        found.append(f"status {status}, expected {call.status}")
    if call.raw is not None:
        if raw != call.raw:
            found.append(f"body {raw[:80]!r}, expected {call.raw!r}")
        return found, None
    try:
        answer = json.loads(raw)
    except ValueError:
        return [*found, f"not JSON: {raw[:200]!r}"], None
    if call.stat is not None and answer.get("stat") is not call.stat:
        found.append(f"stat {answer.get('stat')!r}, expected {call.stat!r}")
    for path, expected in call.reads.items():
        try:
            value = dig(answer, path)
        except (KeyError, IndexError, TypeError, ValueError):
            found.append(f"{path} missing")
            continue
        if not matches(expected, value, ctx):
            found.append(f"{path} = {value!r}")
    return found, answer


class _Formatted:
    """An answer's value handed to a corpus predicate: a membership test formats its item
    first, so ``"deploy-{u}" in v`` works."""

    def __init__(self, value, ctx):
        self.value, self.ctx = value, ctx

    def __contains__(self, item):
        return fill(item, self.ctx) in self.value

    def __iter__(self):
        return iter(self.value)

    def __len__(self):
        return len(self.value)

    def __ge__(self, other):
        return self.value >= other


def replay(cluster, calls, ctx):
    """Send each call in order; return the list of failures (empty when all hold)."""
    failures = []
    for n, call in enumerate(calls, start=1):
        deadline = time.monotonic() + (90 if call.poll else 0)
        while True:
            status, raw = send(cluster, call, ctx)
            found, answer = problems(call, status, raw, ctx)
            if not found or time.monotonic() >= deadline:
                break
            time.sleep(0.3)
        label = f"#{n} {call.who} {call.method} {fill(call.path, ctx)}"
        if found:
            failures.append(f"{label}: {'; '.join(found)} -> {raw[:300]!r}")
            break  # later calls depend on this one
        for name, path in call.keep.items():
            ctx[name] = dig(answer, path)
    return failures


def context(ssh_nodes):
    u = uuidlib.uuid4().hex[:8]
    a, b = ssh_nodes.addresses[:2]
    today = datetime.date.today().isoformat()
    return {"pid": PID, "u": u, "u4": u[:4], "a": a, "b": b, "today": today}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_openc3_client_corpus(cluster, ssh_nodes, scenario):
    failures = replay(cluster, SCENARIOS[scenario], context(ssh_nodes))
    assert not failures, "\n".join(failures)


def test_corpus_size_and_reach():
    """The corpus covers every route group OpenC3's clients use, with at least 60 calls."""
    calls = [c for calls in SCENARIOS.values() for c in calls]
    assert len(calls) >= 60
    groups = {c.path.split("/")[1].split("?")[0] for c in calls}
    assert groups >= {
        "jobs",
        "variable",
        "scripts",
        "task",
        "subtask",
        "slave",
        "crontab",
        "nodegroup",
        "nodelist",
        "nodeinfo",
        "userlist",
        "token",
        "notify",
        "environment",
        "vv",
        "fileserver",
        "uploadv2",
        "download",
        "cmd",
        "third",
        "approval",
    }
    assert {c.who for c in calls} == {"ui", "dev", "admin", "tool", "jobx", "anon"}
