"""The routes and values OpenC3's clients need, on every database backend: what the corpus in
tests/test_openc3_clients.py replays end to end, checked here edge by edge."""

import datetime
import os
import time
import types

import pytest

from engine.files import fileserver
from engine.store import secrets
from engine.store.db import database
from engine.store.models import Job, Task
from tests.test_fileserver import upload
from tests.test_jobs import cmd_step

UI = {"Content-Type": "application/json;charset=utf-8"}


def make_job(api, name="deploy", pid=1, **fields):
    body = {"name": name, "permanent": 1, "data": [cmd_step()], **fields}
    r = api.post(f"/jobs/{pid}", json=body)
    assert r.status_code == 200, r.text
    return r.json["uuid"]


@pytest.mark.parametrize(
    "permanent,status",
    [
        ("permanent", "permanent"),
        (1, "permanent"),
        ("1", "permanent"),
        (True, "permanent"),
        ("true", "permanent"),
        (0, "transient"),
        ("0", "transient"),
        (False, "transient"),
        ("false", "transient"),
        ("", "transient"),
        (None, "transient"),
    ],
)
def test_permanent_is_any_true_value(api, permanent, status):
    uuid = make_job(api, permanent=permanent)
    with database.connection_context():
        assert Job.get(Job.uuid == uuid).status == status


def test_values_as_openc3_sends_them(api):
    body = {
        "name": "v",
        "permanent": "permanent",
        "mon_status": "true",
        "mon_ids": None,
        "data": [cmd_step(timeout="", pause=None, user=None, scripts_argv=" ")],
    }
    uuid = api.post("/jobs/1", json=body, headers=UI).json["uuid"]
    job = api.ok("GET", f"/jobs/1/{uuid}")
    assert job["mon_status"] == 1 and job["mon_ids"] == ""
    assert job["data"][0]["timeout"] == 60 and job["data"][0]["scripts_argv"] == " "
    for value, stored in ((False, 0), (True, 1), ("false", 0), ("1", 1)):
        api.ok("POST", f"/jobs/1/{uuid}", json={**body, "mon_status": value})
        assert api.ok("GET", f"/jobs/1/{uuid}")["mon_status"] == stored
    for field, value in (("mon_status", 2), ("mon_status", "maybe"), ("data", "x")):
        r = api.post("/jobs/1", json={**body, "name": "w", field: value})
        assert r.status_code == 400 and r.json["info"].startswith(field), r.text


def test_job_round_trips_unchanged(api):
    uuid = make_job(api)
    job = api.ok("GET", f"/jobs/1/{uuid}")
    kinds = [ref.split("_")[0] for ref in job["uuids"].split(",")]
    steps = [{**s, "plugin_type": k} for s, k in zip(job["data"], kinds, strict=True)]
    assert api.ok("POST", f"/jobs/1/{uuid}", json={**job, "data": steps}) is True
    again = api.ok("GET", f"/jobs/1/{uuid}")
    assert [{k: v for k, v in s.items() if k != "uuid"} for s in again["data"]] == [
        {k: v for k, v in s.items() if k != "uuid"} for s in job["data"]
    ]


def test_byname_of_a_missing_job_is_empty(api):
    assert api.ok("GET", "/jobs/1/byname", params={"name": "_ci_9_"}) == {}
    assert api.ok("GET", "/jobs/1/byname") == {}
    make_job(api, name="_ci_9_", pid=2)  # another project's job is not found either
    assert api.ok("GET", "/jobs/1/byname", params={"name": "_ci_9_"}) == {}


def test_variable_token_link(api, settings):
    secrets.ensure_key_file(settings)
    uuid = make_job(api, data=[cmd_step(scripts_argv="$color $size")])
    token = api.ok("GET", f"/variable/1/{uuid}/token", params={"name": "color"})
    writer = api.user("writer", 1, "write")
    r = api.get(f"/variable/1/{uuid}/token", key=writer, params={"name": "color"})
    assert r.status_code == 403  # admin only, as OpenC3's openc3_job_root
    base = f"/variable/update/1/{uuid}"
    assert api.ok("GET", f"{base}/{token}/color/red,blue", key=None) is True
    api.call("POST", f"{base}/{token}/color/blue", key=None, params={"updatevalue": "1"})
    rows = {v["name"]: v for v in api.ok("GET", f"/variable/1/{uuid}")}
    assert rows["color"]["option"] == "red,blue" and rows["color"]["value"] == "blue"
    for path in (f"{base}/{token}/size/x", f"/variable/update/2/{uuid}/{token}/color/x"):
        r = api.get(path, key=None)
        assert r.status_code == 403 and r.json["info"].startswith("token:"), r.text
    r = api.get(f"{base}/{token}/color/a%20b", key=None)
    assert r.status_code == 400 and r.json["info"].startswith("option:")


def test_variable_byid_and_update_mon(api):
    uuid = make_job(api)
    other = make_job(api, pid=2)
    with database.connection_context():
        jid, other_id = Job.get(Job.uuid == uuid).id, Job.get(Job.uuid == other).id
    api.ok(
        "POST",
        "/variable/1/update",
        json={
            "jobuuid": uuid,
            "data": [{"name": "_authorization_", "value": "true", "describe": "app"}],
        },
    )
    names = [v["name"] for v in api.ok("GET", f"/variable/byid/{jid}")]
    assert names == ["version", "_authorization_"]  # sorted by describe, as OpenC3 does
    assert api.ok("DELETE", f"/variable/byid/{jid}", params={"name": "_authorization_"}) == 1
    assert api.ok("DELETE", f"/variable/byid/{jid}", params={"name": "_authorization_"}) == 0
    one = api.user("one", 1, "delete")
    for method in ("GET", "DELETE"):  # another project's job is not there for this key
        r = api.call(method, f"/variable/byid/{other_id}", key=one, params={"name": "version"})
        assert r.status_code == 404, r.text
    api.ok(
        "POST", "/variable/1/update_mon", json={"jobuuid": uuid, "status": True, "mon_ids": "a,b"}
    )
    job = api.ok("GET", f"/jobs/1/{uuid}")
    assert job["mon_status"] == 1 and job["mon_ids"] == "a,b"
    r = api.post("/variable/1/update_mon", json={"jobuuid": other, "status": True})
    assert r.status_code == 400 and r.json["info"].startswith("jobuuid")


def test_authorization_shortcut(api):
    uuid = make_job(api)
    dev = api.user("dev", 1, "control")
    r = api.post("/task/1/job", key=dev, json={"jobuuid": uuid})
    assert r.status_code == 403
    assert api.ok("GET", "/task/1/authorization/_ci_test_1_/deploy") == 0
    api.ok(
        "POST",
        "/variable/1/update",
        json={
            "jobuuid": uuid,
            "data": [{"name": "_authorization_", "value": "_ci_test_1_", "describe": "jobx group"}],
        },
    )
    assert api.ok("GET", "/task/1/authorization/_ci_test_1_/deploy") == 1
    assert api.ok("GET", "/task/1/authorization/_ci_online_1_/deploy") == 0
    assert api.post("/task/1/job", key=dev, json={"jobuuid": uuid}).status_code == 403
    api.ok(
        "POST",
        "/variable/1/update",
        json={
            "jobuuid": uuid,
            "data": [{"name": "_authorization_", "value": "true", "describe": "app"}],
        },
    )
    task = api.post("/task/1/job", key=dev, json={"jobuuid": uuid}).json["uuid"]
    control = {
        "taskuuid": task,
        "subtaskuuid": "nosuchstep00",
        "subtasktype": "cmd",
        "control": "ignore",
    }
    assert api.post("/subtask/1", key=dev, json=control).status_code == 409  # allowed, no-op
    reader = api.user("reader", 1, "read")
    assert api.post("/subtask/1", key=reader, json=control).status_code == 403
    other = api.post("/task/1/job", json={"jobuuid": make_job(api, name="plain")}).json["uuid"]
    assert api.delete(f"/slave/any/killtask/{other}", key=dev).status_code == 403
    killed = api.delete(f"/slave/any/killtask/{task}", key=dev)
    assert killed.status_code == 200 and killed.json["stat"] is True, killed.text


def test_total_count(api):
    uuid = make_job(api)
    task = api.post("/task/1/job", json={"jobuuid": uuid}).json["uuid"]
    day = datetime.date(2026, 3, 4)
    with database.connection_context():
        Task.update(status="success", starttime=datetime.datetime(2026, 3, 4, 23, 59, 59)).where(
            Task.uuid == task
        ).execute()
    span = {"time_start": day.isoformat(), "time_end": day.isoformat()}
    assert api.ok("GET", "/task/1/total_count", params=span) == {
        "success": 1,
        "running": 0,
        "fail": 0,
    }
    after = {"time_start": "2026-03-05", "time_end": "2026-03-05"}
    assert api.ok("GET", "/task/1/total_count", params=after)["success"] == 0
    r = api.get("/task/1/total_count", params={"time_start": "2026-03-05"})
    assert r.status_code == 400 and r.json["info"].startswith("time_end")


def test_job_bymon(api):
    uuid = make_job(api, name="heal")
    query = {"jobname": "heal", "endpoint": "10.0.0.7", "tpl_id": "t1", "exp_id": "e1"}
    r = api.get("/task/1/job/bymon", params=query)
    assert r.status_code == 400 and r.json["info"].startswith("jobname")
    api.ok("POST", "/variable/1/update_mon", json={"jobuuid": uuid, "status": 1, "mon_ids": "e1"})
    r = api.post("/task/1/job/bymon", json=query)
    assert r.status_code == 200 and len(r.json["uuid"]) == 12, r.text
    assert "ip: 10.0.0.7" in api.ok("GET", f"/task/1/{r.json['uuid']}")["variable"]
    with database.connection_context():
        Task.update(status="running").where(Task.uuid == r.json["uuid"]).execute()
    assert api.get("/task/1/job/bymon", params=query).status_code == 409
    r = api.get("/task/1/job/bymon", params={**query, "exp_id": "e2"})
    assert r.status_code == 400 and r.json["info"].startswith("tpl_id")


def test_third_query_and_stop_need_only_the_uuid(api):
    make_job(api, name="orch", pid=2)
    run = {"project_id": 2, "uuid": "abcdefghijk0", "params": {"jobname": "orch"}}
    assert api.post("/third/interface/invoke", json=run).status_code == 200
    got = api.post("/third/interface/query", json={"uuid": "abcdefghijk0"})
    assert got.status_code == 200 and got.json["status"] == "running", got.text
    one = api.user("one", 1, "delete")  # a key of project 1 does not see project 2's run
    for route in ("query", "stop"):
        r = api.post(f"/third/interface/{route}", key=one, json={"uuid": "abcdefghijk0"})
        assert r.status_code == 404, r.text
    reader = api.user("reader", 2, "read")
    assert api.post("/third/interface/query", key=reader, json={"uuid": "abcdefghijk0"}).json[
        "stat"
    ]
    r = api.post("/third/interface/stop", key=reader, json={"uuid": "abcdefghijk0"})
    assert r.status_code == 403
    r = api.post("/third/interface/stop", json={"uuid": "abcdefghijk0", "retry_count": "0"})
    assert r.status_code == 200 and r.json["stat"] is True, r.text


def test_download_links_work_once_and_expire(api, monkeypatch):
    assert upload(api, "/uploadv2/fileserver/1", [("file", "a.txt", b"alpha\n")]).json["data"] == 1
    link = api.ok("GET", "/fileserver/1/download", params={"name": "a.txt"})
    got = api.get(f"/download/{link}", key=None)
    assert got.status_code == 200 and got.content == b"alpha\n"
    assert 'filename="a.txt"' in got.headers["content-disposition"]
    assert api.get(f"/download/{link}", key=None).status_code == 404  # used up
    reader = api.user("reader", 1, "read")
    late = api.ok("GET", "/fileserver/1/download", key=reader, params={"name": "a.txt"})
    later = time.time() + fileserver.LINK_SECONDS + 1
    monkeypatch.setattr(fileserver, "time", types.SimpleNamespace(time=lambda: later))
    assert api.get(f"/download/{late}", key=None).status_code == 404  # expired
    for bad in ("x" * 32, "../../etc/passwd", "a" * 33, "%2e%2e"):
        r = api.get(f"/download/{bad}", key=None)
        assert r.status_code == 404 and r.json["stat"] is False, (bad, r.text)
    assert api.get("/fileserver/2/download", params={"name": "a.txt"}).status_code == 404
    direct = api.get("/fileserver/1/download", params={"name": "a.txt", "stream": "1"})
    assert direct.content == b"alpha\n"


def test_expired_links_are_swept(api, settings, monkeypatch):
    upload(api, "/fileserver/1", [("file", "a.txt", b"a")])
    first = api.ok("GET", "/fileserver/1/download", params={"name": "a.txt"})
    folder = os.path.join(settings.home, "filestore", "links")
    old = time.time() - 3600
    os.utime(os.path.join(folder, first), (old, old))
    api.ok("GET", "/fileserver/1/download", params={"name": "a.txt"})
    assert first not in os.listdir(folder) and len(os.listdir(folder)) == 1


def test_app_callers_get_refusals_as_openc3_sent_them(api):
    """appname/appkey callers (OpenC3's tools, JOBX) read a refusal from `stat` with HTTP 200;
    JOBX would retry a 4xx start forever. Other callers get real statuses."""
    key = api.user("jobx", 1, "write")
    app = {"appname": "jobx", "appkey": key}
    cases = [
        ("POST", "/task/1/job/byname", {"jobname": "nosuch"}, 400, "jobname"),
        ("GET", "/jobs/2", None, 403, "not allowed"),
        ("GET", "/task/1/nosuchtask00", None, 404, "uuid"),
        ("GET", "/variable/1/nosuchjob", None, 404, "jobuuid"),
    ]
    for method, path, body, status, info in cases:
        r = api.call(method, path, key=None, headers=app, json=body)
        assert r.status_code == 200 and r.json["stat"] is False, (path, r.status_code)
        assert r.json["info"].startswith(info), r.text
        assert api.call(method, path, key=key, json=body).status_code == status
    bad = {"appname": "jobx", "appkey": "oj_wrong"}
    assert api.get("/jobs/1", key=None, headers=bad).status_code == 401
