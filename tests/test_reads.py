"""The read routes' fast shaping answers exactly what shaping model instances answered."""

import datetime
import json

import yaml

from engine.run.tasks import DETAIL_FIELDS
from engine.store.clock import fmt
from engine.store.db import database
from engine.store.listing import Columns, as_dict
from engine.store.models import LogChunk, Task
from engine.store.prepared import Prepared
from engine.tasklog import logs


def test_columns_shape_rows_as_model_instances_are_shaped(api):
    moment = datetime.datetime(2026, 3, 4, 5, 6, 7, 891011)
    with database.connection_context():
        Task.create(projectid=1, uuid="aaaaaaaaaaaa", starttime=moment, runtime=0.1 + 0.2, pid=7)
        Task.create(projectid=1, uuid="bbbbbbbbbbbb", reason="no run")
        columns = Columns(Task, DETAIL_FIELDS)
        fast = columns.rows(columns.select().order_by(Task.id))
        slow = [as_dict(t, DETAIL_FIELDS) for t in Task.select().order_by(Task.id)]
    assert fast == slow and fast[0]["starttime"] == "2026-03-04 05:06:07"


def test_a_prepared_query_answers_what_peewee_builds_for_each_value(api):
    def build(projectid, name, limit):
        return (
            Task.select(Task.uuid)
            .where(Task.projectid == projectid, Task.name != name)
            .order_by(Task.id)
            .limit(limit)
        )

    prepared = Prepared(lambda arg: build(arg("projectid"), arg("name"), arg("limit")))
    with database.connection_context():
        for n in range(6):
            Task.create(projectid=1 + n % 2, uuid=f"p{n:011d}", name=f"t{n}")
        # "2": the compared column's conversion applies, as peewee's own would (int()).
        for projectid, name, limit in [(1, "t0", 5), ("2", "x", 2), (1, "none", 1), (3, "", 9)]:
            fast = [row[0] for row in prepared.execute(projectid=projectid, name=name, limit=limit)]
            slow = [t.uuid for t in build(projectid, name, limit)]
            assert fast == slow
    assert fast == [] and len(prepared._rendered) == 1  # rendered once for this database


def test_the_default_page_of_a_list_is_the_page_a_filter_would_give(api):
    with database.connection_context():
        for n in range(7):
            Task.create(projectid=1 + n % 2, uuid=f"q{n:011d}", name=f"task {n}")
    every = [t["uuid"] for t in api.ok("GET", "/task/1", params={"name": "task"})]
    assert every == [f"q{n:011d}" for n in (6, 4, 2, 0)]
    pages = [
        [t["uuid"] for t in api.ok("GET", "/task/1", params={"page": p, "pagesize": 3})]
        for p in (1, 2, 3)
    ]
    assert pages == [every[:3], every[3:], []]
    step = {"plugin_type": "cmd", "name": "s", "user": "root", "node_type": "builtin"}
    step |= {"node_cont": "10.0.0.1", "scripts_type": "shell", "scripts_cont": "true"}
    api.ok("POST", "/nodelist/1", json={"name": "10.0.0.1"})
    for n in range(5):
        api.ok("POST", "/jobs/1", json={"name": f"job {n}", "permanent": 1, "data": [step]})
    named = [j["name"] for j in api.ok("GET", "/jobs/1", params={"name": "job"})]
    assert named == [f"job {n}" for n in (4, 3, 2, 1, 0)]
    paged = [j["name"] for j in api.ok("GET", "/jobs/1", params={"page": 2, "pagesize": 2})]
    assert paged == named[2:4]


def test_task_variables_read_back_as_yaml_in_lists_and_items(api):
    variables = {"version": "7", "flag": "yes", "note": 'ünï: "x"\n#2', "empty": ""}
    with database.connection_context():
        Task.create(projectid=1, uuid="cccccccccccc", variable=json.dumps(variables))
        Task.create(projectid=1, uuid="dddddddddddd")
    want = yaml.safe_dump(variables, allow_unicode=True, default_flow_style=False)
    for _ in range(2):  # the second read comes from what the process kept
        listed = {t["uuid"]: t["variable"] for t in api.ok("GET", "/task/1")}
        assert listed == {"cccccccccccc": want, "dddddddddddd": ""}
        assert api.ok("GET", "/task/1/cccccccccccc")["variable"] == want


def test_the_job_list_says_which_jobs_have_a_variable_without_a_value(api):
    step = {
        "plugin_type": "cmd",
        "name": "s",
        "user": "root",
        "node_type": "builtin",
        "node_cont": "10.0.0.1",
        "scripts_type": "shell",
        "scripts_cont": "true",
    }
    api.ok("POST", "/nodelist/1", json={"name": "10.0.0.1"})
    plain = api.post("/jobs/1", json={"name": "plain", "permanent": 1, "data": [step]})
    argv = {**step, "scripts_argv": "$version"}
    asks = api.post("/jobs/1", json={"name": "asks", "permanent": 1, "data": [argv, step]})
    listed = {j["uuid"]: j for j in api.ok("GET", "/jobs/1")}
    assert listed[plain.json["uuid"]]["hasvariable"] == 0
    assert listed[asks.json["uuid"]]["hasvariable"] == 1
    assert listed[asks.json["uuid"]]["stepcount"] == 2


def test_a_log_read_says_done_once_the_task_ended_and_all_its_text_was_read(api):
    with database.connection_context():
        Task.create(projectid=1, uuid="eeeeeeeeeeee", status="running")
        assert logs.read("eeeeeeeeeeee") == {
            "log": "",
            "offset": 0,
            "done": False,
            "status": "running",
            "projectid": 1,
        }
        LogChunk.create(taskuuid="eeeeeeeeeeee", offset=0, text="one\n")
        LogChunk.create(taskuuid="eeeeeeeeeeee", offset=4, text="two\n")
        assert logs.read("eeeeeeeeeeee", 2)["log"] == "e\ntwo\n"
        assert logs.read("eeeeeeeeeeee")["done"] is False
        Task.update(status="success").execute()
        assert logs.read("eeeeeeeeeeee", limit=5) == {
            "log": "one\nt",
            "offset": 5,
            "done": False,
            "status": "success",
            "projectid": 1,
        }
        assert logs.read("eeeeeeeeeeee", 5) == {
            "log": "wo\n",
            "offset": 8,
            "done": True,
            "status": "success",
            "projectid": 1,
        }
        assert logs.read("eeeeeeeeeeee", 8)["done"] is True
        Task.create(projectid=1, uuid="ffffffffffff", status="fail")
        assert logs.read("ffffffffffff")["done"] is True
        assert logs.read("gggggggggggg") is None  # no such task
    r = api.ok("GET", "/slave/any/tasklog/eeeeeeeeeeee", params={"offset": 4})
    assert r == {
        "log": "two\n",
        "offset": 8,
        "done": True,
        "status": "success",
        "uuid": "eeeeeeeeeeee",
    }


def test_a_log_is_read_only_by_keys_of_its_project(api):
    with database.connection_context():
        Task.create(projectid=1, uuid="hhhhhhhhhhhh", status="success")
        LogChunk.create(taskuuid="hhhhhhhhhhhh", offset=0, text="secret line\n")
    path = "/slave/any/tasklog/hhhhhhhhhhhh"
    assert api.ok("GET", path, key=api.user("one", 1, "read"))["log"] == "secret line\n"
    for key in (api.user("two", 2, "write"), None):
        r = api.get(path, key=key)
        assert r.status_code in (401, 404) and "secret" not in r.text
    assert api.get(path, key=None).status_code == 401
    r = api.get("/slave/any/tasklog/nosuchtask00")
    assert r.status_code == 404 and r.json["info"] == "uuid: task nosuchtask00 does not exist"


def test_times_show_as_openc3_shows_them_whatever_their_python_type():
    utc = datetime.UTC
    for value in (
        datetime.datetime(2026, 3, 4, 5, 6, 7, 891011),
        datetime.datetime(2026, 12, 31, 23, 59, 59),
        datetime.datetime(2026, 1, 1, tzinfo=utc),
    ):
        assert fmt(value) == value.strftime("%Y-%m-%d %H:%M:%S")
    assert fmt("2026-03-04 05:06:07.891011") == "2026-03-04 05:06:07"
    assert fmt(datetime.date(2026, 3, 4)) == "2026-03-04 00:00:00"
    assert fmt(None) is None
