"""The read routes' fast shaping answers exactly what shaping model instances answered."""

import datetime
import json

import yaml

from engine.run.tasks import DETAIL_FIELDS
from engine.store.db import database
from engine.store.listing import Columns, as_dict
from engine.store.models import Task


def test_columns_shape_rows_as_model_instances_are_shaped(api):
    moment = datetime.datetime(2026, 3, 4, 5, 6, 7, 891011)
    with database.connection_context():
        Task.create(projectid=1, uuid="aaaaaaaaaaaa", starttime=moment, runtime=1.25, pid=7)
        Task.create(projectid=1, uuid="bbbbbbbbbbbb", reason="no run")
        columns = Columns(Task, DETAIL_FIELDS)
        fast = columns.rows(columns.select().order_by(Task.id))
        slow = [as_dict(t, DETAIL_FIELDS) for t in Task.select().order_by(Task.id)]
    assert fast == slow and fast[0]["starttime"] == "2026-03-04 05:06:07"


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
