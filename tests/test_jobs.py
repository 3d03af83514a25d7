import pytest

from engine.store.db import database
from engine.store.models import Nodegroup, PluginCmd, Variable


def cmd_step(**kw):
    step = {
        "plugin_type": "cmd",
        "name": "run",
        "user": "root",
        "node_type": "builtin",
        "node_cont": "10.0.0.1,10.0.0.2",
        "scripts_type": "shell",
        "scripts_cont": "echo hello\n",
        "scripts_argv": "$version --fast",
    }
    step.update(kw)
    return step


def scp_step(**kw):
    step = {
        "plugin_type": "scp",
        "name": "copy",
        "user": "root",
        "src_type": "builtin",
        "src": "10.0.0.1",
        "sp": "/srv/${app}/",
        "dst_type": "variable",
        "dst": "$targets",
        "dp": "/srv/app/",
        "chown": "www-data",
        "chmod": "644",
        "scp_delete": 1,
    }
    step.update(kw)
    return step


def create(api, steps, name="deploy", pid=1, permanent=True):
    r = api.post(f"/jobs/{pid}", json={"name": name, "permanent": permanent, "data": steps})
    assert r.status_code == 200, r.text
    assert r.json["data"] is True and len(r.json["uuid"]) == 12
    return r.json["uuid"]


def test_create_and_read_back(api):
    uuid = create(api, [cmd_step(), scp_step()])
    job = api.ok("GET", f"/jobs/1/{uuid}")
    assert job["name"] == "deploy" and job["uuid"] == uuid
    assert [s["name"] for s in job["data"]] == ["run", "copy"]
    assert job["uuids"].split(",")[0].startswith("cmd_")
    assert job["data"][0]["scripts_argv"] == "$version --fast"
    assert job["data"][0]["timeout"] == 60
    assert job["data"][1]["scp_delete"] == 1 and job["data"][1]["chmod"] == "644"
    assert "plugin_type" not in job["data"][0]
    by_name = api.ok("GET", "/jobs/1/byname", params={"name": "deploy"})
    assert by_name["uuid"] == uuid
    listed = api.ok("GET", "/jobs/1")
    assert listed[0]["stepcount"] == 2 and listed[0]["hasvariable"] == 1
    assert api.ok("GET", "/jobs/1/count") == {"permanent": 1}


def test_approval_steps_save_and_read_back_as_openc3_shows_them(api):
    step = {"plugin_type": "approval", "name": "ok?", "cont": "ship ${version}"}
    uuid = create(api, [cmd_step(), {**step, "approver": "alice,$owner", "everyone": "on"}])
    job = api.ok("GET", f"/jobs/1/{uuid}")
    assert job["uuids"].split(",")[1].startswith("approval_")
    got = job["data"][1]
    assert {k: got[k] for k in ("cont", "approver", "everyone", "relaxed", "timeout")} == {
        "cont": "ship ${version}",
        "approver": "alice,$owner",
        "everyone": "on",
        "relaxed": "off",
        "timeout": 86400,  # OpenC3's default for an approval step saved through /jobs
    }
    assert set(got) == {
        "uuid", "name", "cont", "approver", "deployenv", "action", "batches", "everyone",
        "timeout", "pause", "relaxed",
    }  # fmt: skip
    # the approver's variables are the job's; cont's are filled from the task at run time
    assert {v["name"] for v in api.ok("GET", f"/variable/1/{uuid}")} == {"version", "owner"}
    # a job read from the API saves unchanged when posted back
    steps = [{**s, "plugin_type": t.split("_")[0]} for s, t in zip(
        job["data"], job["uuids"].split(","), strict=True)]  # fmt: skip
    api.ok("POST", f"/jobs/1/{uuid}", json={"name": "deploy", "data": steps})
    assert api.ok("GET", f"/jobs/1/{uuid}")["data"][1]["approver"] == "alice,$owner"


def test_variables_are_synced_on_save(api):
    uuid = create(api, [cmd_step(), scp_step()])
    names = {v["name"]: v for v in api.ok("GET", f"/variable/1/{uuid}")}
    assert set(names) == {"version", "app", "targets"}
    assert all(v["value"] == "" for v in names.values())
    # edit: drop the scp step; its variables go, version stays
    api.ok("POST", f"/jobs/1/{uuid}", json={"name": "deploy", "data": [cmd_step()]})
    assert {v["name"] for v in api.ok("GET", f"/variable/1/{uuid}")} == {"version"}
    job = api.ok("GET", f"/jobs/1/{uuid}")
    assert len(job["data"]) == 1


def test_variable_env_follows_deployenv(api):
    uuid = create(
        api,
        [
            cmd_step(scripts_argv="$onlytest", deployenv="test"),
            cmd_step(scripts_argv="$both", deployenv="test"),
            cmd_step(scripts_argv="$both ${single}", deployenv="always"),
        ],
    )
    env = {v["name"]: v["env"] for v in api.ok("GET", f"/variable/1/{uuid}")}
    assert env == {"onlytest": "test", "both": "", "single": ""}
    assert [
        v["name"] for v in api.ok("GET", f"/variable/1/{uuid}", params={"env": "online"})
    ] and "onlytest" not in [
        v["name"] for v in api.ok("GET", f"/variable/1/{uuid}", params={"env": "online"})
    ]


def test_one_letter_names_are_not_variables(api):
    uuid = create(api, [cmd_step(scripts_argv="$a ${b} $ab")])
    assert [v["name"] for v in api.ok("GET", f"/variable/1/{uuid}")] == ["ab"]


def test_transient_jobs_are_hidden(api):
    uuid = create(api, [cmd_step()], permanent=False)
    assert api.ok("GET", "/jobs/1") == []
    assert api.get(f"/jobs/1/{uuid}").status_code == 404


def test_failed_save_writes_nothing(api):
    create(api, [cmd_step()], name="taken")
    with database.connection_context():
        before = PluginCmd.select().count()
    r = api.post("/jobs/1", json={"name": "taken", "permanent": 1, "data": [cmd_step()]})
    assert r.status_code == 409 and r.json["info"].startswith("name:")
    r = api.post(
        "/jobs/1",
        json={"name": "other", "permanent": 1, "data": [cmd_step(), cmd_step(node_type="nope")]},
    )
    assert r.status_code == 400 and r.json["info"].startswith("step 2: node_type:")
    with database.connection_context():
        assert PluginCmd.select().count() == before
        assert Variable.select().count() == 1


def test_delete_frees_the_name(api):
    uuid = create(api, [cmd_step()])
    api.ok("DELETE", f"/jobs/1/{uuid}")
    assert api.get(f"/jobs/1/{uuid}").status_code == 404
    create(api, [cmd_step()])
    api.ok("DELETE", "/jobs/1/deploy/byname")
    assert api.ok("GET", "/jobs/1") == []


def test_cite_and_group_must_be_visible_in_project(api):
    own = api.post("/scripts/1", json={"name": "s", "type": "shell", "cont": "id"}).json["id"]
    glob = api.post("/scripts/0", json={"name": "g", "type": "shell", "cont": "id"}).json["id"]
    other = api.post("/scripts/2", json={"name": "o", "type": "shell", "cont": "id"}).json["id"]
    create(
        api,
        [
            cmd_step(scripts_type="cite", scripts_cont=str(own)),
            cmd_step(scripts_type="cite", scripts_cont=str(glob)),
        ],
    )
    r = api.post(
        "/jobs/1",
        json={"name": "x", "data": [cmd_step(scripts_type="cite", scripts_cont=str(other))]},
    )
    assert r.status_code == 400 and r.json["info"].startswith("step 1: scripts_cont:")
    with database.connection_context():
        g2 = Nodegroup.create(projectid=2, name="g", plugin="node", params='"a"').id
        g1 = Nodegroup.create(projectid=1, name="g", plugin="node", params='"a"').id
    r = api.post(
        "/jobs/1", json={"name": "y", "data": [cmd_step(node_type="group", node_cont=str(g2))]}
    )
    assert r.status_code == 400 and r.json["info"].startswith("step 1: node_cont:")
    create(api, [cmd_step(node_type="group", node_cont=str(g1))], name="y")


def test_copy_by_name(api):
    uuid = create(api, [cmd_step(), scp_step()])
    api.ok(
        "POST",
        "/variable/1",
        json={"jobuuid": uuid, "name": "version", "value": "1.2", "describe": "the version"},
    )
    r = api.post("/jobs/1/copy/byname", json={"fromname": "deploy", "toname": "deploy2"})
    assert r.status_code == 200 and r.json["uuid"] != uuid
    copy = api.ok("GET", "/jobs/1/byname", params={"name": "deploy2"})
    assert [s["name"] for s in copy["data"]] == ["run", "copy"]
    assert {v["name"]: v["value"] for v in api.ok("GET", f"/variable/1/{copy['uuid']}")}[
        "version"
    ] == "1.2"
    # across projects: needs write on the target
    reader = api.user("reader", 1, "write")
    r = api.post(
        "/jobs/1/copy/byname",
        key=reader,
        json={"fromname": "deploy", "toname": "x", "toprojectid": 2},
    )
    assert r.status_code == 403
    r = api.post("/jobs/1/copy/byname", json={"fromname": "nope", "toname": "x"})
    assert r.status_code == 404


@pytest.mark.parametrize(
    "body,field",
    [
        ({"permanent": 1, "data": []}, "name:"),
        ({"name": "j", "data": []}, "data:"),
        ({"name": "j", "data": "x"}, "data:"),
        ({"name": "j", "data": ["x"]}, "step 1: body"),
        ({"name": "j", "data": [{"name": "a"}]}, "step 1: plugin_type:"),
        ({"name": "j", "data": [cmd_step(plugin_type="bpm")]}, "step 1: plugin_type:"),
        ({"name": "j", "data": [{"plugin_type": "approval", "name": "a"}]}, "step 1: cont:"),
        (
            {"name": "j", "data": [{"plugin_type": "approval", "name": "a", "cont": "x"}]},
            "step 1: approver:",
        ),
        (
            {
                "name": "j",
                "data": [{"plugin_type": "approval", "name": "a", "cont": "x", "approver": "a b"}],
            },
            "step 1: approver:",
        ),
        ({"name": "j", "data": [cmd_step(scripts_type="buildin")]}, "step 1: scripts_type:"),
        ({"name": "j", "data": [cmd_step(user="ro ot")]}, "step 1: user:"),
        ({"name": "j", "data": [cmd_step(node_cont="a;b")]}, "step 1: node_cont:"),
        ({"name": "j", "data": [cmd_step(timeout="soon")]}, "step 1: timeout:"),
        ({"name": "j", "data": [cmd_step(timeout=0)]}, "step 1: timeout:"),
        (
            {"name": "j", "data": [cmd_step(scripts_type="cite", scripts_cont="999")]},
            "step 1: scripts_cont:",
        ),
        (
            {"name": "j", "data": [cmd_step(node_type="group", node_cont="999")]},
            "step 1: node_cont:",
        ),
        ({"name": "j", "data": [cmd_step(), scp_step(chmod="999")]}, "step 2: chmod:"),
        ({"name": "j", "data": [scp_step(src_type="ci")]}, "step 1: src_type:"),
        ({"name": "j", "data": [scp_step(src_type="fileserver", sp="a/b")]}, "step 1: sp:"),
        ({"name": "j", "data": [scp_step(dp="")]}, "step 1: dp:"),
        ({"name": "x" * 101, "data": [cmd_step()]}, "name:"),
        ({"name": "j", "data": [cmd_step(scripts_cont="x" * 70000)]}, "step 1: scripts_cont:"),
    ],
)
def test_job_validation(api, body, field):
    r = api.post("/jobs/1", json=body)
    assert r.status_code == 400, r.text
    assert r.json["stat"] is False and r.json["info"].startswith(field), r.json


def test_project_isolation(api):
    uuid = create(api, [cmd_step()], pid=2)
    key = api.user("alice", 1, "delete")
    assert api.get("/jobs/2", key=key).status_code == 403
    assert api.get(f"/jobs/1/{uuid}", key=key).status_code == 404
    assert (
        api.post(
            f"/jobs/1/{uuid}", key=key, json={"name": "hijack", "data": [cmd_step()]}
        ).status_code
        == 404
    )
    assert api.delete(f"/jobs/1/{uuid}", key=key).status_code == 404
    assert api.get(f"/variable/1/{uuid}", key=key).status_code == 404
    r = api.post(
        "/variable/1",
        key=key,
        json={"jobuuid": uuid, "name": "version", "value": "x", "describe": "d"},
    )
    assert r.status_code == 400 and r.json["info"].startswith("jobuuid:")
    assert api.ok("GET", f"/jobs/2/{uuid}")["name"] == "deploy"


def test_roles(api):
    reader = api.user("reader", 1, "read")
    writer = api.user("writer", 1, "write")
    assert api.get("/jobs/1", key=reader).status_code == 200
    assert (
        api.post("/jobs/1", key=reader, json={"name": "j", "data": [cmd_step()]}).status_code == 403
    )
    uuid = api.post("/jobs/1", key=writer, json={"name": "j", "data": [cmd_step()]}).json["uuid"]
    assert api.delete(f"/jobs/1/{uuid}", key=writer).status_code == 403
    assert api.get("/jobs/1", key=None).status_code == 401
    assert api.get("/jobs/1", key="oj_wrong").status_code == 401
