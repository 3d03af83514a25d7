"""The notebooks run top to bottom against a live server with loopback sshd nodes; a failing
cell fails the test."""

import os

import nbformat
import pytest
from nbclient import NotebookClient

from api.client import Client
from tests.cluster import Cluster

pytestmark = pytest.mark.slow
PID = 1
NOTEBOOKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "notebooks")


@pytest.fixture(scope="module")
def cluster(ssh_nodes):
    c = Cluster(ssh_nodes)
    c.run("project", "add", str(PID), "notebooks")
    c.serve()
    c.worker()
    c.add_nodes(PID, ssh_nodes.ensure(2))
    yield c
    c.close()


@pytest.fixture
def environment(cluster, ssh_nodes, monkeypatch):
    """What the notebooks read: the server, a key, the project and its nodes."""
    monkeypatch.setenv("OPSJOB_URL", cluster.url)
    monkeypatch.setenv("OPSJOB_KEY", cluster.key)
    monkeypatch.setenv("OPSJOB_PROJECT", str(PID))
    monkeypatch.setenv("OPSJOB_NODES", ",".join(ssh_nodes.addresses[:2]))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")


def as_role(cluster, monkeypatch, role):
    """Give the notebook a key holding only ``role`` on the project, the role its text
    documents, so a cell that needs more fails the test."""
    key = cluster.run(
        "user", "add", f"nb-{role}-{os.urandom(3).hex()}", "--project", str(PID), "--role", role
    )
    monkeypatch.setenv("OPSJOB_KEY", key)


def execute(name, tmp_path):
    nb = nbformat.read(os.path.join(NOTEBOOKS, f"{name}.ipynb"), as_version=4)
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    return nb


def outputs(cell):
    """The text and HTML a cell showed."""
    parts = []
    for out in cell.get("outputs", []):
        parts.append(out.get("text", ""))
        data = out.get("data", {})
        parts.append(data.get("text/plain", "") + data.get("text/html", ""))
    return "\n".join(parts)


def test_quickstart(environment, cluster, ssh_nodes, tmp_path, monkeypatch):
    as_role(cluster, monkeypatch, "write")  # "an API key with the `write` role"
    nb = execute("quickstart", tmp_path)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code)
    shown = "\n".join(outputs(c) for c in code)
    assert "hello from" in shown and "task success" in shown
    client = Client(cluster.url, cluster.key, projectid=PID)
    tasks = client.tasks()
    retried = tasks[tasks["name"].str.startswith("quickstart-")]
    assert retried["status"].tolist() == ["success"]
    hosts = client.task(retried["uuid"].iloc[0]).hosts
    assert sorted(hosts["attempt"]) == [1, 1, 2, 2]  # both nodes failed, then were retried


def test_analysis(environment, cluster, ssh_nodes, tmp_path, monkeypatch):
    client = Client(cluster.url, cluster.key, projectid=PID)
    a, b = ssh_nodes.addresses[:2]
    step = {
        "plugin_type": "cmd",
        "name": "report",
        "node_type": "builtin",
        "node_cont": f"{a},{b}",
        "scripts_type": "shell",
        "scripts_cont": 'echo "myapp:[1.4.2]"',
    }
    job = client.jobs.add(name="release", permanent=1, data=[step])["uuid"]
    assert client.run(job, {"version": "1.4.2", "ip": f"{a},{b}"}).status == "success"
    as_role(cluster, monkeypatch, "read")  # "read role is enough"
    nb = execute("analysis", tmp_path)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code)
    images = [o for c in code for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 4  # per day, per hour, runtime, versions
    table = next(c for c in code if c.source.startswith("table = client.vv_table()"))
    assert a in outputs(table) and "1.4.2" in outputs(table) and "myapp" in outputs(table)
