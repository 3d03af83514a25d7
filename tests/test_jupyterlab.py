"""The notebooks as a user meets them: a real JupyterLab (its widget front-end included) in
the headless Chromium of the page tests, every cell run from the Run menu against a live
opsjob with loopback sshd nodes. Screenshots land in ``$TMPDIR/opsjob-jupyterlab``."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from api.client import Client
from tests.cluster import Cluster
from tests.httpclient import free_port

pytestmark = pytest.mark.slow
PID = 1
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHOTS = os.path.join(os.environ.get("TMPDIR", "/tmp"), "opsjob-jupyterlab")
JUPYTER = os.path.join(os.path.dirname(sys.executable), "jupyter")
TOKEN = "opsjob-e2e"


@pytest.fixture(scope="module")
def cluster(ssh_nodes):
    c = Cluster(ssh_nodes)
    c.run("project", "add", str(PID), "lab")
    c.serve()
    c.worker()
    c.add_nodes(PID, ssh_nodes.ensure(2))
    yield c
    c.close()


def start_lab(cluster, ssh_nodes, home, disabled=()):
    """Start ``jupyter lab`` on a copy of the notebooks, its kernels pointed at ``cluster``
    with a key of the write role (what the quickstart documents); return (url, process)."""
    for folder in ("notebooks", "config", "data", "runtime", "settings", "workspaces"):
        os.makedirs(os.path.join(home, folder), exist_ok=True)
    for name in ("quickstart.ipynb", "analysis.ipynb"):
        shutil.copy(os.path.join(ROOT, "notebooks", name), os.path.join(home, "notebooks"))
    notices = os.path.join(home, "settings", "@jupyterlab", "apputils-extension")
    os.makedirs(notices, exist_ok=True)
    with open(os.path.join(notices, "notification.jupyterlab-settings"), "w") as f:
        json.dump({"fetchNews": "false", "checkForUpdates": False}, f)
    tracker = os.path.join(home, "settings", "@jupyterlab", "notebook-extension")
    os.makedirs(tracker, exist_ok=True)
    with open(os.path.join(tracker, "tracker.jupyterlab-settings"), "w") as f:
        json.dump({"windowingMode": "none"}, f)  # every cell drawn, for the screenshots
    if disabled:  # the page config JupyterLab reads its disabled extensions from
        os.makedirs(os.path.join(home, "config", "labconfig"), exist_ok=True)
        with open(os.path.join(home, "config", "labconfig", "page_config.json"), "w") as f:
            json.dump({"disabledExtensions": dict.fromkeys(disabled, True)}, f)
    key = cluster.run(
        "user", "add", f"lab-{os.urandom(3).hex()}", "--project", "1", "--role", "write"
    )
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": ROOT,
        "OPSJOB_URL": cluster.url,
        "OPSJOB_KEY": key,
        "OPSJOB_PROJECT": str(PID),
        "OPSJOB_NODES": ",".join(ssh_nodes.addresses[:2]),
        "JUPYTER_CONFIG_DIR": os.path.join(home, "config"),
        "JUPYTER_RUNTIME_DIR": os.path.join(home, "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": os.path.join(home, "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": os.path.join(home, "workspaces"),
        "IPYTHONDIR": os.path.join(home, "ipython"),
    }
    env.pop("MPLBACKEND", None)
    log = open(os.path.join(home, "lab.log"), "ab")
    proc = subprocess.Popen(
        [
            JUPYTER,
            "lab",
            "--no-browser",
            "--allow-root",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--IdentityProvider.token={TOKEN}",
            f"--ServerApp.root_dir={os.path.join(home, 'notebooks')}",
            "--LabApp.news_url=",
            "--LabServerApp.extension_manager=readonly",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2):
                return url, proc
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, "jupyter lab did not start"
            time.sleep(0.3)


def stop_lab(proc, home):
    shutil.copy(os.path.join(home, "lab.log"), os.path.join(SHOTS, f"lab-{proc.pid}.log"))
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture(scope="module")
def shots():
    shutil.rmtree(SHOTS, ignore_errors=True)
    os.makedirs(SHOTS)
    return SHOTS


def open_notebook(browser, url, name):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{url}/lab/tree/{name}?token={TOKEN}")
    expect(page.locator(".jp-NotebookPanel .jp-Cell").first).to_be_visible(timeout=60_000)
    expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")).to_have_count(
        1, timeout=60_000
    )
    return page


def accept_kernel(page):
    """Take the notebook's own kernel if JupyterLab asks which to start."""
    dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
    try:
        dialog.wait_for(timeout=3_000)
    except PlaywrightTimeout:
        return
    dialog.locator(".jp-mod-accept").click()
    expect(dialog).to_have_count(0)


def run_menu(page, item):
    """Choose ``item`` of the Run menu."""
    accept_kernel(page)
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(item)}$")).click()
    accept_kernel(page)


def run_all(page):
    """Run every cell from the Run menu."""
    run_menu(page, "Run All Cells")


def select_cell(page, starting):
    """Make the code cell whose source starts with ``starting`` the active one."""
    cell = page.locator(".jp-CodeCell").filter(
        has=page.locator(".jp-InputArea-editor", has_text=starting)
    )
    cell.locator(".jp-InputArea-prompt").click()
    expect(cell).to_have_class(re.compile("jp-mod-active"))


def wait_all_ran(page, timeout=300):
    """Wait until every code cell has an execution count; fail on any traceback."""
    prompts = page.locator(".jp-CodeCell .jp-InputArea-prompt")
    deadline = time.monotonic() + timeout
    while True:
        texts = prompts.all_text_contents()
        if texts and all(re.fullmatch(r"\[\d+\]:", t.strip()) for t in texts):
            break
        assert time.monotonic() < deadline, f"cells still running: {texts}"
        time.sleep(0.5)
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    assert not [t for t in errors.all_text_contents() if "Traceback" in t or "Error" in t]
    assert "Traceback" not in page.locator(".jp-Notebook").text_content()


def widgets_rendered(page):
    """No widget fell back to its text form."""
    text = page.locator(".jp-Notebook").text_content()
    for fallback in ("TaskMonitor(children", "JobLauncher(children", "AnalysisDashboard(child"):
        assert fallback not in text
    assert "Loading widget" not in text


def log_follows(box):
    """Return whether the newest line of a log box is in view, and nothing overflows sideways."""
    return box.evaluate(
        """box => {
            const pre = box.querySelector('pre');
            const range = document.createRange();
            range.selectNodeContents(pre);
            const rects = range.getClientRects();
            const last = rects[rects.length - 1], frame = box.getBoundingClientRect();
            return {
                overflows: box.scrollHeight > box.clientHeight + 1,
                newest: last.bottom <= frame.bottom + 1 && last.top >= frame.top - 1,
                sideways: box.scrollWidth > box.clientWidth + 1,
            };
        }"""
    )


def test_quickstart_in_jupyterlab(cluster, ssh_nodes, browser, shots, tmp_path):
    url, lab = start_lab(cluster, ssh_nodes, str(tmp_path))
    try:
        page = open_notebook(browser, url, "quickstart.ipynb")
        # Every cell from the Run menu, in two goes: up to the decision, which the next cell
        # fixes and retries within a second, then the rest.
        select_cell(page, "fix = client.run_cmd(")
        run_menu(page, "Run All Above Selected Cell")
        monitors = page.locator(".jp-OutputArea .opsjob-monitor")
        # The failed step waits for a decision: the buttons, and beside them which hosts failed.
        decision = monitors.nth(1)
        expect(decision.locator(".opsjob-why")).to_contain_text("failed on", timeout=120_000)
        retry = decision.get_by_role("button", name="Retry failed hosts")
        expect(retry).to_be_visible()
        assert retry.evaluate("b => b.scrollWidth <= b.clientWidth")  # the label is not cut
        expect(decision.get_by_role("button", name="Next")).to_be_hidden()
        decision.screenshot(path=os.path.join(shots, "monitor-decision.png"))
        select_cell(page, "fix = client.run_cmd(")
        run_menu(page, "Run Selected Cell and All Below")
        expect(decision.locator(".opsjob-steps")).to_contain_text("success", timeout=120_000)
        # The staged job: no Next while its first step runs, Next once the task waits there.
        staged = monitors.nth(2)
        expect(staged.locator(".opsjob-steps")).to_contain_text("running", timeout=120_000)
        expect(staged.get_by_role("button", name="Next")).to_be_hidden()
        expect(staged.get_by_role("button", name="Kill")).to_be_visible()
        staged.screenshot(path=os.path.join(shots, "monitor-running.png"))
        expect(staged.get_by_role("button", name="Next")).to_be_visible(timeout=60_000)
        expect(staged.locator(".opsjob-why")).to_contain_text("paused after prepare")
        expect(staged).to_contain_text("1/2 steps")
        staged.screenshot(path=os.path.join(shots, "monitor-paused.png"))
        wait_all_ran(page)
        widgets_rendered(page)
        staged.get_by_role("button", name="Next").click()
        expect(staged.locator(".widget-html").first).to_contain_text("success", timeout=60_000)
        expect(staged.get_by_role("button", name="Next")).to_be_hidden()
        expect(staged).to_contain_text("2/2 steps")
        expect(staged.locator(".opsjob-log")).to_contain_text("task success")
        staged.screenshot(path=os.path.join(shots, "monitor-done.png"))
        boxes = page.locator(".opsjob-log")
        seen = [log_follows(boxes.nth(i)) for i in range(boxes.count())]
        assert all(s["newest"] and not s["sideways"] for s in seen), seen
        assert any(s["overflows"] for s in seen), seen  # one log is long enough to scroll
        # The launcher: Run shows the task's monitor in place, and the task ran on a node.
        launcher = page.locator(".opsjob-launcher")
        launcher.get_by_role("button", name="Run").click()
        started = launcher.locator(".opsjob-monitor")
        expect(started.locator(".opsjob-log")).to_contain_text("task success", timeout=120_000)
        expect(started.locator(".opsjob-hosts")).to_contain_text("hello from")
        launcher.screenshot(path=os.path.join(shots, "launcher.png"))
        client = Client(cluster.url, cluster.key, projectid=PID)
        tasks = client.tasks()
        hello = tasks[tasks["name"].str.startswith("hello-")]
        assert hello["status"].tolist() == ["success"]
        hosts = client.task(hello["uuid"].iloc[0]).hosts
        assert hosts["host"].tolist() == ssh_nodes.addresses[:2]
        assert all(out.startswith("hello from ") for out in hosts["stdout"])
        page.close()
    finally:
        stop_lab(lab, str(tmp_path))


def tick_labels(source, axis):
    """Return the tick labels of ``axis`` (x or y) of a matplotlib SVG with text as text."""
    return re.findall(rf'<g id="{axis}tick_\d+">.*?<text[^>]*>([^<]*)</text>', source, re.S)


def test_analysis_in_jupyterlab(cluster, ssh_nodes, browser, shots, tmp_path):
    client = Client(cluster.url, cluster.key, projectid=PID)
    for script in ('echo "myapp:[1.4.2]"', "exit 3"):
        client.run_cmd(ssh_nodes.addresses[:2], script)
    url, lab = start_lab(cluster, ssh_nodes, str(tmp_path))
    try:
        page = open_notebook(browser, url, "analysis.ipynb")
        run_all(page)
        wait_all_ran(page, timeout=180)
        widgets_rendered(page)
        board = page.locator(".opsjob-dashboard")
        expect(board.locator(".lm-TabBar-tab")).to_have_count(6)
        charts = board.locator("img, svg").evaluate_all(
            """nodes => nodes.map(n => n.tagName === 'IMG'
                ? decodeURIComponent(n.src.slice(n.src.indexOf(',') + 1)) : n.outerHTML)"""
        )
        titles = {t: c for c in charts for t in re.findall(r"<text[^>]*>([^<]*)</text>", c)}
        day, hour = titles["Tasks per day (last 30 days)"], titles["Tasks started per hour of day"]
        for chart in (day, hour, titles["Tasks per project"]):
            labels = tick_labels(chart, "y")
            assert labels and all(re.fullmatch(r"\d+", t) for t in labels), labels
        assert tick_labels(hour, "x") == [str(h) for h in range(24)]
        assert "date" not in re.findall(r"<text[^>]*>([^<]*)</text>", day)
        board.screenshot(path=os.path.join(shots, "dashboard-day.png"))
        board.locator(".lm-TabBar-tab", has_text="Tasks per hour").click()
        board.screenshot(path=os.path.join(shots, "dashboard-hour.png"))
        page.close()
    finally:
        stop_lab(lab, str(tmp_path))


def test_without_the_widget_front_end_the_check_fails(cluster, ssh_nodes, browser, shots, tmp_path):
    """The same checks see it when JupyterLab lacks the widget front-end."""
    url, lab = start_lab(
        cluster, ssh_nodes, str(tmp_path), disabled=("@jupyter-widgets/jupyterlab-manager",)
    )
    try:
        page = open_notebook(browser, url, "analysis.ipynb")
        run_all(page)
        wait_all_ran(page, timeout=180)
        assert page.locator(".opsjob-dashboard").count() == 0
        with pytest.raises(AssertionError):
            widgets_rendered(page)
        page.close()
    finally:
        stop_lab(lab, str(tmp_path))
