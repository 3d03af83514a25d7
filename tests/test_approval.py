"""Approval steps end to end: real `opsjob serve` and `opsjob worker` processes, a real SMTP
server receiving the approvers' links, loopback SSH nodes running the cmd steps around them."""

import re
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests.cluster import Cluster, cmd_step, unique
from tests.httpclient import call
from tests.test_notifications import smtp  # noqa: F401  (fixture: the real SMTP server)

PID = 1
LINK = re.compile(r"(http://[^\s]+/approval/fast/([A-Za-z0-9_-]+))")


@pytest.fixture(scope="module")
def cluster(ssh_nodes, smtp):  # noqa: F811
    c = Cluster(ssh_nodes)
    c.run("project", "add", str(PID), "approvals")
    c.keys = {
        name: c.run("user", "add", name, "--email", f"{name}@example.com")
        for name in ("ann", "bob")
    }
    c.smtp = smtp
    c.serve()
    c.env.update(OPSJOB_SMTP_URL=smtp.url, OPSJOB_PUBLIC_URL=c.url)
    c.worker()
    c.node = ssh_nodes.ensure(1)[0]
    c.add_nodes(PID, [c.node])
    yield c
    c.close()


def approval(approver, **fields):
    return {
        "plugin_type": "approval",
        "name": fields.pop("name", "go live"),
        "cont": fields.pop("cont", "deploy ${version} to production"),
        "approver": approver,
        **fields,
    }


def run_job(c, middle, variable=None):
    """Start cmd -> ``middle`` -> cmd; return the task uuid."""
    steps = [cmd_step("echo before", [c.node], name="before"), middle]
    steps.append(cmd_step("echo after", [c.node], name="after"))
    jobuuid = c.ok("POST", f"/jobs/{PID}", {"name": unique("job"), "permanent": 1, "data": steps})
    body = {"jobuuid": jobuuid["uuid"], "variable": variable or {"version": "1.2"}}
    return c.ok("POST", f"/task/{PID}/job", body)["uuid"]


def statuses(c, task):
    return [s["status"] for s in c.ok("GET", f"/subtask/{PID}/{task}")["data"]]


def waiting(c, task):
    c.wait(PID, task, statuses=("waiting",))
    deadline = time.monotonic() + 30
    while statuses(c, task)[1] != "running":
        assert time.monotonic() < deadline, statuses(c, task)
        time.sleep(0.1)


def row_of(c, task, user):
    [row] = [r for r in c.ok("GET", "/approval", key=c.keys[user])["data"] if r["taskuuid"] == task]
    return row


def opine(c, task, user, opinion):
    """``user`` gives ``opinion`` on their row of ``task``, with their key."""
    body = {"uuid": row_of(c, task, user)["uuid"], "opinion": opinion}
    return c.ok("POST", "/approval", body, c.keys[user])


def mail_link(c, to, task, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for _, rcpt, msg in c.smtp.messages:
            body = msg.get_body().get_content()
            if to in rcpt and task in body:
                return msg, body, LINK.search(body)
        time.sleep(0.2)
    raise AssertionError(f"no approval mail to {to} for {task}: {c.smtp.messages}")


def log_of(c, task):
    return c.ok("GET", f"/slave/any/tasklog/{task}")["data"]["log"]


def test_any_one_approver_lets_the_job_go_on(cluster):
    c = cluster
    task = run_job(c, approval("ann,bob"))
    waiting(c, task)
    assert statuses(c, task) == ["success", "running", None]
    row = row_of(c, task, "ann")
    assert row["opinion"] == "unconfirmed" and row["submitter"] == "root"
    detail = c.ok("GET", f"/approval/{row['uuid']}", key=c.keys["ann"])["data"]
    assert {r["user"] for r in detail} == {"ann", "bob"}
    assert {r["cont"] for r in detail} == {"deploy 1.2 to production"}
    assert c.ok("GET", f"/approval/{row['uuid']}", key=c.keys["bob"])["data"] == []
    # the notification reached the SMTP server with a link
    msg, body, link = mail_link(c, "ann@example.com", task)
    assert "deploy 1.2 to production" in body and link and link.group(1).startswith(c.url)
    assert c.ok("POST", "/approval", {"uuid": row["uuid"], "opinion": "agree"}, c.keys["ann"])
    done = c.wait(PID, task)
    assert done["status"] == "success", log_of(c, task)
    assert statuses(c, task) == ["success", "success", "success"]
    bob = row_of(c, task, "bob")
    assert bob["opinion"] == "agree" and bob["remarks"] == "_close_by_sys_ not.everyone ann"
    assert "approved by ann" in log_of(c, task)
    # a second opinion is refused
    status, body = c.call(
        "POST", "/approval", {"uuid": row["uuid"], "opinion": "refuse"}, c.keys["ann"]
    )
    assert status == 409 and body["stat"] is False
    # the audit trail names who approved what
    entries = c.ok("GET", f"/audit?project={PID}&object=approval")["data"]
    assert any(
        e["user"] == "ann" and e["object_id"] == row["uuid"] and '"agree"' in e["summary"]
        for e in entries
    ), entries
    sub = c.ok("GET", f"/subtask/{PID}/{task}")["data"][1]
    assert sub["subtask_type"] == "approval" and sub["extended"]["approver"] == "ann,bob"
    assert sub["nodecount"] == 2 and sub["hosts"] == []
    assert [(a["user"], a["opinion"], a["notifystatus"]) for a in sub["approvals"]] == [
        ("ann", "agree", "done"),
        ("bob", "agree", "done"),
    ]
    one = c.ok("GET", f"/subtask/{PID}/{task}/{sub['uuid']}")["data"]
    assert one["extended"]["approver"] == "ann,bob" and one["extended"]["timeout"] == 86400
    # the notification attempts are the task's
    sent = c.ok("GET", f"/task/{PID}/{task}/notify")["data"]
    assert {(n["status"], n["channel"], n["outcome"], n["recipients"]) for n in sent} >= {
        ("approval", "email", "ok", "ann@example.com"),
        ("approval", "email", "ok", "bob@example.com"),
    }


def test_everyone_must_agree(cluster):
    c = cluster
    task = run_job(c, approval("ann,bob", everyone="on"))
    waiting(c, task)
    opine(c, task, "ann", "agree")
    time.sleep(2)
    assert c.ok("GET", f"/task/{PID}/{task}")["data"]["status"] == "waiting"
    assert statuses(c, task) == ["success", "running", None]
    opine(c, task, "bob", "agree")
    assert c.wait(PID, task)["status"] == "success"
    assert statuses(c, task) == ["success", "success", "success"]


def test_a_refusal_ends_the_task_refuse(cluster):
    c = cluster
    task = run_job(c, approval("ann,bob", everyone="on"))
    waiting(c, task)
    opine(c, task, "bob", "refuse")
    done = c.wait(PID, task)
    assert done["status"] == "refuse"
    assert statuses(c, task) == ["success", "refuse", None]  # the last step never ran
    assert "approval refused by bob" in log_of(c, task)
    assert "step 3" not in log_of(c, task)
    assert done["reason"] == "approval refused by bob"
    # the analysis routes count it as OpenC3 does: a refused task is no success
    last = c.ok("GET", f"/task/{PID}/analysis/last?count=50")["data"]
    assert "refuse" in {row["status"] for row in last}


def test_a_timeout_fails_the_step(cluster):
    c = cluster
    task = run_job(c, approval("ann", timeout=3))
    done = c.wait(PID, task, timeout=120)
    assert done["status"] == "fail"
    assert statuses(c, task) == ["success", "fail", None]
    assert "approval timed out after 3 s" in log_of(c, task)
    status, body = c.call(
        "POST",
        "/approval",
        {"uuid": row_of(c, task, "ann")["uuid"], "opinion": "agree"},
        c.keys["ann"],
    )
    assert status == 409, body


def test_relaxed_submitter_approves_itself(cluster):
    c = cluster
    task = run_job(c, approval("root,ann", relaxed="on"))
    assert c.wait(PID, task)["status"] == "success"
    assert statuses(c, task) == ["success", "success", "success"]
    # nervous never approves the submitter
    task = run_job(c, approval("root", relaxed="nervous"))
    waiting(c, task)
    c.ok("POST", "/approval", {"uuid": row_of_root(c, task), "opinion": "agree"})
    assert c.wait(PID, task)["status"] == "success"


def row_of_root(c, task):
    [row] = [r for r in c.ok("GET", "/approval")["data"] if r["taskuuid"] == task]
    return row["uuid"]


def test_the_link_approves_without_a_key_once(cluster):
    c = cluster
    task = run_job(c, approval("bob"))
    waiting(c, task)
    _, _, link = mail_link(c, "bob@example.com", task)
    url, token = link.group(1), link.group(2)
    with urllib.request.urlopen(url, timeout=10) as page:  # a GET shows, never decides
        assert "text/html" in page.headers["Content-Type"]
        assert "deploy 1.2 to production" in page.read().decode()
    status, body = call("GET", f"{c.url}/approval/control/status/{token}")
    assert status == 200 and body["data"]["opinion"] == "unconfirmed"
    assert c.ok("GET", f"/task/{PID}/{task}")["data"]["status"] == "waiting"
    form = urllib.parse.urlencode({"opinion": "agree"}).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=form), timeout=10) as page:
        assert "agreed" in page.read().decode()
    assert c.wait(PID, task)["status"] == "success"
    with pytest.raises(urllib.error.HTTPError) as used:  # the token is used up
        urllib.request.urlopen(urllib.request.Request(url, data=form), timeout=10)
    assert used.value.code == 404
    status, body = call(
        "POST", f"{c.url}/approval/control", body={"uuid": token, "opinion": "agree"}
    )
    assert status == 404 and body["stat"] is False
    entries = c.ok("GET", f"/audit?project={PID}&object=approval&user=bob")["data"]
    assert entries and entries[0]["via"] == "link"


def test_the_quick_approval_page_refuses_with_the_token(cluster):
    """What OpenC3's quick approval page sends (quickapproval.controller.js): the rows, the
    status, then POST /approval/control {uuid: <the link's token>, opinion}; the mail's text
    comes from the environment's template, whose ${uuid} is the token."""
    c = cluster
    c.ok(
        "POST",
        "/environment",
        {"approvalTemplateEmailContent": "${taskuuid}: ${cont}\nquick: /q/${uuid}"},
    )
    try:
        task = run_job(c, approval("ann,bob", name="quick"))
        waiting(c, task)
        _, body, _ = mail_link(c, "ann@example.com", task)
        token = re.search(r"quick: /q/([A-Za-z0-9_-]+)", body).group(1)
    finally:
        c.ok("DELETE", "/environment", {"approvalTemplateEmailContent": ""})
    status, rows = call("GET", f"{c.url}/approval/control/{token}")
    assert status == 200 and {r["user"] for r in rows["data"]} == {"ann", "bob"}
    status, one = call("GET", f"{c.url}/approval/control/status/{token}")
    assert status == 200 and one["data"]["user"] == "ann" and one["data"]["name"] == "quick"
    status, _ = call("POST", f"{c.url}/approval/control", body={"uuid": token, "opinion": "refuse"})
    assert status == 200
    assert c.wait(PID, task)["status"] == "refuse"
    assert statuses(c, task) == ["success", "refuse", None]
    entries = c.ok("GET", f"/audit?project={PID}&object=approval&user=ann")["data"]
    assert entries[0]["via"] == "link" and '"refuse"' in entries[0]["summary"]


def test_a_killed_task_closes_its_links(cluster):
    c = cluster
    task = run_job(c, approval("ann"))
    waiting(c, task)
    _, _, link = mail_link(c, "ann@example.com", task)
    c.ok("DELETE", f"/slave/any/killtask/{task}")
    assert c.wait(PID, task)["status"] == "fail"
    status, body = call("GET", f"{c.url}/approval/control/{link.group(2)}")
    assert status == 404, body
    status, _ = c.call(
        "POST", "/approval", {"uuid": row_of(c, task, "ann")["uuid"], "opinion": "agree"},
        c.keys["ann"],
    )  # fmt: skip
    assert status == 409


def test_a_waiting_approval_survives_a_worker_restart(cluster):
    c = cluster
    task = run_job(c, approval("ann"))
    waiting(c, task)
    c.stop("worker")
    c.worker("worker2")
    try:
        opine(c, task, "ann", "agree")
        assert c.wait(PID, task)["status"] == "success"
        assert statuses(c, task) == ["success", "success", "success"]
    finally:
        c.stop("worker2")
        c.worker()


def test_an_approval_on_its_own(cluster):
    """POST /task/:pid/plugin_approval: one approval step, timeout 60 unless given."""
    c = cluster
    body = {"name": "alone", "cont": "open port ${port}", "approver": "$who", "variable": {}}
    body["variable"] = {"who": "ann", "port": "443"}
    started = c.ok("POST", f"/task/{PID}/plugin_approval", body)["data"]
    task = started["uuid"]
    assert started["loguuid"].endswith("approval")
    c.wait(PID, task, statuses=("waiting",))
    row = row_of(c, task, "ann")
    detail = c.ok("GET", f"/approval/{row['uuid']}", key=c.keys["ann"])["data"]
    assert detail[0]["cont"] == "open port 443"
    [sub] = c.ok("GET", f"/subtask/{PID}/{task}")["data"]
    assert sub["extended"]["timeout"] == 60 and sub["status"] == "running"
    c.ok("POST", "/approval", {"uuid": row["uuid"], "opinion": "agree"}, c.keys["ann"])
    done = c.wait(PID, task)
    assert done["status"] == "success" and done["jobtype"] == "plugin_approval"


def test_an_orchestrator_sees_the_approval_it_waits_for(cluster):
    c = cluster
    steps = [cmd_step("echo before", [c.node], name="before"), approval("ann", name="gate")]
    c.ok("POST", f"/jobs/{PID}", {"name": "orch-approval", "permanent": 1, "data": steps})
    run = {"project_id": PID, "uuid": unique("ap")[:12].ljust(12, "x"), "retry_count": 0}
    run["params"] = {"jobname": "orch-approval", "variable": {"version": "3"}}
    task = c.ok("POST", "/third/interface/invoke", run)["uuid"]
    waiting(c, task)
    state = c.ok("POST", "/third/interface/query", run)
    assert state["status"] == "running" and state["ctrl"] == []
    assert "step 2 (gate) waits for approval" in state["msg"], state
    c.ok("POST", "/approval", {"uuid": row_of(c, task, "ann")["uuid"], "opinion": "agree"},
         c.keys["ann"])  # fmt: skip
    assert c.wait(PID, task)["status"] == "success"
    assert c.ok("POST", "/third/interface/query", run)["progress"] == [2, 2]


def test_an_approved_step_pauses_and_next_goes_on(cluster):
    c = cluster
    task = run_job(c, approval("ann", pause="check the dashboard"))
    waiting(c, task)
    ask = c.ok("GET", f"/subtask/{PID}/{task}")["data"][1]
    assert ask["pause"] == "check the dashboard"
    c.ok("POST", "/approval", {"uuid": row_of(c, task, "ann")["uuid"], "opinion": "agree"},
         c.keys["ann"])  # fmt: skip
    deadline = time.monotonic() + 30
    while statuses(c, task) != ["success", "success", None]:
        assert time.monotonic() < deadline, statuses(c, task)
        time.sleep(0.2)
    c.wait(PID, task, statuses=("waiting",))
    assert "paused after step 2: check the dashboard" in log_of(c, task)
    body = {"taskuuid": task, "subtaskuuid": ask["uuid"], "subtasktype": "approval"}
    c.ok("PUT", f"/subtask/{PID}", {**body, "control": "next"})
    assert c.wait(PID, task)["status"] == "success"
