"""The third-party interface: uuid derivation, the project check OpenC3 lacks, dry-run plans
that store nothing, idempotent invoke, query and stop, and an orchestrator over HTTP."""

import dataclasses
import subprocess
import time
import uuid as uuidlib

import pytest

from api.server.app import create_app
from engine.run.third import derive_uuid
from engine.store.db import database
from engine.store.models import HostResult, Job, LogChunk, PluginCmd, Subtask, Task, Variable
from tests.cluster import Cluster
from tests.cluster import cmd_step as shell_step
from tests.conftest import Api
from tests.test_jobs import cmd_step, scp_step

BASE = "orch3strateg"
PUBLIC = "https://jobs.example.com/"


def test_uuid_derivation():
    assert derive_uuid(BASE) == "orch3strate0"
    assert derive_uuid(BASE, 1) == "orch3strate1"
    assert derive_uuid(BASE, 10) == "orch3stratea"
    assert derive_uuid(BASE, 36) == "orch3strateA"
    assert derive_uuid(BASE, 61) == "orch3strateZ"
    assert len({derive_uuid(BASE, n) for n in range(62)}) == 62


@pytest.fixture
def api(settings):
    return Api(create_app(dataclasses.replace(settings, public_url=PUBLIC)))


def run(api, route, key="admin", **body):
    return api.call("POST", f"/third/{route}", key=key, json=body)


def run_body(jobname="deploy", variable=None, uuid=BASE, retry_count=0, project_id=1):
    return {
        "project_id": project_id,
        "uuid": uuid,
        "retry_count": retry_count,
        "params": {"jobname": jobname, "variable": variable or {}},
    }


@pytest.fixture
def deploy(api):
    """A permanent job `deploy` on 10.0.0.1 (a machine of project 1) needing $version."""
    api.ok("POST", "/nodelist/1", json={"name": "web1::10.0.0.1"})
    api.ok("POST", "/nodelist/2", json={"name": "db2::10.0.0.9"})
    return api.post(
        "/jobs/1",
        json={
            "name": "deploy",
            "permanent": 1,
            "data": [cmd_step(node_cont="10.0.0.1", scripts_argv="$version --fast")],
        },
    ).json["uuid"]


def counts():
    with database.connection_context():
        return [m.select().count() for m in (Task, Subtask, HostResult, LogChunk, Variable)]


def test_options(api, deploy):
    api.post("/jobs/1", json={"name": "scratch", "data": [cmd_step()]})  # transient
    assert run(api, "option/jobname", project_id=1).json["data"] == ["deploy"]
    api.ok("POST", "/variable/1", json={"jobuuid": deploy, "name": "region", "describe": "r"})
    api.ok(
        "POST",
        "/variable/1",
        json={"jobuuid": deploy, "name": "env", "value": "prod", "describe": "e"},
    )
    fields = run(api, "option/variable", project_id=1, jobname="deploy").json["data"]
    assert fields == [  # sorted by description, as OpenC3 orders launch fields
        {"var_name": "version", "desc": "", "placeholder": "", "type": "text"},
        {"var_name": "region", "desc": "r", "placeholder": "", "type": "text"},
    ]
    less = run(api, "option/variable", project_id=1, jobname="deploy", exclude="region,x")
    assert [f["var_name"] for f in less.json["data"]] == ["version"]
    r = run(api, "option/variable", project_id=1, jobname="nope")
    assert r.status_code == 400 and r.json["info"].startswith("jobname")


def test_the_project_named_in_project_id_is_checked(api, deploy):
    """OpenC3 checks no project on these routes; opsjob checks project_id like any route."""
    reader = api.user("reader", 1, "read")
    stranger = api.user("stranger", 2, "delete")
    task_body = {"project_id": 1, "uuid": BASE}
    routes = [
        ("option/jobname", {"project_id": 1}, "read"),
        ("option/variable", {"project_id": 1, "jobname": "deploy"}, "read"),
        ("interface/dry-run", run_body(variable={"version": "1"}), "write"),
        ("interface/invoke", run_body(variable={"version": "1"}), "write"),
        ("interface/query", task_body, "read"),
        ("interface/stop", task_body, "write"),
    ]
    for route, body, role in routes:
        r = run(api, route, key=stranger, **body)
        assert r.status_code == 403, (route, r.status_code, r.text)
        assert run(api, route, key=None, **body).status_code == 401, route
        r = run(api, route, key=reader, **body)
        if role == "write":
            assert r.status_code == 403, (route, r.text)
        else:  # allowed; query/stop then find no task yet
            assert r.status_code in (200, 404), (route, r.text)
        r = run(api, route, **{**body, "project_id": 99})
        assert r.status_code == 404 and r.json["info"].startswith("projectid"), (route, r.text)
    assert counts()[0] == 0  # no refused call started anything


def test_dry_run_plans_without_storing(api, deploy):
    before = counts()
    r = run(api, "interface/dry-run", **run_body())
    assert r.status_code == 400, r.text
    assert r.json["info"] == "params.variable: undefined variables: version"
    assert r.json["uuid"] == "orch3strate0" and r.json["data"]["missing"] == ["version"]

    r = run(api, "interface/dry-run", **run_body(variable={"version": "2.4"}))
    assert r.status_code == 200 and r.json["msg"] == "ok", r.text
    assert r.json["data"]["missing"] == r.json["data"]["foreign"] == []
    [step] = r.json["data"]["steps"]
    assert step["nodes"] == ["10.0.0.1"] and step["refused"] == [] and step["kind"] == "cmd"
    assert step["args"]["scripts_argv"] == "2.4 --fast" and step["args"]["user"] == "root"
    assert counts() == before
    with database.connection_context():
        assert Job.select().count() == 1 and PluginCmd.select().count() == 1


def test_dry_run_plans_an_approval_step(api, deploy):
    ask = {"plugin_type": "approval", "name": "ok?", "cont": "go", "approver": "ann,$owner"}
    steps = [cmd_step(node_cont="10.0.0.1"), ask]
    api.ok("POST", "/jobs/1", json={"name": "asked", "permanent": 1, "data": steps})
    r = run(api, "interface/dry-run", **run_body("asked", uuid="approvalrun0"))
    assert r.status_code == 400 and r.json["data"]["steps"][1]["missing"] == ["owner"], r.text
    given = {"owner": "bob", "version": "1"}
    r = run(api, "interface/dry-run", **run_body("asked", given, uuid="approvalrun0"))
    assert r.status_code == 200, r.text
    step = r.json["data"]["steps"][1]
    assert step["kind"] == "approval" and step["nodes"] == []
    assert step["args"] == {"approver": "ann,bob", "everyone": "off", "timeout": 86400}


def test_dry_run_lists_foreign_nodes_and_broken_steps(api, deploy):
    steps = [
        cmd_step(name="everywhere", node_cont="10.0.0.1,10.0.0.9,10.9.9.9", scripts_argv=""),
        scp_step(
            name="pkg", src_type="fileserver", src="", sp="$pkg", dst_type="builtin", dst="10.0.0.1"
        ),
        scp_step(name="owner", sp="/srv/x/", dst_type="builtin", dst="10.0.0.1", chown="-root"),
        cmd_step(name="node list", node_type="variable", node_cont="$hosts", scripts_argv=""),
    ]
    api.post("/jobs/1", json={"name": "messy", "permanent": 1, "data": steps})
    body = run_body(jobname="messy", variable={"pkg": "nothere.tgz"})
    r = run(api, "interface/dry-run", **body)
    assert r.status_code == 400, r.text
    plan = r.json["data"]
    assert plan["foreign"] == ["10.0.0.9", "10.9.9.9"]  # db2 belongs to project 2
    assert plan["missing"] == ["hosts"]
    assert plan["steps"][0]["nodes"] == ["10.0.0.1"]
    assert plan["problems"] == [
        "step 2 (pkg): file nothere.tgz is not in the project's file store",
        "step 3 (owner): chown: must be user, user:group or :group",
    ]
    info = r.json["info"]
    assert info.startswith("params.variable: undefined variables: hosts")
    assert "nodes not in project 1: 10.0.0.9,10.9.9.9" in info and "step 3 (owner)" in info
    assert counts()[0] == 0


def test_dry_run_refuses_a_uuid_in_use(api, deploy):
    assert run(api, "interface/invoke", **run_body(variable={"version": "1"})).status_code == 200
    r = run(api, "interface/dry-run", **run_body(variable={"version": "1"}))
    assert r.status_code == 409 and r.json["info"].startswith("uuid"), r.text
    assert run(api, "interface/dry-run", **run_body(retry_count=1)).json["uuid"].endswith("1")


def test_invoke_is_idempotent_per_derived_uuid(api, deploy):
    r = run(api, "interface/invoke", **run_body(variable={"version": "1"}))
    assert r.json == {"stat": True, "uuid": "orch3strate0", "data": 1}
    again = run(api, "interface/invoke", **run_body(variable={"version": "2"}))
    assert again.status_code == 200
    assert again.json["info"] == "This task has been successfully created"
    assert counts()[0] == 1
    retry = run(api, "interface/invoke", **run_body(variable={"version": "2"}, retry_count=1))
    assert retry.json["uuid"] == "orch3strate1" and counts()[0] == 2
    task = api.ok("GET", "/task/1/orch3strate1")
    assert task["calltype"] == "api" and task["user"] == "root" and task["jobuuid"] == deploy
    assert task["variable"].strip() == "version: '2'"
    # Another project cannot take over a uuid in use.
    api.post("/jobs/2", json={"name": "deploy", "permanent": 1, "data": [cmd_step()]})
    r = run(api, "interface/invoke", **run_body(project_id=2))
    assert r.status_code == 409 and r.json["info"].startswith("uuid"), r.text
    r = run(api, "interface/invoke", **run_body(jobname="nope", retry_count=5))
    assert r.status_code == 400 and r.json["info"].startswith("params.jobname"), r.text


def test_query_and_stop_a_queued_run(api, deploy):
    run(api, "interface/invoke", **run_body(variable={"version": "1"}))
    q = run(api, "interface/query", project_id=1, uuid=BASE).json
    assert q["stat"] is True and q["status"] == "running" and q["progress"] == [0, 1]
    assert q["link"] == "https://jobs.example.com/slave/any/tasklog/orch3strate0"
    assert "ctrl" not in q and q["msg"] == ""
    two = api.user("two", 2, "read")  # another project's key sees nothing of project 1
    assert run(api, "interface/query", key=two, project_id=2, uuid=BASE).status_code == 404
    assert run(api, "interface/query", key=two, project_id=1, uuid=BASE).status_code == 403
    assert run(api, "interface/stop", key=two, project_id=2, uuid=BASE).status_code == 403
    r = run(api, "interface/query", project_id=1, uuid=BASE, retry_count=3)
    assert r.status_code == 404 and r.json["info"].startswith("uuid")

    r = run(api, "interface/stop", project_id=1, uuid=BASE)
    assert r.status_code == 200 and r.json["stat"] is True and r.json["uuid"] == "orch3strate0"
    q = run(api, "interface/query", project_id=1, uuid=BASE).json
    assert q["status"] == "fail" and q["msg"] == "killed by root"
    r = run(api, "interface/stop", project_id=1, uuid=BASE)
    assert r.json["stat"] is True and "has been closed" in r.json["info"]


# -- an orchestrator over HTTP ------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(ssh_nodes):
    c = Cluster(ssh_nodes)
    c.run("project", "add", "1", "third")
    c.serve()
    c.worker()
    c.add_nodes(1, ssh_nodes.ensure(2))
    yield c
    c.close()


def third(c, route, body, status=200):
    code, answer = c.call("POST", f"/third/{route}", body)
    assert code == status, (route, code, answer)
    return answer


def until(c, body, statuses, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        q = third(c, "interface/query", body)
        if q["status"] in statuses:
            return q
        time.sleep(0.2)
    raise TimeoutError(f"{body['uuid']} never reached {statuses}: {q}\n{c.logs()}")


def cmd(name, node, script, argv=""):
    return shell_step(script, node, name=name, argv=argv)


@pytest.mark.slow
def test_orchestrator_scenario(cluster, ssh_nodes):
    a, b = ssh_nodes.addresses[:2]
    steps = [cmd("build", a, 'echo "build $1"', "$version"), cmd("check", b, "echo checked")]
    cluster.ok("POST", "/jobs/1", {"name": "release", "permanent": 1, "data": steps})
    base = uuidlib.uuid4().hex[:12]
    call = {"project_id": 1, "uuid": base, "params": {"jobname": "release", "variable": {}}}

    missing = third(cluster, "interface/dry-run", call, status=400)
    assert missing["data"]["missing"] == ["version"] and "version" in missing["info"]
    call["params"]["variable"] = {"version": "7.1"}
    plan = third(cluster, "interface/dry-run", call)
    assert [s["nodes"] for s in plan["data"]["steps"]] == [[a], [b]]
    assert plan["data"]["steps"][0]["args"]["scripts_argv"] == "7.1"

    first = third(cluster, "interface/invoke", {**call, "retry_count": 0})
    assert first["uuid"] == base[:11] + "0"
    done = until(cluster, {**call, "retry_count": 0}, ("complete", "fail"))
    assert done["status"] == "complete" and done["progress"] == [2, 2], done
    assert done["link"].startswith("/slave/")  # no OPSJOB_PUBLIC_URL: a path
    assert done["link"].endswith(f"/tasklog/{first['uuid']}")
    tasks_before = cluster.ok("GET", "/task/1")["data"]

    again = third(cluster, "interface/invoke", {**call, "retry_count": 0})
    assert again["info"] == "This task has been successfully created" and "uuid" not in again
    assert cluster.ok("GET", "/task/1")["data"] == tasks_before  # nothing new

    retry = third(cluster, "interface/invoke", {**call, "retry_count": 1})
    assert retry["uuid"] == base[:11] + "1"
    assert len(cluster.ok("GET", "/task/1")["data"]) == len(tasks_before) + 1
    assert until(cluster, {**call, "retry_count": 1}, ("complete", "fail"))["status"] == "complete"
    log = cluster.ok("GET", f"/slave/any/tasklog/{retry['uuid']}")["data"]["log"]
    assert "build 7.1" in log


@pytest.mark.slow
def test_orchestrator_sees_a_waiting_run_and_its_controls(cluster, ssh_nodes):
    a = ssh_nodes.addresses[0]
    flag = f"/tmp/third-{uuidlib.uuid4().hex[:8]}"
    name = f"flaky{uuidlib.uuid4().hex[:6]}"
    cluster.ok(
        "POST",
        "/jobs/1",
        {"name": name, "permanent": 1, "data": [cmd("gate", a, f"test -e {flag}")]},
    )
    call = {"project_id": 1, "uuid": uuidlib.uuid4().hex[:12], "params": {"jobname": name}}
    uuid = third(cluster, "interface/invoke", call)["uuid"]
    waiting = until(cluster, call, ("running",), timeout=5)
    deadline = time.monotonic() + 60
    while "ctrl" not in waiting and time.monotonic() < deadline:
        time.sleep(0.2)
        waiting = third(cluster, "interface/query", call)
    assert waiting["status"] == "running" and waiting["progress"] == [0, 1]
    assert waiting["msg"] == f"Wait for manual treatment, reason: step 1 (gate) failed on {a}"
    assert {c["control"] for c in waiting["ctrl"]} == {"running", "ignore", "fail"}
    retry = [c for c in waiting["ctrl"] if c["control"] == "running"][0]
    assert retry["taskuuid"] == uuid
    ssh_nodes.ssh(a, f"touch {flag}")
    cluster.ok("POST", "/subtask/1", retry)  # a ctrl entry is a ready /subtask body
    done = until(cluster, call, ("complete", "fail"))
    assert done["status"] == "complete" and done["progress"] == [1, 1]


@pytest.mark.slow
def test_orchestrator_stops_a_running_run(cluster, ssh_nodes):
    a = ssh_nodes.addresses[0]
    name = f"slow{uuidlib.uuid4().hex[:6]}"
    seconds = 400 + int(uuidlib.uuid4().int % 300)
    cluster.ok(
        "POST",
        "/jobs/1",
        {"name": name, "permanent": 1, "data": [cmd("wait", a, f"sleep {seconds}")]},
    )
    call = {"project_id": 1, "uuid": uuidlib.uuid4().hex[:12], "params": {"jobname": name}}
    uuid = third(cluster, "interface/invoke", call)["uuid"]
    deadline = time.monotonic() + 30
    while subprocess.run(["pgrep", "-f", f"sleep {seconds}"], check=False).returncode != 0:
        assert time.monotonic() < deadline, "the step never started"
        time.sleep(0.2)
    stopped = third(cluster, "interface/stop", call)
    assert stopped["stat"] is True and stopped["uuid"] == uuid  # OpenC3 says false here
    q = third(cluster, "interface/query", call)
    assert q["status"] == "fail" and q["msg"] == "killed by root"
