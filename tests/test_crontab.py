import datetime

import pytest

from engine.schedule import cron
from engine.store.db import database
from engine.store.models import Crontab, Job


def add_job(uuid, projectid=1, status="permanent"):
    with database.connection_context():
        Job.create(projectid=projectid, uuid=uuid, name=f"job-{uuid}", status=status)


def body(**kw):
    return {"name": "nightly", "jobuuid": "J1", "cron": "30 2 * * *", "mutex": "", **kw}


@pytest.fixture
def jobs(api):
    add_job("J1")
    add_job("J2", status="transient")
    add_job("P2", projectid=2)
    add_job("GONE", status="deleted")
    return api


def create(api, pid=1, **kw):
    r = api.post(f"/crontab/{pid}", json=body(**kw))
    assert r.status_code == 200 and r.json["data"] is True, r.text
    return r.json["id"]


def test_crontab_lifecycle(jobs):
    api = jobs
    cid = create(api, mutex="m1")
    rows = api.ok("GET", "/crontab/1")
    assert [(r["id"], r["name"], r["status"]) for r in rows] == [(cid, "nightly", "unavailable")]
    assert set(rows[0]) == {
        "id",
        "name",
        "jobuuid",
        "cron",
        "mutex",
        "mutex_policy",
        "status",
        "create_user",
        "create_time",
        "edit_user",
        "edit_time",
    }
    assert rows[0]["create_user"] == "root" and rows[0]["mutex"] == "m1"
    assert rows[0]["mutex_policy"] == "fail"  # the default
    assert api.ok("GET", "/crontab/1/count") == {"available": 0, "unavailable": 1}

    assert api.ok("POST", f"/crontab/1/{cid}/status", json={"status": "available"}) is True
    assert api.ok("GET", "/crontab/1/count") == {"available": 1, "unavailable": 0}

    edited = body(name="hourly", jobuuid="J2", cron="0 * * * 1-5", mutex="")
    assert api.ok("POST", f"/crontab/1/{cid}", json=edited) is True
    detail = api.ok("GET", f"/crontab/1/{cid}")
    assert {k: detail[k] for k in ("name", "jobuuid", "cron", "mutex", "status", "cont")} == {
        "name": "hourly",
        "jobuuid": "J2",
        "cron": "0 * * * 1-5",
        "mutex": "",
        "status": "available",
        "cont": "",
    }

    assert api.ok("DELETE", f"/crontab/1/{cid}") is True
    assert api.ok("GET", "/crontab/1") == []
    assert api.ok("GET", "/crontab/1/count") == {"available": 0, "unavailable": 0}
    assert api.get(f"/crontab/1/{cid}").status_code == 404
    assert api.delete(f"/crontab/1/{cid}").status_code == 404


def test_detail_lists_the_next_five_fire_times_in_local_time(jobs):
    before = datetime.datetime.now().replace(second=0, microsecond=0)
    cid = create(jobs, cron="*/7 * * * *")
    upcoming = jobs.ok("GET", f"/crontab/1/{cid}")["next"]
    times = [datetime.datetime.strptime(t, "%Y-%m-%d %H:%M:%S") for t in upcoming]
    assert len(times) == 5 and times == sorted(set(times))
    assert all(cron.matches("*/7 * * * *", t) for t in times)
    assert before < times[0] <= before + datetime.timedelta(minutes=8)
    assert times == cron.next_times("*/7 * * * *", times[0] - datetime.timedelta(minutes=1))


def test_soft_delete_suffixes_the_name(jobs):
    cid = create(jobs)
    jobs.ok("DELETE", f"/crontab/1/{cid}")
    with database.connection_context():
        row = Crontab.get_by_id(cid)
    assert row.status == "deleted" and row.name.startswith("nightly_")
    assert len(row.name) == len("nightly_") + 17  # YYYYmmddHHMMSS + milliseconds
    again = create(jobs)
    assert [r["id"] for r in jobs.ok("GET", "/crontab/1")] == [again]


def test_list_filters_paging_newest_first(jobs):
    for n in ("alpha", "beta", "gamma"):
        create(jobs, name=n)

    def names(**q):
        return [r["name"] for r in jobs.ok("GET", "/crontab/1", params=q)]

    assert names() == ["gamma", "beta", "alpha"]
    assert names(name="ET") == ["beta"]
    assert names(create_user="root") == ["gamma", "beta", "alpha"]
    assert names(edit_user="nobody") == []
    today = datetime.date.today()
    assert len(names(create_time_start=str(today), edit_time_end=str(today))) == 3
    assert names(create_time_end=str(today - datetime.timedelta(days=1))) == []
    assert names(pagesize="2", page="2") == ["alpha"]
    r = jobs.get("/crontab/1", params={"pagesize": "0"})
    assert r.status_code == 400 and r.json["info"].startswith("pagesize:")


@pytest.mark.parametrize(
    "change, field",
    [
        ({"name": None}, "name"),
        ({"name": ""}, "name"),
        ({"name": ["x"]}, "name"),
        ({"name": "n" * 101}, "name"),
        ({"jobuuid": None}, "jobuuid"),
        ({"jobuuid": "J-1"}, "jobuuid"),
        ({"jobuuid": {"a": 1}}, "jobuuid"),
        ({"jobuuid": "NOPE"}, "jobuuid"),
        ({"jobuuid": "P2"}, "jobuuid"),  # a job of project 2
        ({"jobuuid": "GONE"}, "jobuuid"),  # a deleted job
        ({"cron": None}, "cron"),
        ({"cron": "0 25 * * *"}, "cron: hour field '25' is out of range 0-23"),
        ({"cron": "0 0 * * MON"}, "cron: weekday field"),
        ({"cron": "@hourly"}, "cron"),
        ({"cron": 5}, "cron"),
        ({"mutex": "a b"}, "mutex"),
        ({"mutex": "m" * 101}, "mutex"),
        ({"mutex_policy": "wait"}, "mutex_policy"),
        ({"mutex_policy": ["queue"]}, "mutex_policy"),
    ],
)
def test_create_and_edit_reject_bad_fields(jobs, change, field):
    cid = create(jobs)
    for path in ("/crontab/1", f"/crontab/1/{cid}"):
        r = jobs.post(path, json=body(**change))
        assert r.status_code == 400 and r.json["info"].startswith(field), (path, r.text)
    assert [r["name"] for r in jobs.ok("GET", "/crontab/1")] == ["nightly"]


def test_form_fields_are_accepted(jobs):
    r = jobs.post(
        "/crontab/1",
        body="name=f&jobuuid=J1&cron=0+0+*+*+*",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200, r.text
    assert jobs.ok("GET", f"/crontab/1/{r.json['id']}")["cron"] == "0 0 * * *"


@pytest.mark.parametrize("status", [None, "deleted", "on", ["available"]])
def test_status_must_be_available_or_unavailable(jobs, status):
    cid = create(jobs)
    r = jobs.post(f"/crontab/1/{cid}/status", json={"status": status})
    assert r.status_code == 400 and r.json["info"].startswith("status:"), r.text
    assert jobs.ok("GET", f"/crontab/1/{cid}")["status"] == "unavailable"


@pytest.mark.parametrize("cid", ["999999", "abc", "-1"])
def test_unknown_ids_are_404(jobs, cid):
    assert jobs.get(f"/crontab/1/{cid}").status_code == 404
    assert jobs.post(f"/crontab/1/{cid}", json=body()).status_code == 404
    r = jobs.post(f"/crontab/1/{cid}/status", json={"status": "available"})
    assert r.status_code == 404 and r.json["info"].startswith("crontabid:")
    assert jobs.delete(f"/crontab/1/{cid}").status_code == 404


def test_project_isolation(jobs):
    api = jobs
    other = create(api, pid=2, jobuuid="P2")
    u1 = api.user("u1", 1, "delete")
    assert api.ok("GET", "/crontab/1", key=u1) == []
    for method, path, payload in [
        ("GET", "/crontab/2", None),
        ("GET", "/crontab/2/count", None),
        ("GET", f"/crontab/2/{other}", None),
        ("POST", "/crontab/2", body(jobuuid="P2")),
        ("POST", f"/crontab/2/{other}", body(jobuuid="P2")),
        ("POST", f"/crontab/2/{other}/status", {"status": "available"}),
        ("DELETE", f"/crontab/2/{other}", None),
    ]:
        assert api.call(method, path, key=u1, json=payload).status_code == 403, (method, path)
    for key in ("admin", u1):
        assert api.get(f"/crontab/1/{other}", key=key).status_code == 404
        assert api.post(f"/crontab/1/{other}", key=key, json=body()).status_code == 404
        r = api.post(f"/crontab/1/{other}/status", key=key, json={"status": "available"})
        assert r.status_code == 404
        assert api.delete(f"/crontab/1/{other}", key=key).status_code == 404
    assert api.ok("GET", "/crontab/1/count", key=u1) == {"available": 0, "unavailable": 0}
    assert api.ok("GET", f"/crontab/2/{other}")["status"] == "unavailable"


def test_read_role_cannot_write_or_delete(jobs):
    cid = create(jobs)
    reader = jobs.user("reader", 1, "read")
    assert jobs.ok("GET", "/crontab/1", key=reader)[0]["id"] == cid
    assert jobs.ok("GET", f"/crontab/1/{cid}", key=reader)["name"] == "nightly"
    assert jobs.post("/crontab/1", key=reader, json=body()).status_code == 403
    assert jobs.post(f"/crontab/1/{cid}", key=reader, json=body(name="x")).status_code == 403
    r = jobs.post(f"/crontab/1/{cid}/status", key=reader, json={"status": "available"})
    assert r.status_code == 403
    assert jobs.delete(f"/crontab/1/{cid}", key=reader).status_code == 403
    writer = jobs.user("writer", 1, "write")
    assert jobs.ok("POST", f"/crontab/1/{cid}/status", key=writer, json={"status": "available"})
    assert jobs.delete(f"/crontab/1/{cid}", key=writer).status_code == 403
    assert jobs.ok("GET", f"/crontab/1/{cid}")["edit_user"] == "writer"
