"""The audit trail: every successful write through the API leaves exactly one entry (walking
the route table), secrets never reach an entry, the CLI is audited, and GET /audit is scoped."""

import dataclasses
import json
import os
import subprocess
import sys

import pytest

from api.server.app import create_app
from api.server.routing import GROUPS
from api.server.routing import audit as audit_api
from engine.machines import credentials
from engine.store.db import database
from engine.store.models import AuditLog, Vv
from tests.test_credentials import keypair
from tests.test_fileserver import multipart
from tests.test_jobs import cmd_step

OPSJOB = os.path.join(os.path.dirname(sys.executable), "opsjob")
WRITE_ROUTES = {
    (m.upper(), t)
    for g in GROUPS
    for t, r in g.ROUTES
    for m in ("post", "put", "delete", "patch")
    if hasattr(r, f"on_{m}")
}
# Routes that cannot succeed here, and why (each is still walked: a refusal leaves no entry).
CANNOT_SUCCEED = {
    ("POST", "/cmd/ext/{feature}"): "refused by design (501)",
    ("POST", "/cmd/ext/{feature}/{projectid:int}"): "refused by design (501)",
    ("POST", "/subtask/{projectid:int}"): "needs a step waiting for a decision (a worker)",
    ("PUT", "/subtask/{projectid:int}"): "needs a paused step (a worker)",
}


@pytest.fixture
def app(settings):
    credentials.ensure_secret_key(settings)
    return create_app(dataclasses.replace(settings, webhook_allow="*.example.com"))


@pytest.fixture(scope="module")
def ssh_key(tmp_path_factory):
    return keypair(str(tmp_path_factory.mktemp("key")))[0]


def entries():
    with database.connection_context():
        return list(AuditLog.select().order_by(AuditLog.id))


def template_of(app, method, path):
    found = app._router.find(path.split("?", 1)[0])
    return found[3] if found else None


def scenario(api, ssh_key):
    """Yield (method, path, keyword arguments) calls that succeed on each write route, in an
    order where each call finds what it needs; values come from earlier replies."""
    c = {}

    def keep(name, value):
        c[name] = value
        return value

    yield "POST", "/project/1", {"json": {"name": "one", "webhook": ""}}
    yield "POST", "/scripts/1", {"json": {"name": "s", "type": "shell", "cont": "id"}}
    c["sid"] = api.ok("GET", "/scripts/1")[0]["id"]
    yield "POST", f"/scripts/1/{c['sid']}", {"json": {"name": "s", "type": "shell", "cont": "w"}}
    yield "DELETE", f"/scripts/1/{c['sid']}", {}
    job = {"name": "j", "permanent": 1, "data": [cmd_step(scripts_argv="$version")]}
    yield "POST", "/jobs/1", {"json": job}
    c["job"] = api.ok("GET", "/jobs/1?name=j")[0]["uuid"]
    yield "POST", f"/jobs/1/{c['job']}", {"json": job}
    yield "POST", "/jobs/1/copy/byname", {"json": {"fromname": "j", "toname": "k"}}
    yield "DELETE", "/jobs/1/k/byname", {}
    yield "POST", "/jobs/1", {"json": {**job, "name": "gone"}}
    gone = api.ok("GET", "/jobs/1?name=gone")[0]["uuid"]
    yield "DELETE", f"/jobs/1/{gone}", {}
    var = {"jobuuid": c["job"], "name": "color", "describe": "d", "value": "red"}
    yield "POST", "/variable/1", {"json": var}
    yield "POST", "/variable/1/update", {"json": {"jobuuid": c["job"], "data": [var]}}
    mon = {"jobuuid": c["job"], "status": "true", "mon_ids": "tpl1"}
    yield "POST", "/variable/1/update_mon", {"json": mon}
    token = api.ok("GET", f"/variable/1/{c['job']}/token?name=color")
    yield "POST", f"/variable/update/1/{c['job']}/{token}/color/green?updatevalue=1", {"key": None}
    yield "DELETE", "/variable/1", {"json": {"jobuuid": c["job"], "name": "color"}}
    yield "POST", "/variable/1", {"json": {**var, "name": "_authorization_", "value": "1"}}
    job_id = api.ok("GET", "/jobs/1?name=j")[0]["id"]
    yield "DELETE", f"/variable/byid/{job_id}?name=_authorization_", {}
    yield "POST", "/nodelist/1", {"json": {"name": "web::10.0.0.1"}}
    yield "POST", "/nodelist/1", {"json": {"name": "web2::10.0.0.2"}}
    node = api.ok("GET", "/nodelist/1?name=web2")[0]["id"]
    yield "DELETE", f"/nodelist/1/{node}", {}
    mon = {"jobname": "j", "endpoint": "10.0.0.1", "tpl_id": "tpl1", "exp_id": "0"}
    yield "POST", "/task/1/job/bymon", {"json": mon}
    yield "POST", "/task/1/job", {"json": {"jobuuid": c["job"], "variable": {"version": "1"}}}
    yield "POST", "/task/1/job/byname", {"json": {"jobname": "j", "variable": {"version": "1"}}}
    task = api.ok("GET", "/task/1")[0]["uuid"]
    yield "POST", "/task/1/redo", {"json": {"taskuuid": task}}
    yield "DELETE", f"/slave/any/killtask/{task}", {}
    step = {"node_type": "builtin", "node_cont": "web", "scripts_type": "shell"}
    yield "POST", "/task/1/plugin_cmd", {"json": {**step, "scripts_cont": "id"}}
    scp = {"src_type": "builtin", "src": "web", "sp": "/etc/hosts", "dst_type": "builtin"}
    yield "POST", "/task/1/plugin_scp", {"json": {**scp, "dst": "web", "dp": "/tmp/h"}}
    yield (
        "POST",
        "/task/1/plugin_approval",
        {"json": {"name": "a", "cont": "ok?", "approver": "root"}},
    )
    cron = {"name": "c", "jobuuid": c["job"], "cron": "0 3 * * *"}
    yield "POST", "/crontab/1", {"json": cron}
    cid = api.ok("GET", "/crontab/1")[0]["id"]
    yield "POST", f"/crontab/1/{cid}", {"json": {**cron, "cron": "0 4 * * *"}}
    yield "POST", f"/crontab/1/{cid}/status", {"json": {"status": "available"}}
    yield "DELETE", f"/crontab/1/{cid}", {}
    yield "POST", "/credential/1", {"json": {"name": "cr", "username": "ops", "ssh_key": ssh_key}}
    crid = api.ok("GET", "/credential/1")[0]["id"]
    yield "POST", f"/credential/1/{crid}", {"json": {"name": "cr", "become_password": "Sup3r!"}}
    yield "POST", "/nodegroup/1", {"json": {"name": "g", "plugin": "node", "params": "web"}}
    gid = api.ok("GET", "/nodegroup/1")[0]["id"]
    yield "POST", f"/nodegroup/1/{gid}", {"json": {"name": "g", "plugin": "node", "params": "web"}}
    yield "DELETE", f"/nodegroup/1/{gid}", {}
    yield "DELETE", f"/credential/1/{crid}", {}
    yield "POST", "/userlist/1", {"json": {"username": "deploy"}}
    uid = api.ok("GET", "/userlist/1")[0]["id"]
    yield "DELETE", f"/userlist/1/{uid}", {}
    yield "POST", "/token/1", {"json": {"token": "tokn1234567890", "isjob": False, "jobname": ""}}
    tid = api.ok("GET", "/token/1/info")[0]["id"]
    yield "POST", "/token/1/info", {}
    yield "POST", "/notify/1", {"json": {"user": "ops@example.com"}}
    nid = api.ok("GET", "/notify/1")[0]["id"]
    yield "DELETE", f"/notify/1/{nid}", {}
    yield "POST", "/environment", {"json": {"isPageFailEmail": "true"}}
    yield "DELETE", "/environment", {"json": {"key": "isPageFailEmail"}}
    with database.connection_context():  # a node reported a version (as a step's output would)
        Vv.create(projectid=1, node="10.0.0.1", name="app", value="1.2")
    yield "DELETE", "/vv/1/10.0.0.1", {}
    body, ctype = multipart([("file", "a.txt", b"a\n")])
    upload = {"body": body, "headers": {"Content-Type": ctype}}
    yield "POST", "/fileserver/1", upload
    yield "POST", "/uploadv2/fileserver/1", upload
    for path in ("/fileserver/1/upload", "/uploadv2/fileserver/1/upload"):
        headers = {"Content-Type": ctype, "token": "tokn1234567890"}
        yield "POST", path, {"body": body, "headers": headers, "key": None}
    fid = api.ok("GET", "/fileserver/1")[0]["id"]
    yield "DELETE", f"/fileserver/1/{fid}", {}
    yield "DELETE", f"/token/1/{tid}", {}
    yield "POST", "/cmd/1", {"json": {"node": "web", "cmd": "id"}}
    yield "POST", "/cmd/1/ticket", {"json": {"node": "web"}}
    yield "POST", "/slave/ws/ticket", {"json": {"projectid": 1}}
    yield "POST", "/cmd/ext/redis", {}
    yield "POST", "/cmd/ext/redis/1", {}
    third = {"project_id": 1, "uuid": "thirdparty01", "params": {"jobname": "j"}}
    third["params"]["variable"] = {"version": "3"}
    yield "POST", "/third/option/jobname", {"json": {"project_id": 1}}
    yield "POST", "/third/option/variable", {"json": {"project_id": 1, "jobname": "j"}}
    yield "POST", "/third/interface/dry-run", {"json": third}
    yield "POST", "/third/interface/invoke", {"json": third}
    yield "POST", "/third/interface/query", {"json": {"project_id": 1, "uuid": "thirdparty01"}}
    yield "POST", "/third/interface/stop", {"json": {"project_id": 1, "uuid": "thirdparty01"}}
    for path in ("/subtask/1",):
        body = {"taskuuid": task, "subtaskuuid": "x", "subtasktype": "cmd", "control": "next"}
        yield "POST", path, {"json": body}
        yield "PUT", path, {"json": body}
    api.user("ann")
    yield "POST", "/users/ann", {"json": {"disabled": "false"}}
    yield "POST", "/users/ann/keys", {"json": {"expires": "90d"}}
    kid = [u for u in api.ok("GET", "/users") if u["name"] == "ann"][0]["keys"][-1]["id"]
    yield "DELETE", f"/users/ann/keys/{kid}", {}


def test_each_write_route_leaves_exactly_one_entry(app, api, ssh_key):
    succeeded, failed = set(), {}
    for method, path, kw in scenario(api, ssh_key):
        template = template_of(app, method, path)
        if (method, template) in set(CANNOT_SUCCEED) - WRITE_ROUTES:
            continue  # a refused route that no longer takes this method
        assert (method, template) in WRITE_ROUTES, (method, path, template)
        before = len(entries())
        r = api.call(method, path, **kw)
        new = entries()[before:]
        ok = 200 <= r.status_code < 300 and (r.json or {}).get("stat") is not False
        if ok and (method, template) not in audit_api.READS:
            assert len(new) == 1, (method, path, r.status_code, r.text, new)
            [e] = new
            assert (e.method, e.route, e.status) == (method, template, r.status_code)
            assert e.object == audit_api.object_of(template) and e.time is not None
            if "{projectid" in template or template.startswith("/third/interface"):
                assert e.projectid == 1, (template, e.projectid)
            assert e.user in ("root", ""), e.user
            assert e.source, e.source
            succeeded.add((method, template))
        else:
            assert new == [], (method, path, r.status_code, r.text)
            if not ok:
                failed[(method, template)] = (r.status_code, r.text[:200])
    missing = WRITE_ROUTES - succeeded - audit_api.READS - set(CANNOT_SUCCEED)
    assert not missing, {m: failed.get(m, "not called") for m in sorted(missing)}
    assert set(CANNOT_SUCCEED) & WRITE_ROUTES <= set(failed), "one said to fail succeeded"
    assert audit_api.READS <= WRITE_ROUTES, "READS names a route that does not exist"


def test_a_failed_write_leaves_no_entry(api):
    writer = api.user("writer", 1, "write")
    for method, path, body in (
        ("POST", "/scripts/1", {"type": "shell"}),
        ("POST", "/scripts/2", {"name": "x", "type": "shell", "cont": "id"}),
        ("DELETE", "/jobs/1/nosuchjob", None),
    ):
        r = api.call(method, path, json=body, key=writer)
        assert r.status_code >= 400
    assert entries() == []


SECRETS = ("S3cretPassw0rd", "tokn-secret-9876", "hookpathsecret", "hookquerysecret")


def test_secrets_never_reach_an_entry(api, ssh_key):
    cred = {"name": "c", "username": "ops", "password": SECRETS[0], "ssh_key": ssh_key}
    api.ok("POST", "/credential/1", json={**cred, "become_password": SECRETS[0]})
    made = api.ok("POST", "/users/root/keys", json={})
    api.ok("POST", "/token/1", json={"token": SECRETS[1], "isjob": False, "jobname": ""})
    hook = f"https://chat.example.com/{SECRETS[2]}/x?k={SECRETS[3]}"
    api.ok("POST", "/project/1", json={"webhook": hook})
    api.ok("POST", "/scripts/1", json={"name": "s", "type": "shell", "cont": "db_password=x1y2z3"})
    stored = json.dumps([e.__data__ for e in entries()], default=str)
    for secret in (*SECRETS, made["key"], "x1y2z3", "PRIVATE KEY", ssh_key.splitlines()[1]):
        assert secret not in stored, secret
    summaries = [json.loads(e.summary) for e in entries()]
    assert {"name": "c", "username": "ops", "password": "***"}.items() <= summaries[0].items()
    assert {"webhook": "https://chat.example.com/***"} in summaries


def test_masking_rules():
    from engine.insight.audit import mask, mask_url

    assert mask_url("https://u:p@hooks.example.com:8443/T1/B2?x=1") == (
        "https://hooks.example.com:8443/***"
    )
    assert mask({"hostvars": {"ansible_password": "pw", "ansible_port": 22}}) == {
        "hostvars": {"ansible_password": "***", "ansible_port": 22}
    }
    assert mask("curl https://bob:hunter2@x.example.com/a") == "curl https://***@x.example.com/a"
    assert mask({"params": {"inventory": "h ansible_ssh_pass=abc token: 'q w'"}}) == {
        "params": {"inventory": "h ansible_ssh_pass=*** token: ***"}
    }
    long = mask("x" * 500)
    assert long.startswith("x" * 120) and long.endswith("(500 chars)")


def test_listing_is_filtered_paged_and_scoped(api):
    api.ok("POST", "/scripts/1", json={"name": "a", "type": "shell", "cont": "id"})
    api.ok("POST", "/scripts/2", json={"name": "b", "type": "shell", "cont": "id"})
    deleter, writer = api.user("del", 1, "delete"), api.user("wri", 1, "write")
    api.ok("POST", "/userlist/1", json={"username": "x"}, key=deleter)
    everything = api.ok("GET", "/audit")
    assert [e["route"] for e in everything][:3] == [
        "/userlist/{projectid:int}",
        "/scripts/{projectid:int}",
        "/scripts/{projectid:int}",
    ]
    assert everything[0]["user"] == "del" and everything[0]["key_id"] > 0
    assert [e["projectid"] for e in api.ok("GET", "/audit?project=2")] == [2]
    assert [e["object"] for e in api.ok("GET", "/audit?user=del")] == ["userlist"]
    assert len(api.ok("GET", "/audit?object=scripts")) == 2
    assert len(api.ok("GET", "/audit?pagesize=1&page=2")) == 1
    assert api.ok("GET", "/audit?time_start=2000-01-01&time_end=2000-01-02") == []
    mine = api.ok("GET", "/audit?project=1", key=deleter)
    assert {e["projectid"] for e in mine} == {1} and len(mine) == 2
    for key, query in ((deleter, ""), (deleter, "?project=2"), (writer, "?project=1")):
        r = api.get(f"/audit{query}", key=key)
        assert r.status_code == 403, (query, r.text)
    r = api.get("/audit?time_start=yesterday")
    assert r.status_code == 400 and r.json["info"].startswith("time_start")


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
def test_the_cli_is_audited(settings, tmp_path):
    env = {**os.environ, "OPSJOB_HOME": settings.home, "OPSJOB_DATABASE_URL": settings.database}

    def run(*args):
        out = subprocess.run([OPSJOB, *args], env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    run("init")
    key = run("user", "add", "ann", "--admin")
    run("project", "add", "5", "five")
    run("user", "key", "add", "ann")
    run("user", "disable", "ann")
    from engine.store.db import open_database

    open_database(settings.database)
    got = [(e.via, e.object, e.route, e.projectid) for e in entries()]
    assert got == [
        ("cli", "users", "opsjob user add", None),
        ("cli", "project", "opsjob project add", 5),
        ("cli", "users", "opsjob user key add", None),
        ("cli", "users", "opsjob user disable", None),
    ], got
    stored = json.dumps([e.__data__ for e in entries()], default=str)
    assert key not in stored and all(e.source == "cli" and e.user for e in entries())


def test_console_lines_are_audited_with_secrets_masked(api):
    from engine.interactive import terminal

    shell = terminal.Shell(
        projectid=1,
        user="root",
        node="web",
        sudo="",
        argv=[],
        cols=80,
        rows=24,
        key_id=7,
        source="127.0.0.5",
    )
    with database.connection_context():
        terminal.record(shell, "export DB_PASSWORD=hunter22 && deploy")
    [e] = entries()
    assert (e.via, e.route, e.object, e.object_id, e.projectid) == (
        "console",
        "/cmd/{projectid:int}/terminal",
        "cmd",
        "web",
        1,
    )
    assert (e.user, e.key_id, e.source) == ("root", 7, "127.0.0.5")
    assert "hunter22" not in e.summary and "deploy" in e.summary


def test_retention_prunes_old_entries(api, settings):
    import datetime

    from engine.ops import retention
    from engine.store.clock import now

    api.ok("POST", "/scripts/1", json={"name": "a", "type": "shell", "cont": "id"})
    with database.connection_context():
        old = now() - datetime.timedelta(days=91)
        AuditLog.create(time=old, user="root", route="/scripts/{projectid:int}", object="scripts")
    counts = retention.prune(dataclasses.replace(settings, retention_days=90), pause=0)
    assert counts.get("audit_log") == 1, counts
    assert [e.time > old for e in entries()] == [True]


def test_ids_name_the_object_and_secret_path_parts_do_not(api):
    api.ok("POST", "/token/1", json={"token": "tokn1234567890", "isjob": False, "jobname": ""})
    tid = api.ok("GET", "/token/1/info")[0]["id"]
    api.ok("DELETE", f"/token/1/{tid}")
    assert (entries()[-1].object, entries()[-1].object_id) == ("token", str(tid))
    body = {"name": "j", "permanent": 1, "data": [cmd_step(scripts_argv="$color")]}
    job = api.post("/jobs/1", json=body).json["uuid"]
    api.ok("POST", "/variable/1", json={"jobuuid": job, "name": "color", "describe": "d"})
    token = api.ok("GET", f"/variable/1/{job}/token?name=color")
    api.ok("POST", f"/variable/update/1/{job}/{token}/color/green?updatevalue=1", key=None)
    last = entries()[-1]
    assert last.route == "/variable/update/{projectid:int}/{jobuuid}/{token}/{name}/{option}"
    assert token not in json.dumps(last.__data__, default=str) and job in last.object_id
