"""The notebook widgets, headless: built against a live server, buttons clicked from Python,
effects checked on the server."""

import re
import time

import ipywidgets as w
import pytest

from api.client import Client
from api.client.widgets import AnalysisDashboard, JobLauncher, TaskMonitor
from tests.cluster import cmd_step, running, unique

pytestmark = pytest.mark.slow
PID = 1


@pytest.fixture(scope="module")
def cluster(ssh_nodes):
    with running(ssh_nodes, {PID: "widgets"}, nodes=5) as c:
        yield c


@pytest.fixture(scope="module")
def client(cluster):
    return Client(cluster.url, cluster.key, projectid=PID)


def cmd(nodes, script, **kw):
    return cmd_step(script, nodes, **kw)


def add_job(client, steps, name=None):
    return client.jobs.add(name=name or unique("job"), permanent=1, data=steps)["uuid"]


def visible(monitor):
    return sorted(a for a, b in monitor.buttons.items() if b.layout.display != "none")


def test_launcher_form_runs_the_job(client, ssh_nodes):
    a = ssh_nodes.addresses[0]
    script = 'echo "release:[$1]" "target=$2"'
    jobuuid = add_job(client, [cmd([a], script, argv="$version $target", name="report")])
    client.set_variables(
        jobuuid,
        [
            {"name": "version", "value": "1.0", "describe": "release", "option": "1.0,2.0;3.0"},
            {"name": "target", "value": "blue", "describe": "pool"},
        ],
    )
    started = []
    launcher = JobLauncher(client, on_start=started.append)
    assert jobuuid in [value for _, value in launcher.job.options]
    launcher.job.value = jobuuid
    version, target = launcher.fields["version"], launcher.fields["target"]
    assert isinstance(version, w.Dropdown) and version.options == ("1.0", "2.0", "3.0")
    assert isinstance(target, w.Text) and target.value == "blue"
    version.value, target.value = "2.0", "green"
    launcher.run_button.click()
    assert started == [launcher.task] and launcher.task.uuid in launcher.message.value
    assert launcher.watching.children == (launcher.monitor,)
    assert launcher.monitor.task is launcher.task
    task = launcher.task.wait()
    assert task.status == "success"
    assert task.hosts["stdout"].tolist() == ["release:[2.0] target=green\n"]
    assert task.data["variable"] == "target: green\nversion: '2.0'\n"
    assert client.vv(name="release")["value"].tolist() == ["2.0"]


def test_launcher_shows_server_errors(client, ssh_nodes):
    jobuuid = add_job(client, [cmd(ssh_nodes.addresses[:1], "true", argv="$who")])
    launcher = JobLauncher(client)
    launcher.job.value = jobuuid
    launcher.fields["who"].value = "x" * 5000  # longer than a variable may be
    launcher.run_button.click()
    assert launcher.task is None and "variable.who" in launcher.message.value


def test_monitor_retry_button_resumes_the_task(client, ssh_nodes):
    a, b = ssh_nodes.addresses[:2]
    marker = unique("m")
    script = (
        "me=$(echo $SSH_CONNECTION | cut -d' ' -f3); "
        f'[ "$me" != "{b}" ] || test -e /tmp/{marker}-go'
    )
    task = client.run(add_job(client, [cmd([a, b], script, name="canary"), cmd([a], "true")]))
    monitor = TaskMonitor(task)
    assert task.status == "waiting"
    assert visible(monitor) == ["fail", "ignore", "kill", "running"]
    assert "decision" in monitor.steps.value and "canary" in monitor.steps.value
    assert f"<b>{b}</b> failed (rc=1)" in monitor.why.value  # beside the buttons
    hosts = monitor.hosts.table.value
    assert "canary" in hosts and task.steps[0]["uuid"] not in hosts
    assert monitor.progress.value == 0 and monitor.progress.max == 2
    assert a in hosts and "failed" in hosts
    ssh_nodes.ssh(b, f"touch /tmp/{marker}-go")
    monitor.buttons["running"].click()
    assert monitor.watch(timeout=60, interval=0.3).task.status == "success"
    assert client.task(task.uuid).status == "success"
    assert visible(monitor) == []
    assert monitor.progress.value == monitor.progress.max == 2
    hosts = task.hosts
    assert hosts[hosts["host"] == b]["attempt"].tolist() == [1, 2]  # only b ran again
    assert hosts[hosts["host"] == a]["attempt"].tolist() == [1, 1]  # step 1, then step 2
    assert monitor.log_view.value.endswith("task success</pre></div>")  # the newest line last


def test_monitor_next_and_fail_buttons(client, ssh_nodes):
    a = ssh_nodes.addresses[0]
    steps = [cmd([a], "sleep 2", pause="check", name="first"), cmd([a], "true")]
    paused = client.run(add_job(client, steps), wait=False)
    paused.wait(until=("running",), timeout=60)
    monitor = TaskMonitor(paused)
    assert paused.steps[0]["status"] == "running"
    assert visible(monitor) == ["kill"]  # no Next before the task waits at the pause
    monitor.act("next")  # from code: refused by the widget, the pause stays
    assert "Next: not now" in monitor.message.value and paused.steps[0]["pause"] == "check"
    monitor.watch(timeout=60, interval=0.3)
    assert visible(monitor) == ["kill", "next"]
    assert "paused after <b>first</b>: check" in monitor.why.value
    assert monitor.progress.description == "1/2 steps"
    monitor.buttons["next"].click()
    assert monitor.message.value == "Next: sent"
    assert monitor.watch(timeout=60, interval=0.3).task.status == "success"
    assert monitor.message.value == ""  # the stale message went
    assert monitor.progress.description == "2/2 steps"
    assert [s["status"] for s in paused.steps] == ["success", "success"]

    failing = client.run(add_job(client, [cmd([a], "exit 2"), cmd([a], "true")]))
    monitor = TaskMonitor(failing)
    monitor.buttons["fail"].click()
    monitor.watch(timeout=60, interval=0.3)
    done = client.task(failing.uuid)
    assert done.status == "fail" and done.data["reason"] == "stop by root"
    assert [s["status"] for s in done.steps] == ["fail", None]


def test_monitor_kill_button(client, ssh_nodes):
    task = client.run_cmd(ssh_nodes.addresses[:1], "sleep 300", wait=False)
    task.wait(until=("running",), timeout=60)
    monitor = TaskMonitor(task)
    assert visible(monitor) == ["kill"]  # a single step has no decision or pause
    time.sleep(0.5)
    monitor.buttons["kill"].click()
    assert "kill task succcess" in monitor.message.value
    done = client.task(task.uuid).wait(timeout=30)
    assert done.status == "fail" and done.data["reason"] == "killed by root"


def cells(html_table, column):
    """The text of one column of a widget's HTML table, row by row."""
    rows = re.findall(r"<tr>(.*?)</tr>", html_table)[1:]
    return [re.sub(r"<[^>]+>", "", re.findall(r"<td[^>]*>(.*?)</td>", r)[column]) for r in rows]


def test_monitor_counts_the_hosts_and_pages_them(client, ssh_nodes):
    nodes = ssh_nodes.addresses[:5]
    script = (
        "me=$(echo $SSH_CONNECTION | cut -d' ' -f3); "
        f'[ "$me" != "{nodes[1]}" ] || {{ echo down >&2; exit 3; }}; echo "up $me"'
    )
    task = client.run_cmd(nodes, script, rolling="2")  # the failure stops the rollout
    assert task.hosts.columns.tolist()[:4] == ["step", "attempt", "batch", "host"]
    assert sorted(task.hosts["batch"].tolist()) == [1, 1, 2, 2, 3]
    monitor = TaskMonitor(task, pagesize=2)
    pager = monitor.hosts
    shown = re.findall(r'data-status="(\w+)"[^>]*>(\d+) ', pager.counts.value)
    assert shown == [("skipped", "3"), ("failed", "1"), ("ok", "1")]
    assert "5 host result(s)" in pager.counts.value
    assert pager.where.value.endswith("hosts 1-2 of 5 · page 1 of 3</span>")
    assert set(cells(pager.table.value, 1)) == set(nodes[:2])  # one page, batch 1 first
    assert pager.previous.disabled and not pager.next.disabled
    pager.next.click()
    assert "hosts 3-4 of 5 · page 2 of 3" in pager.where.value
    assert cells(pager.table.value, 3) == ["2", "2"]  # the batch column
    assert cells(pager.table.value, 4) == ["skipped", "skipped"]
    pager.next.click()
    assert cells(pager.table.value, 1) == [nodes[4]] and pager.next.disabled
    assert [label for label, _ in pager.filter.options] == [
        "all (5)",
        "skipped (3)",
        "failed (1)",
        "ok (1)",
    ]
    pager.filter.value = "failed"
    assert "hosts 1-1 of 1 · page 1 of 1" in pager.where.value
    assert cells(pager.table.value, 1) == [nodes[1]] and cells(pager.table.value, 5) == ["3"]
    assert cells(pager.table.value, 7) == ["down"]
    monitor.refresh()  # the filter and page stay across refreshes
    assert pager.filter.value == "failed" and cells(pager.table.value, 1) == [nodes[1]]
    one = task.host_page(status="skipped", page=2, pagesize=2)
    assert (one.total, one.pages, one.counts) == (3, 2, {"ok": 1, "failed": 1, "skipped": 3})
    assert one.rows["host"].tolist() == [nodes[4]] and one.rows["batch"].tolist() == [3]


def test_dashboard_charts_the_history(client, ssh_nodes):
    client.run_cmd(ssh_nodes.addresses[:2], 'echo "VERSION:[9.9]"')
    board = AnalysisDashboard(client)
    date = board.frames["date"]
    assert len(date) == 30 and date["total"].iloc[-1] >= 1
    bars = board.figures["date"].axes[0].patches  # succeeded, then the rest on top
    assert sum(p.get_height() for p in bars) == date["total"].sum()
    hour = board.figures["hour"].axes[0]
    assert len(hour.patches) == 24 and sum(p.get_height() for p in hour.patches) >= 1
    assert all(t == int(t) for t in hour.get_yticks())
    assert hour.get_title() == "Tasks started per hour of day"
    assert set(board.figures) == {"date", "hour", "runtime", "statistics", "versions"}
    assert board.frames["table"].loc[ssh_nodes.addresses[0], "VERSION"] == "9.9"
    versions = board.frames["versions"]
    assert versions[versions["name"] == "VERSION"]["percent"].tolist() == [100.0]
    client.vv_delete(ssh_nodes.addresses[0])
    board.refresh_button.click()
    assert ssh_nodes.addresses[0] not in board.frames["table"].index
    assert board.frames["versions"]["percent"].tolist() == [100.0]  # the other node's


def test_monitor_names_a_few_failed_hosts_beside_the_buttons(client, ssh_nodes, monkeypatch):
    from api.client.widgets import monitor as module

    monkeypatch.setattr(module, "WHY_HOSTS", 2)
    nodes = ssh_nodes.addresses[:5]
    task = client.run(add_job(client, [cmd(nodes, "echo nope >&2; exit 4", name="all")]))
    monitor = TaskMonitor(task)
    assert visible(monitor) == ["fail", "ignore", "kill", "running"]
    assert monitor.why.value.count("</b> failed (rc=4): nope") == 2
    assert monitor.why.value.endswith("; and 3 more</span>")
    assert "5 failed" in monitor.hosts.counts.value  # the pager holds every one of them
    monitor.buttons["fail"].click()
