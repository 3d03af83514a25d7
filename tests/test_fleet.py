"""Issue 25, fleets of many hosts: a task's host results filtered by status and paged, and a
step's hosts grouped in the task log by status and output (on real loopback nodes)."""

import pytest

from engine.run import hostresults
from engine.store.db import database
from engine.store.models import HostResult, Task


def _task_with_hosts(uuid, statuses):
    """A task of project 1 whose one step ended with ``statuses`` (one per host, in order)."""
    with database.connection_context():
        Task.create(projectid=1, uuid=uuid, status="fail")
        rows = [
            hostresults.row(uuid, "step1", 1, f"h{n:03d}", status, 0 if status == "ok" else 1)
            for n, status in enumerate(statuses)
        ]
        HostResult.insert_many(rows).execute()


def test_host_results_filter_by_status_and_page_with_counts(api):
    statuses = ["ok"] * 7 + ["failed", "ok", "unreachable", "failed", "ok"]
    _task_with_hosts("fleettask01", statuses)
    path = "/task/1/fleettask01/hosts"
    r = api.get(path)
    assert r.status_code == 200, r.text
    everything = r.json
    assert [h["host"] for h in everything["data"]] == [f"h{n:03d}" for n in range(12)]
    assert everything["total"] == 12
    assert everything["counts"] == {"ok": 9, "failed": 2, "unreachable": 1}

    failed = api.get(path, params={"status": "failed"}).json
    assert [h["host"] for h in failed["data"]] == ["h007", "h010"]
    assert {h["status"] for h in failed["data"]} == {"failed"}
    assert failed["total"] == 2 and failed["counts"] == everything["counts"]

    pages = [
        api.get(path, params={"status": "ok", "page": p, "pagesize": 4}).json for p in (1, 2, 3)
    ]
    assert [[h["host"] for h in page["data"]] for page in pages] == [
        ["h000", "h001", "h002", "h003"],
        ["h004", "h005", "h006", "h008"],
        ["h011"],
    ]
    assert {page["total"] for page in pages} == {9}
    assert api.get(path, params={"pagesize": 5}).json["data"][-1]["host"] == "h004"
    none = api.get(path, params={"status": "timeout"}).json
    assert (none["data"], none["total"]) == ([], 0)


@pytest.mark.parametrize(
    "params",
    [{"status": "Not A Status"}, {"page": "0"}, {"pagesize": "1001"}, {"status": "x" * 21}],
)
def test_host_results_refuse_bad_filters(api, params):
    _task_with_hosts("fleettask02", ["ok"])
    r = api.get("/task/1/fleettask02/hosts", params=params)
    assert r.status_code == 400 and r.json["stat"] is False, r.text


def test_host_results_of_another_project_are_not_found(api):
    _task_with_hosts("fleettask03", ["ok"])
    assert api.get("/task/2/fleettask03/hosts", params={"status": "ok"}).status_code == 404


def _result(host, status="ok", rc=0, stdout="", stderr="", msg=""):
    from engine.ansible.results import HostResult as Result

    return Result(host=host, status=status, rc=rc, stdout=stdout, stderr=stderr, msg=msg)


def test_hosts_with_the_same_status_and_output_share_one_block_failures_first():
    from engine.tasklog.hostlog import grouped

    results = {f"10.0.0.{n}": _result(f"10.0.0.{n}", stdout="Linux\n") for n in range(1, 31)}
    results["10.0.0.7"] = _result("10.0.0.7", "failed", 3, stdout="half", stderr="broken\n")
    results["10.0.0.9"] = _result("10.0.0.9", "unreachable", None, msg="Connection refused")
    results["10.0.0.12"] = _result("10.0.0.12", stdout="other\n")
    ok = [f"10.0.0.{n}" for n in range(1, 31) if n not in (7, 9, 12)]
    assert grouped(results) == (
        "--- 1 host failed rc=3: 10.0.0.7\nhalf\nbroken\n"
        "--- 1 host unreachable: 10.0.0.9\nConnection refused\n"
        f"--- 27 hosts ok rc=0: {', '.join(ok[:20])} and 7 more\nLinux\n"
        "--- 1 host ok rc=0: 10.0.0.12\nother\n"
    )
    assert grouped({"a": _result("a"), "b": _result("b")}) == "--- 2 hosts ok rc=0: a, b\n"


def test_progress_logs_the_first_host_then_now_and_then():
    from engine.tasklog.hostlog import Progress

    lines, now = [], [100.0]
    progress = Progress(lines.append, 4, every=5.0, clock=lambda: now[0])
    progress.host_ended(_result("a"))
    now[0] += 1
    progress.host_ended(_result("b", "failed", 1))
    now[0] += 5
    progress.host_ended(_result("c"))
    assert lines == [
        "... 1 of 4 host(s) ended: 1 ok\n",
        "... 3 of 4 host(s) ended: 1 failed, 2 ok\n",
    ]


@pytest.fixture(scope="module")
def cluster(ssh_nodes):
    from tests.cluster import running

    with running(ssh_nodes, {1: "fleet"}, nodes=4) as c:
        c.nodes4 = c.attached
        yield c


def _run_cmd(c, script):
    body = {
        "node_type": "builtin",
        "node_cont": ",".join(c.nodes4),
        "scripts_type": "shell",
        "scripts_cont": script,
    }
    uuid = c.ok("POST", "/task/1/plugin_cmd", body)["data"]["uuid"]
    task = c.wait(1, uuid)
    return uuid, task, c.ok("GET", f"/slave/any/tasklog/{uuid}")["data"]["log"]


def test_a_step_on_real_nodes_logs_identical_hosts_once(cluster):
    _, task, log = _run_cmd(cluster, "echo same output; uname -s")
    assert task["status"] == "success", log
    names = ", ".join(cluster.nodes4)
    assert f"--- 4 hosts ok rc=0: {names}\nsame output\nLinux\n" in log, log
    assert log.count("same output") == 1 and log.count("--- ") == 1, log


def test_a_failing_real_node_gets_its_own_group_first_and_the_hosts_route_filters(cluster):
    bad = cluster.nodes4[2]
    script = f'echo hello; case "$SSH_CONNECTION" in *" {bad} "*) echo broken >&2; exit 4;; esac'
    uuid, task, log = _run_cmd(cluster, script)
    assert task["status"] == "fail", log
    good = ", ".join(n for n in cluster.nodes4 if n != bad)
    failed_block = f"--- 1 host failed rc=4: {bad}\nhello\nbroken\n"
    ok_block = f"--- 3 hosts ok rc=0: {good}\nhello\n"
    assert failed_block in log and ok_block in log, log
    assert log.index(failed_block) < log.index(ok_block)
    path = f"/task/1/{uuid}/hosts"
    failed = cluster.ok("GET", path + "?status=failed")
    assert [(h["host"], h["rc"]) for h in failed["data"]] == [(bad, 4)], failed
    assert failed["total"] == 1 and failed["counts"] == {"ok": 3, "failed": 1}, failed
    page = cluster.ok("GET", path + "?status=ok&page=2&pagesize=2")
    assert [h["host"] for h in page["data"]] == [cluster.nodes4[3]] and page["total"] == 3, page
