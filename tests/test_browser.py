"""The two pages a person opens, in a real headless Chromium: the command console, and the live
task log page following a running task. Both take the API key from ``#key=``."""

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
    c.add_nodes(1, ssh_nodes.ensure(2))
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
