"""Websocket pages in a real headless Chromium: the task log page follows a running task over
the live log websocket, and the console's terminal (`bash=1`) runs an interactive shell on
one machine."""

import threading
import time

import pytest
from playwright.sync_api import expect

from tests.cluster import Cluster, cmd_step

pytestmark = pytest.mark.slow
MARKERS = ("first-line-out", "second-line-out", "third-line-out")


@pytest.fixture(scope="module")
def cluster(ssh_nodes):
    c = Cluster(ssh_nodes)
    c.run("project", "add", "1", "pages")
    c.run("project", "add", "2", "other")
    c.serve()
    c.worker()
    c.add_nodes(1, ssh_nodes.ensure(2)[:1])
    c.add_nodes(2, ssh_nodes.ensure(2)[1:2])
    yield c
    c.close()


def test_log_page_shows_each_line_within_a_second(cluster, ssh_nodes, browser):
    node = ssh_nodes.addresses[0]
    steps = [
        cmd_step(f"echo {MARKERS[0]}", [node], name="one"),
        cmd_step(f"sleep 3; echo {MARKERS[1]}", [node], name="two"),
        cmd_step(f"sleep 3; echo {MARKERS[2]}", [node], name="three"),
    ]
    jobuuid = cluster.ok("POST", "/jobs/1", {"name": "page", "permanent": 1, "data": steps})["uuid"]
    page = browser.new_page()
    sockets, polls = [], []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.on("request", lambda r: polls.append(r.url) if "offset=" in r.url else None)
    uuid = cluster.ok("POST", "/task/1/job", {"jobuuid": jobuuid})["uuid"]
    # When each line is stored (the polling route, read every 0.1 s by this test).
    stored, stop = {}, threading.Event()

    def poll():
        while not stop.is_set():
            log = cluster.ok("GET", f"/slave/any/tasklog/{uuid}")["data"]["log"]
            for marker in MARKERS:
                if marker in log and marker not in stored:
                    stored[marker] = time.monotonic()
            time.sleep(0.1)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    shown = {}
    try:
        page.goto(f"{cluster.url}/slave/worker1/tasklog/{uuid}#key={cluster.key}")
        deadline = time.monotonic() + 90
        while len(shown) < len(MARKERS):
            assert time.monotonic() < deadline, (shown, stored)
            text = page.locator("#log").text_content()
            for marker in MARKERS:
                if marker in text and marker not in shown:
                    shown[marker] = time.monotonic()
            page.wait_for_timeout(50)
        expect(page.locator("#status")).to_have_text("success", timeout=30_000)
    finally:
        stop.set()
        poller.join()
    for marker in MARKERS[1:]:  # the first may be stored before the page opened
        assert shown[marker] - stored[marker] < 1.0, (marker, shown, stored)
    assert shown[MARKERS[1]] < stored[MARKERS[2]]  # shown while the task still ran
    # The page read the log over the websocket: one socket, and the JSON route only once at
    # the end (for the final status).
    assert len(sockets) == 1 and f"/slave/worker1/ws?uuid={uuid}" in sockets[0]
    assert len(polls) <= 1
    final = cluster.ok("GET", f"/slave/any/tasklog/{uuid}")["data"]["log"]
    assert page.locator("#log").text_content() == final  # every line, once
    assert "ticket=" in sockets[0] and cluster.key not in sockets[0]
    page.close()


def test_terminal_runs_a_shell_on_one_machine(cluster, ssh_nodes, browser):
    node = ssh_nodes.addresses[0]
    page = browser.new_page()
    page.goto(f"{cluster.url}/cmd/1?node={node}&bash=1#key={cluster.key}")
    expect(page.locator("#state")).to_have_text("connected", timeout=30_000)
    page.locator("#screen").click()
    page.keyboard.type("echo $((6*7))")
    page.keyboard.press("Enter")
    expect(page.locator("#screen")).to_contain_text("\n42", timeout=30_000)
    page.keyboard.type("exit")
    page.keyboard.press("Enter")
    expect(page.locator("#state")).to_have_text("closed", timeout=30_000)
    log = cluster.ok("GET", f"/cmd/1/log?node={node}")["data"]
    assert [r["cmd"] for r in log][:2] == ["exit", "echo $((6*7))"]
    assert log[-1]["cmd"] == "[terminal opened]" and log[-1]["user"] == "root"
    page.close()


def test_terminal_refusals(cluster, ssh_nodes, browser):
    mine, foreign = ssh_nodes.addresses[0], ssh_nodes.addresses[1]
    reader = cluster.run("user", "add", "termreader", "--project", "1", "--role", "read")
    page = browser.new_page()
    # A read key gets no ticket: the terminal needs write.
    page.goto(f"{cluster.url}/cmd/1?node={mine}&bash=1#key={reader}")
    expect(page.locator("#state")).to_contain_text("write on project 1 is required")
    # A machine of another project is refused, and nothing is logged.
    page.goto(f"{cluster.url}/cmd/1?node={foreign}&bash=1#key={cluster.key}")
    expect(page.locator("#state")).to_have_text("closed (4403)", timeout=30_000)
    expect(page.locator("#screen")).to_contain_text(f"not a machine of project 1: {foreign}")
    assert cluster.ok("GET", f"/cmd/1/log?node={foreign}")["data"] == []
    page.close()
