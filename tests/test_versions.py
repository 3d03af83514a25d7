"""Version variables: the NAME:[value] grammar, capture from real runs, job version
bookkeeping, and the /vv routes (on SQLite and PostgreSQL)."""

import datetime

import pytest

from engine.insight import versions
from engine.run import worker
from engine.store.db import database
from engine.store.models import Vv

PID = 1


def test_scan_grammar():
    text = (
        "myver:[1.2.3]\n"
        "build: BUILD:[R2-Final_x.9] trailing\n"
        "a:[1]\n"  # a name needs two characters
        "9:[1] _x:[1]\n"  # a name starts with a letter
        "sp:[a b] empty:[]\n"  # no spaces, not empty
        "twice:[1] twice:[2]\n"
    )
    assert versions.scan(text) == {"myver": "1.2.3", "BUILD": "R2-Final_x.9", "twice": "2"}
    assert versions.scan("x" * 101 + ":[1]") == {}  # longer than a name may be
    assert versions.scan(None) == {}


def put(pid, node, values, stamp):
    with database.connection_context():
        versions.record(pid, node, values, stamp)


def test_routes_filter_shape_and_isolate(api):
    old = datetime.datetime(2024, 1, 10, 8, 0, 0)
    new = datetime.datetime.now().replace(microsecond=0)
    put(PID, "10.0.0.1", {"VERSION": "1.0", "myver": "a"}, old)
    put(PID, "10.0.0.1", {"VERSION": "2.0"}, new)  # an upsert: one row, newer value
    put(PID, "10.0.0.2", {"VERSION": "Do_2.0", "APP_web_VERSION": "v9"}, new)
    put(PID, "10.0.0.3", {"VERSION": "2.0", "other": "X1"}, new)
    put(2, "10.0.0.9", {"VERSION": "secret"}, new)

    rows = api.ok("GET", f"/vv/{PID}")
    assert len(rows) == 6 and set(rows[0]) == {"id", "node", "name", "value", "update_time"}
    one = api.ok("GET", f"/vv/{PID}", params={"node": "10.0.0.1", "name": "VERSION"})
    assert [(r["value"], r["update_time"]) for r in one] == [("2.0", new.strftime("%F %T"))]
    dated = api.ok(
        "GET", f"/vv/{PID}", params={"time_start": "2024-01-10", "time_end": "2024-01-10"}
    )
    assert [(r["node"], r["name"], r["value"]) for r in dated] == [("10.0.0.1", "myver", "a")]
    assert len(api.ok("GET", f"/vv/{PID}", params={"pagesize": 2, "page": 3})) == 2
    assert api.ok("GET", f"/vv/{PID}", params={"name": "VERS"}) == []  # exact, not LIKE

    table = api.ok("GET", f"/vv/{PID}/table")
    assert table[0] == ["NODE", "APP_web_VERSION", "VERSION", "myver", "other"]
    assert sorted(table[1:]) == [
        ["10.0.0.1", None, "2.0", "a", None],
        ["10.0.0.2", "v9", "Do_2.0", None, None],
        ["10.0.0.3", None, "2.0", None, "X1"],
    ]
    assert api.ok("GET", f"/vv/{PID}/table", params={"name": "other"}) == [
        ["NODE", "other"],
        ["10.0.0.3", "X1"],
    ]

    share = api.ok("GET", f"/vv/{PID}/analysis/version")
    assert share == [
        {"name": "APP_web_VERSION", "data": {"v9": "100.00"}},
        {"name": "VERSION", "data": {"2.0": "66.67", "Do_2.0": "33.33"}},
    ]
    values = api.ok("GET", f"/vv/{PID}/list")
    assert sorted(values) == ["2.0", "X1", "a", "v9"] and values[-1] == "a"  # newest first
    assert api.ok("GET", f"/vv/{PID}/list", params={"appname": "web"}) == ["v9"]

    # another project's key sees nothing of this one, and this one's values stay its own
    other = api.user("other", 2, "delete")
    assert api.get(f"/vv/{PID}", key=other).status_code == 403
    assert [r["value"] for r in api.ok("GET", "/vv/2", key=other)] == ["secret"]
    assert api.delete(f"/vv/{PID}/10.0.0.1", key=other).status_code == 403

    reader = api.user("reader", PID, "write")
    assert api.delete(f"/vv/{PID}/10.0.0.1", key=reader).status_code == 403  # delete role
    assert api.ok("DELETE", f"/vv/{PID}/10.0.0.1") == "delete success"
    assert {r["node"] for r in api.ok("GET", f"/vv/{PID}")} == {"10.0.0.2", "10.0.0.3"}
    r = api.delete(f"/vv/{PID}/10.0.0.1")
    assert r.status_code == 404 and r.json["info"].startswith("node:")
    with database.connection_context():
        assert Vv.select().where(Vv.projectid == 2).count() == 1


def test_version_share_looks_back_one_year(api):
    now = datetime.datetime.now().replace(microsecond=0)
    put(PID, "n1", {"VERSION": "1"}, now - datetime.timedelta(days=400))
    put(PID, "n2", {"VERSION": "2", "APPXwebXVERSION": "no", "notes": "x"}, now)
    assert api.ok("GET", f"/vv/{PID}/analysis/version") == [
        {"name": "VERSION", "data": {"2": "100.00"}}
    ]


def test_bad_filters_are_400(api):
    for query, field in (
        ({"time_start": "2024-1-1"}, "time_start"),
        ({"node": "x" * 201}, "node"),
        ({"pagesize": "0"}, "pagesize"),
    ):
        r = api.get(f"/vv/{PID}", params=query)
        assert r.status_code == 400 and r.json["info"].startswith(field), r.json
    r = api.get(f"/vv/{PID}/list", params={"appname": "a'b"})
    assert r.status_code == 400 and r.json["info"].startswith("appname")


# -- from real runs -------------------------------------------------------------------------------


@pytest.fixture
def nodes(api, ssh_nodes):
    """Two loopback nodes attached to project 1."""
    addresses = ssh_nodes.ensure(2)
    for address in addresses:
        conn = {k: v for k, v in ssh_nodes.conn_vars(address).items() if k != "ansible_host"}
        api.ok("POST", f"/nodelist/{PID}", json={"name": address, "hostvars": conn})
    return addresses


def run_here(uuid):
    """Run (or resume) a queued task in this process, as a worker would."""
    worker.run_task(uuid)
    with database.connection_context():
        from engine.store.models import Task

        return Task.get(Task.uuid == uuid).status


def vv_of(api, name):
    return {r["node"]: r["value"] for r in api.ok("GET", f"/vv/{PID}", params={"name": name})}


def test_runs_capture_values_and_book_the_job_version(api, nodes):
    a, b = nodes
    report = (
        'me=$(echo $SSH_CONNECTION | cut -d" " -f3); echo "myver:[1.2.${me##*.}]"; '
        'echo "noise BUILD:[Rel-7] more"; echo "lower:[UPPER.ok]"'
    )
    step = {
        "plugin_type": "cmd",
        "name": "report",
        "node_type": "builtin",
        "node_cont": f"{a},{b}",
        "scripts_type": "shell",
        "scripts_cont": report,
        "pause": "look at the versions",
    }
    job = api.post(f"/jobs/{PID}", json={"name": "deploy", "permanent": 1, "data": [step]})
    jobuuid = job.json["uuid"]
    variable = {"version": "2.0.1", "ip": f"{a},{b}", "_appname_": "web"}
    uuid = api.post(f"/task/{PID}/job", json={"jobuuid": jobuuid, "variable": variable}).json[
        "uuid"
    ]
    assert run_here(uuid) == "waiting"  # paused after the step: the run is under way
    assert vv_of(api, "APP_web_VERSION") == {a: "Do_2.0.1", b: "Do_2.0.1"}
    assert vv_of(api, "myver") == {a: f"1.2.{a.rsplit('.', 1)[1]}", b: f"1.2.{b.rsplit('.', 1)[1]}"}
    assert vv_of(api, "BUILD") == {a: "Rel-7", b: "Rel-7"}
    assert vv_of(api, "lower") == {a: "UPPER.ok", b: "UPPER.ok"}
    assert vv_of(api, "VERSION") == {}  # _appname_ names the variable

    sub = api.ok("GET", f"/subtask/{PID}/{uuid}")[0]
    api.ok(
        "POST",
        f"/subtask/{PID}",
        json={
            "taskuuid": uuid,
            "subtaskuuid": sub["uuid"],
            "subtasktype": "cmd",
            "control": "next",
        },
    )
    assert run_here(uuid) == "success"
    assert vv_of(api, "APP_web_VERSION") == {a: "2.0.1", b: "2.0.1"}
    assert api.ok("GET", f"/vv/{PID}/list", params={"appname": "web"}) == ["2.0.1"]

    # a failed run keeps the Do_ marker; without _appname_ the name is VERSION
    fail = dict(step, scripts_cont="exit 1", pause="")
    jobuuid = api.post(
        f"/jobs/{PID}", json={"name": "broken", "permanent": 1, "data": [fail]}
    ).json["uuid"]
    uuid = api.post(
        f"/task/{PID}/job",
        json={"jobuuid": jobuuid, "variable": {"version": "3", "ip": a, "_exit_": "1"}},
    ).json["uuid"]
    assert run_here(uuid) == "fail"
    assert vv_of(api, "VERSION") == {a: "Do_3"}
