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
