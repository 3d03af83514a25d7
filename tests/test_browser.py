"""The two pages a person opens, in a real headless Chromium: the command console, and the live
task log page following a running task and paging its hosts. Both take the API key from
``#key=``."""

import re
import secrets

import pytest
from playwright.sync_api import expect

from tests.cluster import Cluster

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(ssh_nodes):
    c = Cluster(ssh_nodes)
    c.run("project", "add", "1", "browser")
    c.serve()
    c.worker()
    c.add_nodes(1, ssh_nodes.ensure(5))
    yield c
    c.close()


def test_console_page_runs_a_typed_command_on_each_node(cluster, ssh_nodes, browser):
    a, b = ssh_nodes.addresses[:2]
    page = browser.new_page()
    page.goto(f"{cluster.url}/cmd/1?node={a},{b}#key={cluster.key}")
    expect(page.locator("#nodes")).to_have_text(f"{a},{b}")
    page.fill("#cmd", 'echo "hello-$((6*7)) from $(echo $SSH_CONNECTION | cut -d" " -f3)"')
    page.press("#cmd", "Enter")
    for node in (a, b):
        box = page.locator(f'.node[data-node="{node}"]')
        expect(box.locator("h3")).to_have_text(f"{node} [ok rc=0]", timeout=60_000)
        expect(box.locator("pre").first).to_have_text(f"hello-42 from {node}\n")
    expect(page.locator("#state")).to_have_text("ready")

    page.fill("#cmd", "echo broken >&2; exit 7")
    page.press("#cmd", "Enter")
    latest = page.locator("section").first
    expect(latest.locator(f'.node[data-node="{a}"] h3')).to_have_text(
        f"{a} [failed rc=7]", timeout=60_000
    )
    expect(latest.locator(f'.node[data-node="{a}"] pre.err')).to_contain_text("broken")
    log = cluster.ok("GET", "/cmd/1/log")["data"]
    assert [r["cmd"] for r in log][:2] == [
        "echo broken >&2; exit 7",
        'echo "hello-$((6*7)) from $(echo $SSH_CONNECTION | cut -d" " -f3)"',
    ]
    page.close()


def test_console_page_without_a_key_shows_the_refusal(cluster, ssh_nodes, browser):
    a = ssh_nodes.addresses[0]
    page = browser.new_page()
    page.goto(f"{cluster.url}/cmd/1?node={a}")
    page.fill("#cmd", "touch /tmp/never-without-key")
    page.press("#cmd", "Enter")
    expect(page.locator("section pre.err")).to_contain_text("missing credentials")
    page.close()


def test_log_page_follows_a_running_task(cluster, ssh_nodes, browser):
    a, b = ssh_nodes.addresses[:2]
    steps = [
        {
            "plugin_type": "cmd",
            "name": "first",
            "node_type": "builtin",
            "node_cont": a,
            "scripts_type": "shell",
            "scripts_cont": "echo first-step-done",
        },
        {
            "plugin_type": "cmd",
            "name": "second",
            "node_type": "builtin",
            "node_cont": b,
            "scripts_type": "shell",
            "scripts_cont": "sleep 4; echo second-step-done",
        },
    ]
    jobuuid = cluster.ok("POST", "/jobs/1", {"name": "follow", "permanent": 1, "data": steps})[
        "uuid"
    ]
    uuid = cluster.ok("POST", "/task/1/job", {"jobuuid": jobuuid})["uuid"]
    page = browser.new_page()
    page.goto(f"{cluster.url}/slave/any/tasklog/{uuid}#key={cluster.key}")
    log, status = page.locator("#log"), page.locator("#status")
    # The page shows the first step's output while the task is still running ...
    expect(log).to_contain_text("first-step-done", timeout=60_000)
    assert status.text_content() == "running"
    assert "second-step-done" not in log.text_content()
    # ... and keeps following until the task ends.
    expect(log).to_contain_text("second-step-done", timeout=60_000)
    expect(status).to_have_text("success")
    expect(log).to_contain_text("task success")
    # Everything the task logged reached the page, once.
    assert log.text_content() == cluster.ok("GET", f"/slave/any/tasklog/{uuid}")["data"]["log"]
    page.close()


def test_log_page_counts_the_hosts_and_shows_one_page_of_them(cluster, ssh_nodes, browser):
    nodes = ssh_nodes.addresses[:5]
    script = (
        'me=$(echo $SSH_CONNECTION | cut -d" " -f3); '
        f'[ "$me" != "{nodes[1]}" ] || {{ echo "<b>broke</b>" >&2; exit 3; }}; echo "hello $me"'
    )
    step = {"node_type": "builtin", "node_cont": ",".join(nodes), "scripts_type": "shell"}
    step |= {"scripts_cont": script, "rolling": "2"}  # the failure stops the rollout
    uuid = cluster.ok("POST", "/task/1/plugin_cmd", step)["data"]["uuid"]
    page = browser.new_page()
    page.goto(f"{cluster.url}/slave/any/tasklog/{uuid}#key={cluster.key}&pagesize=2")
    final = cluster.wait(1, uuid)["status"]
    expect(page.locator("#status")).to_have_text(final, timeout=60_000)
    counts = cluster.call("GET", f"/task/1/{uuid}/hosts")[1]["counts"]
    assert counts == {"ok": 1, "failed": 1, "skipped": 3}
    spans = page.locator("#counts span")
    expect(spans).to_have_text(["3 skipped", "1 failed", "1 ok"])  # what did not succeed first
    rows, where = page.locator("#rows tr"), page.locator("#where")
    expect(where).to_have_text("hosts 1-2 of 5 · page 1 of 3")
    expect(rows).to_have_count(2)  # one page drawn, not every host
    first = {rows.nth(i).locator("td").nth(1).text_content() for i in range(2)}
    assert first == set(nodes[:2])  # batch 1 ran first
    broken = page.locator("#rows tr", has_text=nodes[1])
    expect(broken.locator("td.out")).to_have_text("<b>broke</b>")  # text, never markup
    expect(broken.locator("td").nth(5)).to_have_text("3")
    expect(page.locator("#prev")).to_be_disabled()
    page.click("#next")
    expect(where).to_have_text("hosts 3-4 of 5 · page 2 of 3")
    expect(rows.locator("td:nth-child(4)")).to_have_text(["2", "2"])  # the batch column
    page.click("#next")
    expect(where).to_have_text("hosts 5-5 of 5 · page 3 of 3")
    expect(rows).to_have_count(1)
    expect(page.locator("#next")).to_be_disabled()

    page.select_option("#filter", "skipped")
    expect(where).to_have_text("hosts 1-2 of 3 · page 1 of 2")
    expect(rows.locator("td:nth-child(5)")).to_have_text(["skipped", "skipped"])
    page.select_option("#filter", "failed")
    expect(where).to_have_text("hosts 1-1 of 1 · page 1 of 1")
    expect(rows.locator("td:nth-child(2)")).to_have_text([nodes[1]])
    labels = page.locator("#filter option").all_text_contents()
    assert labels == ["all (5)", "skipped (3)", "failed (1)", "ok (1)"]
    # The OpenC3 route still answers the UI's JSON, unchanged.
    log = cluster.ok("GET", f"/slave/any/tasklog/{uuid}")["data"]
    assert set(log) == {"log", "offset", "done", "status", "uuid"}
    assert re.search(r"--- 1 host failed rc=3: " + re.escape(nodes[1]), log["log"])
    page.close()


def test_log_page_draws_one_page_of_a_thousand_hosts(cluster, browser):
    from playhouse.db_url import connect

    from engine.store.runmodels import HostResult, Task

    uuid = secrets.token_hex(6)
    rows = [
        {
            "taskuuid": uuid,
            "stepuuid": "s" * 12,
            "host": f"10.1.{i // 250}.{i % 250}",
            "status": "failed" if i % 59 == 7 else "ok",
            "rc": 3 if i % 59 == 7 else 0,
            "stdout": f"line {i}\n",
        }
        for i in range(1000)
    ]
    database = connect(cluster.env["OPSJOB_DATABASE_URL"])
    with database.bind_ctx([Task, HostResult]), database.atomic():
        Task.create(projectid=1, uuid=uuid, status="success", name="fleet", jobtype="plugin")
        HostResult.insert_many(rows).execute()
    database.close()
    failed = sum(r["status"] == "failed" for r in rows)
    page = browser.new_page()
    page.goto(f"{cluster.url}/slave/any/tasklog/{uuid}#key={cluster.key}")
    where = page.locator("#where")
    expect(where).to_have_text("hosts 1-50 of 1000 · page 1 of 20", timeout=30_000)
    expect(page.locator("#counts span")).to_have_text([f"{failed} failed", f"{1000 - failed} ok"])
    expect(page.locator("#rows tr")).to_have_count(50)  # one page in the DOM, not 1,000 rows
    page.select_option("#filter", "failed")
    expect(where).to_have_text(f"hosts 1-{failed} of {failed} · page 1 of 1")
    expect(page.locator("#rows tr td:nth-child(5)")).to_have_text(["failed"] * failed)
    page.close()
